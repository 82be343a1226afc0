package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/chart"
	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
	"github.com/fleetwatt/fleetwatt/collector/internal/report"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
)

const reportUsage = `Usage: fleetwatt-collector report [flags]

Prints the efficiency report over a range of whole hours (whole UTC days from 28 days on),
from the hourly and daily per-host rollups (host_1h, host_1d): per group (--by), hosts,
utilization, average power, energy, watts per busy CPU, idle and peak power of fitted power
curves, operations per joule, and cost and carbon per CPU-year with each region's price, grid carbon intensity and PUE; then, per region, ARM
against x86 at matched utilization with 95% bootstrap confidence intervals over hosts.
docs/report.md defines every number and the JSON format.

--format html writes one self-contained page to mail (inline CSS, the charts as inline SVG,
no script, no external URL): per region, in words, whether ARM is cheaper per busy core and
by how much, the charts, the groups, the notes and the definitions.

--format svg or png writes a chart to stdout, --chart NAME (default comparison):
  comparison  W per busy core, ARM vs x86 per region, with 95% intervals
  cost        USD per busy core-year, ARM vs x86 per region, with 95% intervals
  curves      fitted power curves per CPU model, idle and peak marked
  footprint   electricity cost and carbon per region over the range
  power       fleet power per region over time (raw primary readings)
  host        one host's power per scope and source and its utilization (--host NAME)
or, with --out DIR, every chart but host into DIR/NAME.svg (or .png).

  fleetwatt-collector report --since 720h --format html > report.html
  fleetwatt-collector report --since 168h --format png --chart cost > cost.png
  fleetwatt-collector report --since 168h --format svg --out charts/

The collector computes the rollups every --rollup-every; after a backfill, run
fleetwatt-collector rollup --from ... --to ... first.

Flags:
`

// reportTimeout bounds the report's query.
const reportTimeout = 2 * time.Minute

func reportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newSubcommand("report", reportUsage, stderr)
	fs := cmd.fs
	since := fs.String("since", "", "the range ending now, a duration such as 24h or 720h (default 24h without --from)")
	from := fs.String("from", "", "start of the range, RFC 3339 (2026-09-01T00:00:00Z); rounded down to the hour (the day from 28 days on)")
	to := fs.String("to", "", "end of the range, RFC 3339, exclusive; rounded up to the hour (the day from 28 days on) (default now)")
	by := fs.String("by", "region,arch,cpu_model", "group by any of region, zone, arch, cpu_model, scope, comma-separated")
	format := fs.String("format", "table", "table, csv, json, markdown, html, svg or png")
	chartName := fs.String("chart", "", "with --format svg or png: the chart, one of "+strings.Join(chart.Names, ", ")+" (default comparison)")
	host := fs.String("host", "", "with --chart host: the host")
	out := fs.String("out", "", "with --format svg or png: write every chart but host into this directory as NAME.svg or NAME.png")
	cmd.regionsFlag()
	if code, done := cmd.parse(args); done {
		return code
	}
	fail := cmd.fail
	f, t, err := report.ParseRange(*since, *from, *to, time.Now())
	if err != nil {
		return fail(2, err)
	}
	groupBy, err := report.ParseBy(*by)
	if err != nil {
		return fail(2, err)
	}
	charts := chartsOpts{format: *format, name: *chartName, host: *host, dir: *out}
	if err := charts.check(); err != nil {
		return fail(2, err)
	}
	cfg, token, err := cmd.config()
	if err != nil {
		return fail(2, err)
	}
	factors, err := regions.Load(cfg.RegionsFile)
	if err != nil {
		return fail(2, err)
	}
	qctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	src := chart.Source{
		Querier: &influxql.Client{URL: cfg.Influx.URL, Token: token, HTTP: noTimeout()},
		Bucket:  cfg.Influx.Bucket, Regions: factors,
	}
	if charts.timeSeries() {
		// The time series come from the raw measurements: no report needed.
		d, err := src.Draw(qctx, chart.Request{Name: charts.name, From: f, To: t, Host: charts.host})
		if err != nil {
			return fail(chartExit(err), err)
		}
		if err := charts.write(stdout, d); err != nil {
			return fail(1, err)
		}
		return 0
	}
	rep, err := report.Run(qctx, src.Querier, src.Bucket, report.Options{From: f, To: t, By: groupBy, Regions: factors})
	if err != nil {
		return fail(1, err)
	}
	switch {
	case *format == "html":
		err = chart.WriteHTML(stdout, rep)
	case charts.dir != "":
		err = charts.writeAll(qctx, stdout, src, rep, f, t)
	case charts.isChart():
		var d *chart.Drawing
		if d, err = chart.FromReport(charts.name, rep); err == nil {
			err = charts.write(stdout, d)
		}
	default:
		err = report.Write(stdout, rep, *format)
	}
	if err != nil {
		return fail(1, err)
	}
	return 0
}

