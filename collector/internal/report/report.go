// Package report computes fleetwatt's efficiency report from the per-host rollups (the daily
// host_1d and the hourly host_1h, written by package rollup): per group of hosts (any of
// region, zone, arch, cpu_model, scope), energy, power, utilization, watts per busy core, the
// idle and peak power of fitted per-host power curves, work per joule, and cost and carbon per
// core-year; and, per region, ARM against x86 at matched utilization with a bootstrap
// confidence interval over hosts. docs/report.md defines every number; the JSON form is a
// contract.
//
// From Go:
//
//	from, to = report.Range(from, to) // whole hours, or whole days from 28 days on
//	rows, err := report.Fetch(ctx, client, "fleetwatt/autogen", from, to)
//	rep, err := report.Build(rows, report.Options{From: from, To: to, Regions: table})
//	for _, g := range rep.Groups { ... }
//
// or report.Run, which does all three. Fetch is the only I/O: a few InfluxQL queries, the
// range's whole UTC days from host_1d and the hours around them from host_1h, added up to one
// row per host, scope and source, so a month of 2,000 hosts comes back as 2,000 rows.
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

// Options configure Build.
type Options struct {
	// From and To are the range: whole hours, or whole days from WholeDaysFrom on (Run
	// widens them with Range).
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

// WholeDaysFrom is the length from which a report's range is widened to whole UTC days.
const WholeDaysFrom = 28 * Day

// Range returns the range a report over [from, to) covers: whole hours (WholeHours), or,
// when that is WholeDaysFrom or longer, whole UTC days, from rounded down and to up to
// 00:00 UTC. A long range is then read from the daily rollups alone, with no hourly edges
// (Fetch), which is what keeps a month of 2,000 hosts under a second; it covers at most two
// days minus two hours more than asked (7 % of 28 days), and the current day counts with
// what is rolled up so far.
func Range(from, to time.Time) (time.Time, time.Time) {
	f, t := WholeHours(from, to)
	if t.Sub(f) < WholeDaysFrom {
		return f, t
	}
	f = f.Truncate(Day)
	if d := t.Truncate(Day); d.Before(t) {
		t = d.Add(Day)
	}
	return f, t
}

// Run fetches the rollups of [opts.From, opts.To), widened by Range, and builds the report.
func Run(ctx context.Context, q Querier, bucket string, opts Options) (*Report, error) {
	if !opts.From.Before(opts.To) {
		return nil, fmt.Errorf("%w: from %s is not before to %s", ErrBadOptions,
			opts.From.Format(time.RFC3339), opts.To.Format(time.RFC3339))
	}
	opts.From, opts.To = Range(opts.From, opts.To)
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
