// Package hosts lists the hosts InfluxDB heard from in a range, with what a fleet operator
// asks first of each: where it is, what it is, when it was last seen and whether that is
// stale, which power reading stands for it (scope, source, measured or estimated) and what it
// draws. `fleetwatt-collector status` prints the list and GET /api/v1/hosts serves it, from
// the one Query, so the two cannot diverge. docs/web.md documents the JSON.
package hosts

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/report"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// StaleIntervals is how many of its collection intervals a host may stay silent before it
// counts as stale: one late export is noise, three missed ones are an agent or a network down.
const StaleIntervals = 3

// List is the answer: the hosts seen in [From, To), as of Now.
type List struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Now is when the list was made; ages count from it.
	Now time.Time `json:"now"`
	// StaleIntervals is StaleIntervals, so that a reader of the JSON knows the rule.
	StaleIntervals int    `json:"stale_intervals"`
	Hosts          []Host `json:"hosts"`
}

// Host is one host. Fields that cannot be known are null in JSON: a host that sent CPU time
// but no power (a VM) has no scope, source, method or power.
type Host struct {
	Host     string `json:"host"`
	Region   string `json:"region"`
	Zone     string `json:"zone"`
	Arch     string `json:"arch"`
	CPUModel string `json:"cpu_model"`
	// LastSeen is the time of the host's newest power or CPU point.
	LastSeen *time.Time `json:"last_seen"`
	// AgeS is Now − LastSeen, s.
	AgeS *float64 `json:"age_s"`
	// IntervalS is the host's collection interval, s: what its agent says it uses, else the
	// mean interval its points cover.
	IntervalS *float64 `json:"interval_s"`
	// Stale is true when AgeS exceeds StaleIntervals × IntervalS (or, with no interval known,
	// when the host was seen at all and is older than StaleIntervals × 60 s).
	Stale bool `json:"stale"`
	// Util is the host's CPU utilization over the range, busy / total CPU-seconds, 0..1.
	Util *float64 `json:"util"`
	// Scope, Source and Method are the host's primary power reading: the readings its agent
	// marks primary, else the widest scope and its best source.
	Scope  string `json:"scope"`
	Source string `json:"source"`
	// Method is "measured" or "estimated" (a model's estimate).
	Method string `json:"method"`
	// PowerW is the primary reading's latest power, its sensors summed, W.
	PowerW *float64 `json:"power_w"`
	// AvgPowerW is the primary reading's mean power over the range, its sensors summed, W.
	AvgPowerW *float64 `json:"avg_power_w"`
	// Power is every scope the host reported, widest first, each with its best source.
	Power []Reading `json:"power"`
}

// Reading is one power scope of a host, from its best source.
type Reading struct {
	Scope   string `json:"scope"`
	Source  string `json:"source"`
	Method  string `json:"method"`
	Primary bool   `json:"primary"`
	// AvgW is the mean over the range and LastW the latest, sensors of the scope and source
	// summed, W.
	AvgW  float64 `json:"avg_w"`
	LastW float64 `json:"last_w"`
}

// Querier runs an InfluxQL statement; *influxql.Client is one.
type Querier = report.Querier