// chartsOpts are the report command's chart flags.
type chartsOpts struct{ format, name, host, dir string }

func (o *chartsOpts) isChart() bool { return o.format == "svg" || o.format == "png" }

// timeSeries: one chart drawn from the raw measurements rather than the report.
func (o *chartsOpts) timeSeries() bool {
	return o.isChart() && o.dir == "" && (o.name == chart.NamePower || o.name == chart.NameHost)
}

func (o *chartsOpts) check() error {
	if !o.isChart() && o.format != "html" {
		if _, err := report.ParseFormat(o.format, "table"); err != nil {
			return fmt.Errorf("%w, html, svg or png", err)
		}
	}
	if !o.isChart() {
		if o.name != "" || o.host != "" || o.dir != "" {
			return errors.New("--chart, --host and --out go with --format svg or png")
		}
		return nil
	}
	switch {
	case o.dir != "" && (o.name != "" || o.host != ""):
		return errors.New("give --chart (one chart to stdout) or --out (every chart but host), not both")
	case o.name == "":
		o.name = chart.NameComparison
	case !slices.Contains(chart.Names, o.name):
		return fmt.Errorf("--chart %q: want one of %s", o.name, strings.Join(chart.Names, ", "))
	}
	if (o.name == chart.NameHost) != (o.host != "") {
		return errors.New("--chart host needs --host NAME, and --host needs --chart host")
	}
	return nil
}

func (o *chartsOpts) write(w io.Writer, d *chart.Drawing) error {
	if o.format == "png" {
		return chart.WritePNG(w, d)
	}
	return chart.WriteSVG(w, d)
}

// writeAll writes the report's charts and the fleet's power into o.dir and lists them.
func (o *chartsOpts) writeAll(ctx context.Context, stdout io.Writer, src chart.Source, rep *report.Report, from, to time.Time) error {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("charts directory: %w", err)
	}
	var drawings []*chart.Drawing
	for _, name := range chart.ReportNames {
		d, err := chart.FromReport(name, rep)
		if err != nil {
			return err
		}
		drawings = append(drawings, d)
	}
	power, err := src.Draw(ctx, chart.Request{Name: chart.NamePower, From: from, To: to})
	if err != nil {
		return err
	}
	for _, d := range append(drawings, power) {
		var buf bytes.Buffer
		if err := o.write(&buf, d); err != nil {
			return err
		}
		path := filepath.Join(o.dir, d.Name+"."+o.format)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write chart: %w", err)
		}
		fmt.Fprintln(stdout, path)
	}
	return nil
}

// chartExit is the exit code of a chart that could not be drawn: 2 for a bad request (an
// unknown host), 1 when InfluxDB fails.
func chartExit(err error) int {
	if errors.Is(err, chart.ErrNotFound) || errors.Is(err, report.ErrBadOptions) {
		return 2
	}
	return 1
}
