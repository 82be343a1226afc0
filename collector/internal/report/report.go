// Package report computes fleetwatt's efficiency report from the hourly per-host rollups
// (measurement host_1h, written by package rollup): per group of hosts (any of region, zone,
// arch, cpu_model, scope), energy, power, utilization, watts per busy core, the idle and peak
// power of fitted per-host power curves, work per joule, and cost and carbon per core-year;
// and, per region, ARM against x86 at matched utilization with a bootstrap confidence interval
// over hosts. docs/report.md defines every number; the JSON form is a contract.
//
// From Go:
//
//	rows, err := report.Fetch(ctx, client, "fleetwatt/autogen", from, to)
//	rep, err := report.Build(rows, report.Options{From: from, To: to, Regions: table})
//	for _, g := range rep.Groups { ... }
//
// or report.Run, which does both. Fetch is the only I/O: one InfluxQL query that InfluxDB
// aggregates to one row per host, scope and source, so a month of 2,000 hosts returns a few
// thousand rows.
package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Querier runs an InfluxQL statement; *influxql.Client is one.
type Querier interface {
	Query(ctx context.Context, db, q string) ([]influxql.Series, error)
}

var _ Querier = (*influxql.Client)(nil)

// Keys a report can group by.
const (
	KeyRegion   = "region"
	KeyZone     = "zone"
	KeyArch     = "arch"
	KeyCPUModel = "cpu_model"
	KeyScope    = "scope"
)

// Keys lists the grouping keys, in the order the columns print.
var Keys = []string{KeyRegion, KeyZone, KeyArch, KeyCPUModel, KeyScope}

// DefaultBy is the grouping without --by.
var DefaultBy = []string{KeyRegion, KeyArch, KeyCPUModel}

// HoursPerYear is the hours of an average year (365.25 days), for per-year figures.
const HoursPerYear = 8766

// ScopePreference orders the power scopes for comparisons and for a host's one scope when the
// report is not grouped by scope: the widest measured boundary first, as the primary reading.
var ScopePreference = []string{
	string(semconv.ScopeWall), string(semconv.ScopeNodeDC), string(semconv.ScopePlatform),
	string(semconv.ScopeCPUPackage), string(semconv.ScopeCPUCore), string(semconv.ScopeDRAM),
	string(semconv.ScopeIO), string(semconv.ScopeGPU), string(semconv.ScopeEstimatedHost),
}

// SourcePreference orders power sources best first: two sources of one scope measure the
// same thing, so a host's figure for a scope comes from one source, never their sum.
var SourcePreference = []string{
	semconv.SourceIPMI, semconv.SourceRedfish, semconv.SourceACPI, semconv.SourceHwmon,
	semconv.SourceRAPL, semconv.SourceNVML, semconv.SourceSimulator, semconv.SourceModel,
}

// HostRow is one host's sums over the range for one scope and source: one row of Fetch.
type HostRow struct {
	Host, Region, Zone, Arch, CPUModel, Scope, Source string

	Energy      float64 // J
	Interval    float64 // s covered by power
	Busy        float64 // busy CPU-seconds
	Total       float64 // CPU-seconds of all modes
	CPUInterval float64 // s covered by cpu points
	Ops         float64 // operations
	HasOps      bool    // the host reported work
	Curve       CurveSums
}