// Query lists the hosts with power or CPU points in [from, to) in bucket ("db" or "db/rp"),
// sorted by name; ages count from now. A zero to means no end: points stamped a little ahead
// of now by a host's clock count too.
func Query(ctx context.Context, q Querier, bucket string, from, to, now time.Time) (*List, error) {
	db, rp, _ := strings.Cut(bucket, "/")
	measurement := func(m string) string {
		if rp != "" {
			return influxql.QuoteIdent(rp) + "." + influxql.QuoteIdent(m)
		}
		return influxql.QuoteIdent(m)
	}
	where := fmt.Sprintf("WHERE time >= %d", from.UnixNano())
	if !to.IsZero() {
		where += fmt.Sprintf(" AND time < %d", to.UnixNano())
	}
	hostTags := strings.Join([]string{semconv.TagHost, semconv.TagArch, semconv.TagCPUModel, semconv.TagRegion, semconv.TagZone}, ", ")
	query := func(s string) ([]influxql.Series, error) {
		series, err := q.Query(ctx, db, s)
		if err != nil {
			return nil, fmt.Errorf("query influxdb database %s: %w", db, err)
		}
		return series, nil
	}
	b := builder{hosts: map[string]*hostData{}}

	power, err := query(fmt.Sprintf(`SELECT mean(%[1]s) AS avg, last(%[1]s) AS last, mean(%[2]s) AS interval FROM %[3]s %[4]s GROUP BY %[5]s, %[6]s, %[7]s, %[8]s, %[9]s, %[10]s`,
		influxql.QuoteIdent(semconv.FieldPower), influxql.QuoteIdent(semconv.FieldInterval),
		measurement(semconv.MeasurementPower), where, hostTags,
		semconv.TagScope, semconv.TagSource, semconv.TagSensor, semconv.TagMethod, semconv.TagPrimary))
	if err != nil {
		return nil, err
	}
	for _, s := range power {
		h := b.get(s.Tags)
		key := readingKey{scope: cmp.Or(s.Tags[semconv.TagScope], "unknown"), source: s.Tags[semconv.TagSource]}
		r := h.readings[key]
		if r == nil {
			r = &Reading{Scope: key.scope, Source: key.source}
			h.readings[key] = r
		}
		r.Method = cmp.Or(r.Method, s.Tags[semconv.TagMethod])
		r.Primary = r.Primary || s.Tags[semconv.TagPrimary] == "true"
		if v, ok := number(s, "avg"); ok {
			r.AvgW += v
		}
		if v, ok := number(s, "last"); ok {
			r.LastW += v
		}
		if v, ok := number(s, "interval"); ok && v > 0 {
			h.pointInterval = v
		}
	}
	// Whole-host CPU points only (no cpu tag): per-CPU points would count twice.
	cpu, err := query(fmt.Sprintf(`SELECT sum(%s) AS busy, sum(%s) AS total, mean(%s) AS util, mean(%s) AS interval FROM %s %s AND %s = '' GROUP BY %s`,
		influxql.QuoteIdent(semconv.FieldBusy), influxql.QuoteIdent(semconv.FieldTotal),
		influxql.QuoteIdent(semconv.FieldUtilization), influxql.QuoteIdent(semconv.FieldInterval),
		measurement(semconv.MeasurementCPU), where,
		influxql.QuoteIdent(semconv.TagCPU), hostTags))
	if err != nil {
		return nil, err
	}
	for _, s := range cpu {
		h := b.get(s.Tags)
		busy, _ := number(s, "busy")
		if total, ok := number(s, "total"); ok && total > 0 {
			h.util = ptr(busy / total)
		} else if u, ok := number(s, "util"); ok {
			h.util = ptr(u)
		}
		if v, ok := number(s, "interval"); ok && v > 0 {
			h.cpuInterval = v
		}
	}
	// The agent's own interval, from its identity points; hosts without it (other
	// OpenTelemetry senders) keep the interval their points cover.
	cfg, err := query(fmt.Sprintf(`SELECT last(%s) FROM %s %s GROUP BY %s`,
		influxql.QuoteIdent(semconv.FieldIntervalCfg), measurement(semconv.MeasurementHost), where, hostTags))
	if err != nil {
		return nil, err
	}
	for _, s := range cfg {
		if h := b.hosts[s.Tags[semconv.TagHost]]; h != nil {
			if v, ok := number(s, "last"); ok && v > 0 {
				h.agentInterval = v
			}
		}
	}
	for _, m := range []struct{ measurement, field string }{
		{semconv.MeasurementPower, semconv.FieldPower},
		{semconv.MeasurementCPU, semconv.FieldTotal},
		{semconv.MeasurementCPU, semconv.FieldUtilization},
	} {
		last, err := query(fmt.Sprintf(`SELECT last(%s) FROM %s %s GROUP BY %s`,
			influxql.QuoteIdent(m.field), measurement(m.measurement), where, hostTags))
		if err != nil {
			return nil, err
		}
		for _, s := range last {
			h := b.get(s.Tags)
			if ms, ok := number(s, "time"); ok {
				if t := time.UnixMilli(int64(ms)).UTC(); t.After(h.lastSeen) {
					h.lastSeen = t
				}
			}
		}
	}
	return b.list(from, to, now), nil
}

type readingKey struct{ scope, source string }

type hostData struct {
	Host
	// readings[scope, source]: sensors summed.
	readings      map[readingKey]*Reading
	util          *float64
	lastSeen      time.Time
	agentInterval float64 // s, from the host measurement
	pointInterval float64 // s, mean interval_s of power points
	cpuInterval   float64 // s, mean interval_s of whole-host cpu points
}

