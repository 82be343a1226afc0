package chart

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/report"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// TimeSeries is a named series of values over time.
type TimeSeries struct {
	Name   string
	Points []TimePoint
}

// TimePoint is one value: the bucket's start and its value.
type TimePoint struct {
	T time.Time
	V float64
}

// targetBuckets is about how many time buckets a series has over its range.
const targetBuckets = 240

// bucketStep chooses a series' time bucket: about targetBuckets over the range, and at least
// twice the longest collection interval, so that every host has a reading in every bucket
// (a bucket without a host's reading would dip the fleet's sum).
func bucketStep(from, to time.Time, maxInterval float64) time.Duration {
	d := to.Sub(from) / targetBuckets
	if iv := time.Duration(2 * maxInterval * float64(time.Second)); iv > d {
		d = iv
	}
	return stepAtLeast(d)
}

// seriesQuery reads the power and CPU measurements for the time series charts.
type seriesQuery struct {
	q      report.Querier
	db, rp string
}

func newSeriesQuery(q report.Querier, bucket string) seriesQuery {
	db, rp, _ := strings.Cut(bucket, "/")
	return seriesQuery{q: q, db: db, rp: rp}
}

func (s seriesQuery) from(measurement string) string {
	m := influxql.QuoteIdent(measurement)
	if s.rp != "" {
		return influxql.QuoteIdent(s.rp) + "." + m
	}
	return m
}

func timeCond(from, to time.Time) string {
	return fmt.Sprintf("time >= %d AND time < %d", from.UnixNano(), to.UnixNano())
}

func tagCond(tag, value string) string {
	return influxql.QuoteIdent(tag) + " = " + influxql.QuoteString(value)
}

func (s seriesQuery) query(ctx context.Context, stmt string) ([]influxql.Series, error) {
	series, err := s.q.Query(ctx, s.db, stmt)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", s.db, err)
	}
	return series, nil
}

// maxInterval is the longest interval_s of the power points matching cond; 0 when none.
func (s seriesQuery) maxInterval(ctx context.Context, cond string) (float64, error) {
	series, err := s.query(ctx, fmt.Sprintf("SELECT max(%s) FROM %s WHERE %s",
		influxql.QuoteIdent(semconv.FieldInterval), s.from(semconv.MeasurementPower), cond))
	if err != nil {
		return 0, err
	}
	for _, r := range series {
		for _, row := range r.Values {
			if len(row) > 1 {
				if v, ok := row[1].(float64); ok {
					return v, nil
				}
			}
		}
	}
	return 0, nil
}

// powerSum is the statement summing, per bucket and per the given tags, each sensor's average
// power over the bucket (Σ energy_j / Σ interval_s): the sensors of a host add up (sockets),
// readings of one sensor are averaged, whatever their interval. cond selects the readings;
// the outer query sees only the inner one's tags, so it bounds the time alone.
func (s seriesQuery) powerSum(cond string, from, to time.Time, step time.Duration, tags ...string) string {
	quote := func(ts []string) string {
		q := make([]string, len(ts))
		for i, t := range ts {
			q[i] = influxql.QuoteIdent(t)
		}
		return strings.Join(q, ", ")
	}
	inner := append(slices.Clone(tags), semconv.TagHost, semconv.TagSensor)
	return fmt.Sprintf("SELECT sum(%[1]s) AS %[1]s FROM (SELECT sum(%[2]s) / sum(%[3]s) AS %[1]s FROM %[4]s WHERE %[5]s "+
		"GROUP BY time(%[6]s), %[7]s fill(none)) WHERE %[9]s GROUP BY time(%[6]s), %[8]s fill(none)",
		influxql.QuoteIdent("w"), influxql.QuoteIdent(semconv.FieldEnergy), influxql.QuoteIdent(semconv.FieldInterval),
		s.from(semconv.MeasurementPower), cond, durationLiteral(step), quote(inner), quote(tags), timeCond(from, to))
}