// Fetch reads the sums of the host_1h rollups in [from, to) per host, scope and source, with
// one InfluxQL query aggregated by InfluxDB. bucket is "db" or "db/rp" (InfluxDB 1.8) or a
// 2.x bucket with a DBRP mapping.
func Fetch(ctx context.Context, q Querier, bucket string, from, to time.Time) ([]HostRow, error) {
	db, rp, _ := strings.Cut(bucket, "/")
	measurement := influxql.QuoteIdent(semconv.MeasurementHostHour)
	if rp != "" {
		measurement = influxql.QuoteIdent(rp) + "." + measurement
	}
	fields := []string{
		semconv.FieldEnergy, semconv.FieldInterval, semconv.FieldBusy, semconv.FieldTotal,
		semconv.FieldCPUInterval, semconv.FieldOps, semconv.FieldSamples,
		semconv.FieldSumU, semconv.FieldSumUU, semconv.FieldSumUUU, semconv.FieldSumUUUU,
		semconv.FieldSumP, semconv.FieldSumUP, semconv.FieldSumUUP, semconv.FieldSumPP,
	}
	sel := make([]string, len(fields))
	for i, f := range fields {
		sel[i] = fmt.Sprintf("sum(%s) AS %s", influxql.QuoteIdent(f), influxql.QuoteIdent(f))
	}
	tags := []string{
		semconv.TagHost, semconv.TagRegion, semconv.TagZone, semconv.TagArch,
		semconv.TagCPUModel, semconv.TagScope, semconv.TagSource,
	}
	group := make([]string, len(tags))
	for i, t := range tags {
		group[i] = influxql.QuoteIdent(t)
	}
	stmt := fmt.Sprintf("SELECT %s FROM %s WHERE time >= %d AND time < %d GROUP BY %s",
		strings.Join(sel, ", "), measurement, from.UnixNano(), to.UnixNano(), strings.Join(group, ", "))
	series, err := q.Query(ctx, db, stmt)
	if err != nil {
		return nil, fmt.Errorf("query rollups in %s: %w", bucket, err)
	}
	rows := make([]HostRow, 0, len(series))
	for _, s := range series {
		if len(s.Values) == 0 {
			continue
		}
		v := func(name string) (float64, bool) {
			i := slices.Index(s.Columns, name)
			if i < 0 || i >= len(s.Values[0]) {
				return 0, false
			}
			f, ok := s.Values[0][i].(float64)
			return f, ok
		}
		get := func(name string) float64 { f, _ := v(name); return f }
		r := HostRow{
			Host: s.Tags[semconv.TagHost], Region: s.Tags[semconv.TagRegion], Zone: s.Tags[semconv.TagZone],
			Arch: s.Tags[semconv.TagArch], CPUModel: s.Tags[semconv.TagCPUModel],
			Scope: s.Tags[semconv.TagScope], Source: s.Tags[semconv.TagSource],
			Energy: get(semconv.FieldEnergy), Interval: get(semconv.FieldInterval),
			Busy: get(semconv.FieldBusy), Total: get(semconv.FieldTotal), CPUInterval: get(semconv.FieldCPUInterval),
			Curve: CurveSums{
				N: get(semconv.FieldSamples), U: get(semconv.FieldSumU), UU: get(semconv.FieldSumUU),
				UUU: get(semconv.FieldSumUUU), UUUU: get(semconv.FieldSumUUUU), P: get(semconv.FieldSumP),
				UP: get(semconv.FieldSumUP), UUP: get(semconv.FieldSumUUP), PP: get(semconv.FieldSumPP),
			},
		}
		r.Ops, r.HasOps = v(semconv.FieldOps)
		rows = append(rows, r)
	}
	return rows, nil
}

// Options configure Build.
type Options struct {
	// From and To are the range, whole hours (Run rounds them).
	From, To time.Time
	// By lists the grouping keys (Keys); nil means DefaultBy.
	By []string
	// Regions gives each region's price, carbon intensity and PUE.
	Regions regions.Table
	// Resamples is the bootstrap's resample count; 0 means DefaultResamples.
	Resamples int
	// Seed seeds the bootstrap; the same seed gives the same intervals.
	Seed uint64
}

// ErrBadOptions marks a request that cannot be answered as asked (an unknown --by key, an
// empty range); the HTTP API answers it with 400.
var ErrBadOptions = errors.New("bad report options")

// ParseBy parses a comma-separated list of grouping keys.
func ParseBy(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return slices.Clone(DefaultBy), nil
	}
	var by []string
	for k := range strings.SplitSeq(s, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(Keys, k) {
			return nil, fmt.Errorf("%w: group by %q: want any of %s", ErrBadOptions, k, strings.Join(Keys, ", "))
		}
		if !slices.Contains(by, k) {
			by = append(by, k)
		}
	}
	return by, nil
}