type builder struct{ hosts map[string]*hostData }

func (b *builder) get(tags map[string]string) *hostData {
	name := tags[semconv.TagHost]
	h := b.hosts[name]
	if h == nil {
		h = &hostData{Host: Host{Host: name}, readings: map[readingKey]*Reading{}}
		b.hosts[name] = h
	}
	h.Arch = cmp.Or(h.Arch, tags[semconv.TagArch])
	h.CPUModel = cmp.Or(h.CPUModel, tags[semconv.TagCPUModel])
	h.Region = cmp.Or(h.Region, tags[semconv.TagRegion])
	h.Zone = cmp.Or(h.Zone, tags[semconv.TagZone])
	return h
}

func (b *builder) list(from, to, now time.Time) *List {
	if to.IsZero() {
		to = now
	}
	l := &List{From: from.UTC(), To: to.UTC(), Now: now.UTC(), StaleIntervals: StaleIntervals, Hosts: []Host{}}
	for _, d := range b.hosts {
		h := d.Host
		h.Util = d.util
		h.Power = bestReadings(d.readings)
		if p, ok := primary(h.Power); ok {
			h.Scope, h.Source, h.Method = p.Scope, p.Source, p.Method
			h.PowerW, h.AvgPowerW = ptr(p.LastW), ptr(p.AvgW)
		}
		if iv := cmp.Or(d.agentInterval, d.pointInterval, d.cpuInterval); iv > 0 {
			h.IntervalS = ptr(iv)
		}
		if !d.lastSeen.IsZero() {
			h.LastSeen = ptr(d.lastSeen)
			age := max(now.Sub(d.lastSeen).Seconds(), 0)
			h.AgeS = ptr(age)
			limit := float64(StaleIntervals) * 60
			if h.IntervalS != nil {
				limit = float64(StaleIntervals) * *h.IntervalS
			}
			h.Stale = age > limit
		}
		l.Hosts = append(l.Hosts, h)
	}
	slices.SortFunc(l.Hosts, func(a, b Host) int { return strings.Compare(a.Host, b.Host) })
	return l
}

// bestReadings keeps one source per scope, the best: two sources of one scope measure the
// same thing and are never added. Widest scope first.
func bestReadings(rs map[readingKey]*Reading) []Reading {
	byScope := map[string][]*Reading{}
	for _, r := range rs {
		byScope[r.Scope] = append(byScope[r.Scope], r)
	}
	out := []Reading{}
	for _, candidates := range byScope {
		slices.SortFunc(candidates, func(a, b *Reading) int {
			// A primary reading wins: the agent chose it knowing more than the tags say.
			if a.Primary != b.Primary {
				if a.Primary {
					return -1
				}
				return 1
			}
			return cmp.Or(cmp.Compare(rank(report.SourcePreference, a.Source), rank(report.SourcePreference, b.Source)),
				strings.Compare(a.Source, b.Source))
		})
		out = append(out, *candidates[0])
	}
	slices.SortFunc(out, func(a, b Reading) int {
		return cmp.Or(cmp.Compare(ScopeRank(a.Scope), ScopeRank(b.Scope)), strings.Compare(a.Scope, b.Scope))
	})
	return out
}

// primary is the reading that stands for the host: the one marked primary, else the widest.
func primary(rs []Reading) (Reading, bool) {
	if len(rs) == 0 {
		return Reading{}, false
	}
	if i := slices.IndexFunc(rs, func(r Reading) bool { return r.Primary }); i >= 0 {
		return rs[i], true
	}
	return rs[0], true
}

// ScopeRank orders scopes widest first; unknown scopes come last.
func ScopeRank(scope string) int { return rank(report.ScopePreference, scope) }

func rank(order []string, s string) int {
	if i := slices.Index(order, s); i >= 0 {
		return i
	}
	return len(order)
}

// number returns the value of column col in the first row of s.
func number(s influxql.Series, col string) (float64, bool) {
	j := slices.Index(s.Columns, col)
	if j < 0 || len(s.Values) == 0 || j >= len(s.Values[0]) {
		return 0, false
	}
	v, ok := s.Values[0][j].(float64)
	return v, ok
}

func ptr[T any](v T) *T { return &v }