// durationLiteral writes a duration as InfluxQL does (10s, 5m, 1h, 1d).
func durationLiteral(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// points reads (time, value) rows; the time column is epoch milliseconds.
func points(s influxql.Series) []TimePoint {
	var out []TimePoint
	for _, row := range s.Values {
		if len(row) < 2 {
			continue
		}
		ms, ok1 := row[0].(float64)
		v, ok2 := row[1].(float64)
		if !ok1 || !ok2 || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		out = append(out, TimePoint{T: time.UnixMilli(int64(ms)).UTC(), V: v})
	}
	return out
}

// FleetPower is the fleet's power per region over [from, to): per time bucket, the sum over
// hosts of their primary readings' average power (W). region "" means every region.
func FleetPower(ctx context.Context, q report.Querier, bucket string, from, to time.Time, region string) ([]TimeSeries, time.Duration, error) {
	s := newSeriesQuery(q, bucket)
	cond := tagCond(semconv.TagPrimary, "true") + " AND " + timeCond(from, to)
	if region != "" {
		cond += " AND " + tagCond(semconv.TagRegion, region)
	}
	iv, err := s.maxInterval(ctx, cond)
	if err != nil {
		return nil, 0, err
	}
	step := bucketStep(from, to, iv)
	series, err := s.query(ctx, s.powerSum(cond, from, to, step, semconv.TagRegion))
	if err != nil {
		return nil, 0, err
	}
	var out []TimeSeries
	for _, r := range series {
		if p := points(r); len(p) > 0 {
			out = append(out, TimeSeries{Name: cmp.Or(r.Tags[semconv.TagRegion], "(no region)"), Points: p})
		}
	}
	slices.SortFunc(out, func(a, b TimeSeries) int { return strings.Compare(a.Name, b.Name) })
	return out, step, nil
}

// HostSeries is one host's data for the host chart.
type HostSeries struct {
	// Power holds a series per scope and source ("wall · ipmi"), W, widest scope first.
	Power []TimeSeries
	// Util is the CPU utilization, 0..1.
	Util TimeSeries
	Step time.Duration
}

// HostPower reads one host's power per scope and source and its CPU utilization over
// [from, to). It returns ErrNotFound when InfluxDB knows no such host at all.
func HostPower(ctx context.Context, q report.Querier, bucket, host string, from, to time.Time) (HostSeries, error) {
	s := newSeriesQuery(q, bucket)
	known, err := s.query(ctx, fmt.Sprintf("SHOW TAG VALUES FROM %s WITH KEY = %s WHERE %s",
		s.from(semconv.MeasurementPower), influxql.QuoteIdent(semconv.TagHost), tagCond(semconv.TagHost, host)))
	if err != nil {
		return HostSeries{}, err
	}
	if len(known) == 0 || len(known[0].Values) == 0 {
		return HostSeries{}, fmt.Errorf("%w: host %q has no power readings", ErrNotFound, host)
	}
	cond := tagCond(semconv.TagHost, host) + " AND " + timeCond(from, to)
	iv, err := s.maxInterval(ctx, cond)
	if err != nil {
		return HostSeries{}, err
	}
	hs := HostSeries{Step: bucketStep(from, to, iv), Util: TimeSeries{Name: "CPU utilization"}}
	series, err := s.query(ctx, s.powerSum(cond, from, to, hs.Step, semconv.TagScope, semconv.TagSource))
	if err != nil {
		return HostSeries{}, err
	}
	type named struct {
		scope, source string
		ts            TimeSeries
	}
	var power []named
	for _, r := range series {
		scope, source := r.Tags[semconv.TagScope], r.Tags[semconv.TagSource]
		if p := points(r); len(p) > 0 {
			power = append(power, named{scope, source, TimeSeries{Name: cmp.Or(scope, "?") + " · " + cmp.Or(source, "?"), Points: p}})
		}
	}
	slices.SortFunc(power, func(a, b named) int {
		return cmp.Or(cmp.Compare(rankOf(report.ScopePreference, a.scope), rankOf(report.ScopePreference, b.scope)),
			cmp.Compare(rankOf(report.SourcePreference, a.source), rankOf(report.SourcePreference, b.source)),
			strings.Compare(a.ts.Name, b.ts.Name))
	})
	for _, p := range power {
		hs.Power = append(hs.Power, p.ts)
	}
	util, err := s.query(ctx, fmt.Sprintf("SELECT sum(%s) / sum(%s) FROM %s WHERE %s GROUP BY time(%s) fill(none)",
		influxql.QuoteIdent(semconv.FieldBusy), influxql.QuoteIdent(semconv.FieldTotal),
		s.from(semconv.MeasurementCPU), cond, durationLiteral(hs.Step)))
	if err != nil {
		return HostSeries{}, err
	}
	for _, r := range util {
		hs.Util.Points = append(hs.Util.Points, points(r)...)
	}
	return hs, nil
}

func rankOf(list []string, v string) int {
	if i := slices.Index(list, v); i >= 0 {
		return i
	}
	return len(list)
}
