package main

import (
	"context"
	"io"
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
	"github.com/fleetwatt/fleetwatt/collector/internal/report"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
)

const reportUsage = `Usage: fleetwatt-collector report [flags]

Prints the efficiency report over a range of whole hours, from the hourly per-host rollups
(measurement host_1h): per group (--by), hosts, utilization, average power, energy, watts per
busy CPU, idle and peak power of fitted power curves, operations per joule, and cost and carbon
per CPU-year with each region's price, grid carbon intensity and PUE; then, per region, ARM
against x86 at matched utilization with 95% bootstrap confidence intervals over hosts.
docs/report.md defines every number and the JSON format.

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
	from := fs.String("from", "", "start of the range, RFC 3339 (2026-09-01T00:00:00Z); rounded down to the hour")
	to := fs.String("to", "", "end of the range, RFC 3339, exclusive; rounded up to the hour (default now)")
	by := fs.String("by", "region,arch,cpu_model", "group by any of region, zone, arch, cpu_model, scope, comma-separated")
	format := fs.String("format", "table", "table, csv, json or markdown")
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
	if _, err := report.ParseFormat(*format, "table"); err != nil {
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
	rep, err := report.Run(qctx, &influxql.Client{URL: cfg.Influx.URL, Token: token, HTTP: noTimeout()},
		cfg.Influx.Bucket, report.Options{From: f, To: t, By: groupBy, Regions: factors})
	if err != nil {
		return fail(1, err)
	}
	if err := report.Write(stdout, rep, *format); err != nil {
		return fail(1, err)
	}
	return 0
}