// WholeHours widens [from, to) to whole hours (UTC): from down, to up. The rollups are hourly,
// so a report covers whole hours; the current hour counts with what is rolled up so far.
func WholeHours(from, to time.Time) (time.Time, time.Time) {
	f := from.UTC().Truncate(time.Hour)
	t := to.UTC().Truncate(time.Hour)
	if t.Before(to) {
		t = t.Add(time.Hour)
	}
	return f, t
}

// Run fetches the rollups of [opts.From, opts.To), widened to whole hours, and builds the
// report.
func Run(ctx context.Context, q Querier, bucket string, opts Options) (*Report, error) {
	if !opts.From.Before(opts.To) {
		return nil, fmt.Errorf("%w: from %s is not before to %s", ErrBadOptions,
			opts.From.Format(time.RFC3339), opts.To.Format(time.RFC3339))
	}
	opts.From, opts.To = WholeHours(opts.From, opts.To)
	rows, err := Fetch(ctx, q, bucket, opts.From, opts.To)
	if err != nil {
		return nil, err
	}
	return Build(rows, opts)
}

// host is one host's figures for one scope, from its preferred source.
type host struct {
	HostRow
	curve     Curve
	power     float64 // average power, W
	cores     float64 // logical CPUs
	busyCores float64 // average busy logical CPUs
}

func newHost(r HostRow) host {
	return host{
		HostRow:   r,
		curve:     FitCurve(r.Curve),
		power:     r.Energy / r.Interval,
		cores:     r.Total / r.CPUInterval,
		busyCores: r.Busy / r.CPUInterval,
	}
}

func rank(list []string, v string) int {
	if i := slices.Index(list, v); i >= 0 {
		return i
	}
	return len(list)
}

// hosts turns rows into one entry per host and scope (its best source), dropping the hosts
// that lack CPU data or power. It returns them sorted and the notes about what it dropped.
func hosts(rows []HostRow) ([]host, []string) {
	type key struct{ host, region, zone, arch, model, scope string }
	best := map[key]HostRow{}
	noCPU := map[string]bool{}
	for _, r := range rows {
		if r.Interval <= 0 || r.Energy < 0 {
			continue
		}
		if r.CPUInterval <= 0 || r.Total <= 0 {
			noCPU[r.Host] = true
			continue
		}
		k := key{r.Host, r.Region, r.Zone, r.Arch, r.CPUModel, r.Scope}
		if old, ok := best[k]; !ok || cmp.Or(
			cmp.Compare(rank(SourcePreference, r.Source), rank(SourcePreference, old.Source)),
			strings.Compare(r.Source, old.Source)) < 0 {
			best[k] = r
		}
	}
	out := make([]host, 0, len(best))
	for _, r := range best {
		delete(noCPU, r.Host)
		out = append(out, newHost(r))
	}
	slices.SortFunc(out, func(a, b host) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), strings.Compare(a.Region, b.Region),
			strings.Compare(a.Zone, b.Zone), strings.Compare(a.Arch, b.Arch),
			strings.Compare(a.CPUModel, b.CPUModel),
			cmp.Compare(rank(ScopePreference, a.Scope), rank(ScopePreference, b.Scope)),
			strings.Compare(a.Scope, b.Scope))
	})
	var notes []string
	if len(noCPU) > 0 {
		names := make([]string, 0, len(noCPU))
		for n := range noCPU {
			names = append(names, n)
		}
		slices.Sort(names)
		notes = append(notes, fmt.Sprintf("%s left out: power but no CPU time in the rollups (%s)",
			plural(len(names), "host", "hosts"), abbreviate(names, 5)))
	}
	return out, notes
}

func abbreviate(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(", … %d more", len(names)-n)
}

// preferred keeps each host's preferred scope only (hosts must be sorted as hosts returns
// them: one host's scopes adjacent, best first).
func preferred(hs []host) []host {
	out := make([]host, 0, len(hs))
	for i, h := range hs {
		if i > 0 && sameHost(hs[i-1], h) {
			continue
		}
		out = append(out, h)
	}
	return out
}

func sameHost(a, b host) bool {
	return a.Host == b.Host && a.Region == b.Region && a.Zone == b.Zone && a.Arch == b.Arch && a.CPUModel == b.CPUModel
}
