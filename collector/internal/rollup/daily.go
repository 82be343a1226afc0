package rollup

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Day is the length of a daily rollup: a UTC day (UTC has no daylight saving time).
const Day = 24 * time.Hour

// dayFields are the fields of an hourly rollup point, all sums: the daily point holds each
// one's sum over the day's hours.
var dayFields = []string{
	semconv.FieldEnergy, semconv.FieldInterval, semconv.FieldBusy, semconv.FieldTotal,
	semconv.FieldCPUInterval, semconv.FieldOps, semconv.FieldSamples,
	semconv.FieldSumU, semconv.FieldSumUU, semconv.FieldSumUUU, semconv.FieldSumUUUU,
	semconv.FieldSumP, semconv.FieldSumUP, semconv.FieldSumUUP, semconv.FieldSumPP,
	semconv.FieldCost, semconv.FieldCO2e,
}

// keys are the tags of a rollup point, hourly and daily: HostTags, scope and source.
func keys() []string {
	return append(append(make([]string, 0, len(HostTags)+2), HostTags...), semconv.TagScope, semconv.TagSource)
}

// wholeDays widens [from, to) to whole UTC days: from down, to up.
func wholeDays(from, to time.Time) (time.Time, time.Time) {
	f := from.UTC().Truncate(Day)
	t := to.UTC().Truncate(Day)
	if t.Before(to) {
		t = t.Add(Day)
	}
	return f, t
}

// Days computes the daily rollups (measurement host_1d) of every UTC day that overlaps
// [from, to) from the hourly ones and writes them: per host, scope and source, each field's
// sum over the day's host_1h points, at the day's start. InfluxDB does the sums, one query
// per day (a day of 2,000 hosts is 48,000 hourly points in and 2,000 rows out), so the
// memory does not grow with the range.
//
// The day's point has the same tags as its hourly points and each field summed over the hours
// that have it (a field no hour has, such as ops for a host without work, is left out), so
// sums over host_1d equal sums over host_1h for any range of whole days. Computing a day
// twice writes the same point; a day without hourly points writes nothing.
func (r *Roller) Days(ctx context.Context, from, to time.Time) (Stats, error) {
	var st Stats
	start, end := wholeDays(from, to)
	for d := start; d.Before(end); d = d.Add(Day) {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		n, err := r.day(ctx, d)
		if err != nil {
			return st, fmt.Errorf("rollup day %s: %w", d.Format(time.DateOnly), err)
		}
		st.Days++
		st.DayPoints += n
	}
	return st, nil
}

// day rolls up the day starting at d and returns the points written.
func (r *Roller) day(ctx context.Context, d time.Time) (int, error) {
	sel := make([]string, len(dayFields))
	for i, f := range dayFields {
		sel[i] = fmt.Sprintf("sum(%s) AS %s", influxql.QuoteIdent(f), influxql.QuoteIdent(f))
	}
	series, err := r.q.Query(ctx, r.db, fmt.Sprintf("SELECT %s FROM %s WHERE %s GROUP BY %s",
		strings.Join(sel, ", "), r.from(semconv.MeasurementHostHour), timeRange(d, d.Add(Day)), groupBy(keys()...)))
	if err != nil {
		return 0, err
	}
	points := dayPoints(series, d)
	if len(points) == 0 {
		return 0, nil
	}
	if err := r.w.Write(ctx, points); err != nil {
		return 0, err
	}
	return len(points), nil
}

// dayPoints turns the series of SELECT sum(field) AS field … FROM host_1h GROUP BY keys()
// over the day starting at d into host_1d points: one per series, with the series' tags but
// the empty ones (as the hourly points have them) and its non-null sums.
func dayPoints(series []influxql.Series, d time.Time) []*write.Point {
	out := make([]*write.Point, 0, len(series))
	for _, s := range sortSeries(series) {
		if len(s.Values) == 0 {
			continue
		}
		fields := make(map[string]any, len(dayFields))
		for _, f := range dayFields {
			if v, ok := num(s.Values[0], col(s, f)); ok {
				fields[f] = v
			}
		}
		if len(fields) == 0 {
			continue
		}
		tags := make(map[string]string, len(s.Tags))
		for k, v := range s.Tags {
			if v != "" {
				tags[k] = v
			}
		}
		out = append(out, write.NewPoint(semconv.MeasurementHostDay, tags, fields, d))
	}
	return out
}
