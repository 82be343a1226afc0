package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/config"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

const statusUsage = `Usage: fleetwatt-collector status [flags]

Prints the hosts InfluxDB holds data for in the last --since: architecture, CPU model, region,
CPU utilization, average power per scope (sensors of one scope summed, best source per scope)
and when the host was last seen. It queries InfluxDB with InfluxQL (/query), so it works on
InfluxDB 1.8, 2.x (with a DBRP mapping for the bucket) and 3.x.

Flags:
`

func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleetwatt-collector status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), statusUsage)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "configuration file (YAML), for the influx settings")
	since := fs.Duration("since", 10*time.Minute, "how far back to look")
	overrides := configFlags(fs, false)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *since <= 0 {
		fmt.Fprintln(stderr, "fleetwatt-collector status: --since must be positive")
		return 2
	}
	cfg, err := loadConfig(*configPath, fs, overrides)
	if err != nil {
		fmt.Fprintf(stderr, "fleetwatt-collector status: %v\n", err)
		return 2
	}
	token, err := cfg.Influx.Token(os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "fleetwatt-collector status: %v\n", err)
		return 1
	}
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := status(qctx, &influxql.Client{URL: cfg.Influx.URL, Token: token}, cfg.Influx, *since, stdout, time.Now()); err != nil {
		fmt.Fprintf(stderr, "fleetwatt-collector status: %v\n", err)
		return 1
	}
	return 0
}

// hostStatus is one line of the status table.
type hostStatus struct {
	host, arch, model, region string
	busy, total, util         float64
	hasCPU, hasUtil           bool
	// power[scope][source] = Σ over sensors of mean power_w, W
	power    map[string]map[string]float64
	lastSeen time.Time
}

// sourcePreference orders power sources best first, as DESIGN.md ranks them.
var sourcePreference = []string{
	semconv.SourceIPMI, semconv.SourceRedfish, semconv.SourceACPI, semconv.SourceHwmon,
	semconv.SourceRAPL, semconv.SourceNVML, semconv.SourceModel,
}

// status prints the hosts seen in the last since.
func status(ctx context.Context, c *influxql.Client, ic config.Influx, since time.Duration, out io.Writer, now time.Time) error {
	db, rp, _ := strings.Cut(ic.Bucket, "/")
	from := func(m string) string {
		if rp != "" {
			return influxql.QuoteIdent(rp) + "." + influxql.QuoteIdent(m)
		}
		return influxql.QuoteIdent(m)
	}
	where := fmt.Sprintf("WHERE time > now() - %ds", int64(since.Seconds()))
	hostTags := strings.Join([]string{semconv.TagHost, semconv.TagArch, semconv.TagCPUModel, semconv.TagRegion}, ", ")
	query := func(q string) ([]influxql.Series, error) {
		s, err := c.Query(ctx, db, q)
		if err != nil {
			return nil, fmt.Errorf("query influxdb %s database %s: %w", ic.URL, db, err)
		}
		return s, nil
	}
	hosts := map[string]*hostStatus{}
	get := func(tags map[string]string) *hostStatus {
		h := hosts[tags[semconv.TagHost]]
		if h == nil {
			h = &hostStatus{host: tags[semconv.TagHost], power: map[string]map[string]float64{}}
			hosts[h.host] = h
		}
		h.arch = cmp.Or(h.arch, tags[semconv.TagArch])
		h.model = cmp.Or(h.model, tags[semconv.TagCPUModel])
		h.region = cmp.Or(h.region, tags[semconv.TagRegion])
		return h
	}

	power, err := query(fmt.Sprintf(`SELECT mean(%s) FROM %s %s GROUP BY %s, %s, %s, %s`,
		influxql.QuoteIdent(semconv.FieldPower), from(semconv.MeasurementPower), where,
		hostTags, semconv.TagScope, semconv.TagSource, semconv.TagSensor))
	if err != nil {
		return err
	}
	for _, s := range power {
		h := get(s.Tags)
		scope, source := cmp.Or(s.Tags[semconv.TagScope], "unknown"), s.Tags[semconv.TagSource]
		if h.power[scope] == nil {
			h.power[scope] = map[string]float64{}
		}
		if v, ok := number(s, 0, "mean"); ok {
			h.power[scope][source] += v
		}
	}
	// Whole-host CPU points only (no cpu tag): per-CPU points would count twice.
	cpu, err := query(fmt.Sprintf(`SELECT sum(%s) AS busy, sum(%s) AS total, mean(%s) AS util FROM %s %s AND %s = '' GROUP BY %s`,
		influxql.QuoteIdent(semconv.FieldBusy), influxql.QuoteIdent(semconv.FieldTotal),
		influxql.QuoteIdent(semconv.FieldUtilization), from(semconv.MeasurementCPU), where,
		influxql.QuoteIdent(semconv.TagCPU), hostTags))
	if err != nil {
		return err
	}
	for _, s := range cpu {
		h := get(s.Tags)
		h.busy, _ = number(s, 0, "busy")
		h.total, h.hasCPU = number(s, 0, "total")
		h.util, h.hasUtil = number(s, 0, "util")
	}
	for _, m := range []struct{ measurement, field string }{
		{semconv.MeasurementPower, semconv.FieldPower},
		{semconv.MeasurementCPU, semconv.FieldTotal},
		{semconv.MeasurementCPU, semconv.FieldUtilization},
	} {
		last, err := query(fmt.Sprintf(`SELECT last(%s) FROM %s %s GROUP BY %s`,
			influxql.QuoteIdent(m.field), from(m.measurement), where, hostTags))
		if err != nil {
			return err
		}
		for _, s := range last {
			h := get(s.Tags)
			if ms, ok := number(s, 0, "time"); ok {
				if t := time.UnixMilli(int64(ms)); t.After(h.lastSeen) {
					h.lastSeen = t
				}
			}
		}
	}

	if len(hosts) == 0 {
		fmt.Fprintf(out, "no data in the last %s (influxdb %s, database %s)\n", shortDuration(since), ic.URL, ic.Bucket)
		return nil
	}
	printStatus(out, hosts, now)
	fmt.Fprintf(out, "\n%s, data from the last %s (influxdb %s, database %s)\n", plural(len(hosts), "host"), shortDuration(since), ic.URL, ic.Bucket)
	return nil
}

