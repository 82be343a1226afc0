package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
	"github.com/fleetwatt/fleetwatt/collector/internal/report"
	"github.com/fleetwatt/fleetwatt/collector/internal/rollup"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
)

const rollupUsage = `Usage: fleetwatt-collector rollup [flags]

Computes the hourly per-host rollups (measurement host_1h) of every hour that overlaps the range
and writes them into InfluxDB, with each hour's cost and carbon from the regions table (the
shipped one, or --regions), then the daily rollups (host_1d, the sums of the hourly ones) of
every UTC day those hours fall in, whole. The running collector does this for the last three
hours every --rollup-every; run this after a backfill (fleetwatt-agent simulate --backfill) or
an import, over the backfilled range, and once over the hourly rollups' history after an
upgrade from a version without daily rollups (hours whose raw points have expired keep their
rollups). Rerunning it is harmless: a rollup computed twice is the same point.

Flags:
`

func rollupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newSubcommand("rollup", rollupUsage, stderr)
	fs := cmd.fs
	since := fs.String("since", "", "the range ending now, a duration such as 168h (default 24h without --from)")
	from := fs.String("from", "", "start of the range, RFC 3339; rounded down to the hour")
	to := fs.String("to", "", "end of the range, RFC 3339; rounded up to the hour (default now)")
	cmd.regionsFlag()
	if code, done := cmd.parse(args); done {
		return code
	}
	fail := cmd.fail
	f, t, err := report.ParseRange(*since, *from, *to, time.Now())
	if err != nil {
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
	w, err := influx.New(influx.Options{URL: cfg.Influx.URL, Token: token, Org: cfg.Influx.Org, Bucket: cfg.Influx.Bucket})
	if err != nil {
		return fail(2, err)
	}
	defer w.Close()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := rollup.New(&influxql.Client{URL: cfg.Influx.URL, Token: token, HTTP: noTimeout()}, w, cfg.Influx.Bucket, log)
	r.Regions = factors
	start := time.Now()
	st, err := r.Rollup(ctx, f, t)
	if err != nil {
		return fail(1, err)
	}
	fmt.Fprintf(stdout, "rolled up %d hours (%s to %s): %d host-hours, %d points; and %d days: %d points; written to %s in %s\n",
		st.Hours, f.UTC().Truncate(time.Hour).Format(time.RFC3339), t.UTC().Format(time.RFC3339),
		st.Hosts, st.Points, st.Days, st.DayPoints, cfg.Influx.Bucket, time.Since(start).Round(time.Millisecond))
	return 0
}

// noTimeout is an HTTP client whose requests the caller's context bounds, for queries that
// may take longer than the default client's 30 s.
func noTimeout() *http.Client { return &http.Client{} }
