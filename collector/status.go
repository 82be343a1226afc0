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
	"github.com/fleetwatt/fleetwatt/collector/internal/hosts"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
)

const statusUsage = `Usage: fleetwatt-collector status [flags]

Prints the hosts InfluxDB holds data for in the last --since: architecture, CPU model, region,
CPU utilization, average power per scope (sensors of one scope summed, best source per scope)
and when the host was last seen ("stale" after 3 of its collection intervals). With
--format json it prints what GET /api/v1/hosts serves (docs/web.md): per host also zone, age,
primary scope and source, measured or estimated, and latest power. It queries InfluxDB with
InfluxQL (/query), so it works on InfluxDB 1.8, 2.x (with a DBRP mapping for the bucket) and 3.x.

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
	since := fs.Duration("since", hosts.DefaultSince, "how far back to look")
	format := fs.String("format", "table", "table or json")
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
	if *format != "table" && *format != "json" {
		fmt.Fprintf(stderr, "fleetwatt-collector status: --format %q: want table or json\n", *format)
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
	if err := writeStatus(qctx, &influxql.Client{URL: cfg.Influx.URL, Token: token}, cfg.Influx, *since, *format, stdout, time.Now()); err != nil {
		fmt.Fprintf(stderr, "fleetwatt-collector status: %v\n", err)
		return 1
	}
	return 0
}

// status prints the hosts seen in the last since as a table.
func status(ctx context.Context, c *influxql.Client, ic config.Influx, since time.Duration, out io.Writer, now time.Time) error {
	return writeStatus(ctx, c, ic, since, "table", out, now)
}

// writeStatus prints the hosts seen in the last since as a table or as the JSON that
// GET /api/v1/hosts serves.
func writeStatus(ctx context.Context, c *influxql.Client, ic config.Influx, since time.Duration, format string, out io.Writer, now time.Time) error {
	l, err := hosts.Query(ctx, c, ic.Bucket, now.Add(-since), time.Time{}, now)
	if err != nil {
		return fmt.Errorf("%w (influxdb %s)", err, ic.URL)
	}
	if format == "json" {
		return hosts.WriteJSON(out, l)
	}
	if len(l.Hosts) == 0 {
		fmt.Fprintf(out, "no data in the last %s (influxdb %s, database %s)\n", shortDuration(since), ic.URL, ic.Bucket)
		return nil
	}
	printStatus(out, l.Hosts, now)
	fmt.Fprintf(out, "\n%s, data from the last %s (influxdb %s, database %s)\n", plural(len(l.Hosts), "host"), shortDuration(since), ic.URL, ic.Bucket)
	return nil
}

// plural writes "1 host", "2 hosts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func printStatus(out io.Writer, list []hosts.Host, now time.Time) {
	var scopes []string
	for _, h := range list {
		for _, r := range h.Power {
			if !slices.Contains(scopes, r.Scope) {
				scopes = append(scopes, r.Scope)
			}
		}
	}
	slices.SortFunc(scopes, func(a, b string) int {
		return cmp.Or(cmp.Compare(hosts.ScopeRank(a), hosts.ScopeRank(b)), strings.Compare(a, b))
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
	for _, h := range list {
		row := []string{dash(h.Host), dash(h.Arch), dash(truncate(h.CPUModel, 40)), dash(h.Region)}
		if h.Util != nil {
			row = append(row, fmt.Sprintf("%.1f%%", 100**h.Util))
		} else {
			row = append(row, "-")
		}
		for _, s := range scopes {
			if i := slices.IndexFunc(h.Power, func(r hosts.Reading) bool { return r.Scope == s }); i >= 0 {
				row = append(row, fmt.Sprintf("%.1f", h.Power[i].AvgW))
			} else {
				row = append(row, "-")
			}
		}
		if len(h.Power) == 0 {
			unpowered++
			if len(scopes) == 0 {
				row = append(row, "none reported")
			}
		}
		switch {
		case h.LastSeen == nil:
			row = append(row, "-")
		case h.Stale:
			row = append(row, now.Sub(*h.LastSeen).Round(time.Second).String()+" ago, stale")
		default:
			row = append(row, now.Sub(*h.LastSeen).Round(time.Second).String()+" ago")
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	if unpowered > 0 {
		fmt.Fprintf(out, "\n%d of %d hosts reported no power: their agents found no readable power sensor "+
			"(a VM has none; RAPL needs root). `fleetwatt-agent doctor` on such a host says why.\n", unpowered, len(list))
	}
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