// plural writes "1 host", "2 hosts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// number returns the value of column col in row i of s.
func number(s influxql.Series, i int, col string) (float64, bool) {
	j := slices.Index(s.Columns, col)
	if j < 0 || i >= len(s.Values) || j >= len(s.Values[i]) {
		return 0, false
	}
	v, ok := s.Values[i][j].(float64)
	return v, ok
}

func printStatus(out io.Writer, hosts map[string]*hostStatus, now time.Time) {
	var scopes []string
	for _, h := range hosts {
		for s := range h.power {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	slices.SortFunc(scopes, func(a, b string) int {
		return cmp.Or(cmp.Compare(scopeRank(a), scopeRank(b)), strings.Compare(a, b))
	})
	unpowered := 0
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	header := []string{"HOST", "ARCH", "CPU MODEL", "REGION", "UTIL"}
	for _, s := range scopes {
		header = append(header, s+" W")
	}
	if len(scopes) == 0 {
		header = append(header, "POWER")
	}
	header = append(header, "LAST SEEN")
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	names := make([]string, 0, len(hosts))
	for n := range hosts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		h := hosts[n]
		row := []string{dash(h.host), dash(h.arch), dash(truncate(h.model, 40)), dash(h.region)}
		switch {
		case h.hasCPU && h.total > 0:
			row = append(row, fmt.Sprintf("%.1f%%", 100*h.busy/h.total))
		case h.hasUtil:
			row = append(row, fmt.Sprintf("%.1f%%", 100*h.util))
		default:
			row = append(row, "-")
		}
		for _, s := range scopes {
			if w, ok := bestSource(h.power[s]); ok {
				row = append(row, fmt.Sprintf("%.1f", w))
			} else {
				row = append(row, "-")
			}
		}
		if len(h.power) == 0 {
			unpowered++
			if len(scopes) == 0 {
				row = append(row, "none reported")
			}
		}
		if h.lastSeen.IsZero() {
			row = append(row, "-")
		} else {
			row = append(row, now.Sub(h.lastSeen).Round(time.Second).String()+" ago")
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	if unpowered > 0 {
		fmt.Fprintf(out, "\n%d of %d hosts reported no power: their agents found no readable power sensor "+
			"(a VM has none; RAPL needs root). `fleetwatt-agent doctor` on such a host says why.\n", unpowered, len(hosts))
	}
}

func scopeRank(s string) int {
	if i := slices.Index(semconv.Scopes, semconv.Scope(s)); i >= 0 {
		return i
	}
	return len(semconv.Scopes)
}

// bestSource returns the power of the best source of a scope: two sources of one scope
// measure the same thing and are never added.
func bestSource(bySource map[string]float64) (float64, bool) {
	if len(bySource) == 0 {
		return 0, false
	}
	for _, src := range sourcePreference {
		if w, ok := bySource[src]; ok {
			return w, true
		}
	}
	srcs := make([]string, 0, len(bySource))
	for s := range bySource {
		srcs = append(srcs, s)
	}
	slices.Sort(srcs)
	return bySource[srcs[0]], true
}

func dash(s string) string { return cmp.Or(s, "-") }

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// shortDuration writes d as people do: "10m", "1h30m", "45s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
