package report

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/collector/internal/plan"
	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
	"github.com/fleetwatt/fleetwatt/collector/internal/rollup"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// benchRegions are the default fleet's six regions.
var benchRegions = []string{"cn-beijing", "cn-hangzhou", "cn-qingdao", "cn-hongkong", "cn-shenzhen", "us-west-1"}

// benchSpecs is a fleet of n hosts: per region an ARM and an x86 pool.
func benchSpecs(n int) []spec {
	rng := rand.New(rand.NewPCG(1, 2))
	specs := make([]spec, n)
	for i := range specs {
		region := benchRegions[i%len(benchRegions)]
		s := spec{host: fmt.Sprintf("host-%04d", i), region: region, zone: region + "-a", scope: "wall", source: "simulator"}
		if i/len(benchRegions)%2 == 0 {
			s.arch, s.model, s.cores = "arm64", "Ampere Altra Q80-30", 80
			s.idle, s.peak, s.opsPerBusyS = 54+5*rng.NormFloat64(), 140+10*rng.NormFloat64(), 1200
		} else {
			s.arch, s.model, s.cores = "amd64", "AMD EPYC 9754", 256
			s.idle, s.peak, s.opsPerBusyS = 117+10*rng.NormFloat64(), 674+40*rng.NormFloat64(), 900
		}
		s.meanU, s.ampU = 0.3+0.2*rng.Float64(), 0.2
		specs[i] = s
	}
	return specs
}

// BenchmarkReport is the in-memory part of a report over 30 days × 2,000 hosts: the rows
// InfluxDB returns (one per host), per-host fits, grouping, and the bootstrap (2,000
// resamples per region). The queries are BenchmarkReport30d.
func BenchmarkReport(b *testing.B) {
	specs := benchSpecs(2000)
	rows := make([]HostRow, len(specs))
	for i, s := range specs {
		rows[i] = s.row()
	}
	opts := goldenOptions(b, nil)
	opts.To = opts.From.Add(30 * 24 * time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Build(rows, opts)
		if err != nil || len(rep.Comparisons) != len(benchRegions) {
			b.Fatalf("%v %d", err, len(rep.Comparisons))
		}
	}
}

// The benchmarks' stored fleet: benchDays days of host_1h points ending at benchEnd, so that a
// 30-day report with partial first and last days has data everywhere. The times are fixed,
// so that the data set can be cached between runs.
const benchDays = 31

var benchEnd = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// benchCacheVersion changes whenever benchWrite writes other points.
const benchCacheVersion = 1

// benchHosts is FLEETWATT_BENCH_HOSTS, 2,000 by default.
func benchHosts(b *testing.B) int {
	b.Helper()
	v := os.Getenv("FLEETWATT_BENCH_HOSTS")
	if v == "" {
		return 2000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("FLEETWATT_BENCH_HOSTS=%q: want a positive number", v)
	}
	return n
}

// benchCache is the directory that keeps a prepared influxd data directory per fleet size
// between runs: $FLEETWATT_BENCH_CACHE ("off" keeps none), else fleetwatt-bench in the
// user's cache directory.
func benchCache() string {
	if v := os.Getenv("FLEETWATT_BENCH_CACHE"); v != "" {
		if v == "off" {
			return ""
		}
		return v
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "fleetwatt-bench")
}

// benchServer starts influxd on a copy of a data directory holding the stored fleet's
// host_1h points (and nothing else), which it writes (1.5 M points for 2,000 hosts: about a
// minute on two cores) and caches the first time.
func benchServer(b *testing.B, hosts int) *influxtest.Server {
	b.Helper()
	dir := b.TempDir()
	var cached string
	if c := benchCache(); c != "" {
		cached = filepath.Join(c, fmt.Sprintf("host_1h-v%d-%dd-%dhosts", benchCacheVersion, benchDays, hosts))
	}
	// As a long-running influxd would, snapshot the cache and fully compact each shard once
	// written to: the month a report reads lies in compacted TSM files, not in the cache.
	b.Setenv("INFLUXDB_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION", "1s")
	b.Setenv("INFLUXDB_DATA_COMPACT_FULL_WRITE_COLD_DURATION", "1s")
	if _, err := os.Stat(cached); cached == "" || err != nil {
		build := b.TempDir()
		s, err := influxtest.StartDir(build, "fleetwatt")
		if err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		werr := benchWrite(s, hosts)
		if werr == nil {
			b.Logf("wrote %d host_1h points (%d hosts × %d days) in %s", hosts*benchDays*24, hosts, benchDays, time.Since(began).Round(time.Second))
			benchSettle(b, build)
		}
		if err := errors.Join(werr, s.Stop()); err != nil {
			b.Fatal(err)
		}
		if cached == "" {
			dir = build
		} else {
			part := cached + ".part"
			if err := errors.Join(os.RemoveAll(part), os.CopyFS(part, os.DirFS(build)), os.Rename(part, cached)); err != nil {
				b.Logf("not cached: %v", err)
				cached, dir = "", build
			}
		}
	}
	if cached != "" {
		if err := os.CopyFS(dir, os.DirFS(cached)); err != nil {
			b.Fatalf("copy the cached data set %s: %v", cached, err)
		}
	}
	s, err := influxtest.StartDir(dir, "fleetwatt")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Stop(); err != nil {
			b.Error(err)
		}
	})
	return s
}

// benchWrite writes the stored fleet's host_1h points: every hour of a host the sums of 360
// ten-second samples (half of spec.row's two hours).
func benchWrite(s *influxtest.Server, hosts int) error {
	w, err := influx.New(influx.Options{URL: s.URL, Bucket: s.Bucket(), Timeout: 5 * time.Minute})
	if err != nil {
		return err
	}
	defer w.Close()
	start := benchEnd.Add(-benchDays * rollup.Day)
	specs := benchSpecs(hosts)
	perHour := make([]HostRow, len(specs))
	for i, sp := range specs {
		perHour[i] = sp.row()
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for part := range 4 {
		wg.Go(func() {
			var pts []*write.Point
			for h := part; h < benchDays*24; h += 4 {
				ts := start.Add(time.Duration(h) * time.Hour)
				for i, r := range perHour {
					sp := specs[i]
					tags := map[string]string{
						semconv.TagHost: sp.host, semconv.TagArch: sp.arch, semconv.TagCPUModel: sp.model,
						semconv.TagRegion: sp.region, semconv.TagZone: sp.zone, semconv.TagScope: sp.scope,
						semconv.TagSource: sp.source,
					}
					c := r.Curve
					pts = append(pts, write.NewPoint(semconv.MeasurementHostHour, tags, map[string]any{
						semconv.FieldEnergy: r.Energy / 2, semconv.FieldInterval: r.Interval / 2,
						semconv.FieldBusy: r.Busy / 2, semconv.FieldTotal: r.Total / 2, semconv.FieldCPUInterval: r.CPUInterval / 2,
						semconv.FieldOps: r.Ops / 2, semconv.FieldSamples: c.N / 2,
						semconv.FieldSumU: c.U / 2, semconv.FieldSumUU: c.UU / 2, semconv.FieldSumUUU: c.UUU / 2,
						semconv.FieldSumUUUU: c.UUUU / 2, semconv.FieldSumP: c.P / 2, semconv.FieldSumUP: c.UP / 2,
						semconv.FieldSumUUP: c.UUP / 2, semconv.FieldSumPP: c.PP / 2,
					}, ts))
					if len(pts) >= influx.MaxLines {
						if err := w.Write(context.Background(), pts); err != nil {
							errs <- err
							return
						}
						pts = pts[:0]
					}
				}
			}
			if err := w.Write(context.Background(), pts); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// benchSettle waits until influxd, running on dir, has written its cache to TSM files and
// compacted every shard into one, or for a few minutes.
func benchSettle(b *testing.B, dir string) {
	b.Helper()
	began := time.Now()
	for time.Since(began) < 5*time.Minute {
		time.Sleep(time.Second)
		settled := true
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			entries, err := os.ReadDir(path)
			if err != nil {
				return err
			}
			tsm := 0
			for _, e := range entries {
				info, err := e.Info()
				if err != nil {
					return err
				}
				switch filepath.Ext(e.Name()) {
				case ".tsm":
					tsm++
				case ".wal", ".tmp":
					settled = settled && (filepath.Ext(e.Name()) == ".wal" && info.Size() == 0)
				}
			}
			settled = settled && tsm <= 1
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if settled {
			b.Logf("influxd compacted its shards in %s", time.Since(began).Round(time.Second))
			return
		}
	}
	b.Logf("influxd still compacting after %s; going on", time.Since(began).Round(time.Second))
}

// BenchmarkReport30d is a report over 30 days × FLEETWATT_BENCH_HOSTS hosts (default
// 2,000) with daily rollups present, against a real influxd holding 31 days of their hourly
// rollups (1.49 M host_1h points, cached between runs; benchServer) and the daily rollups
// that rollup.Days computes from them at the start:
//
//   - report: Run over the last 720 h ending at 14:00 UTC, which Range widens to 31 whole
//     days read from host_1d, then Build: the end-to-end figure (s/report);
//   - plan: the capacity plan's report (grouped by region, arch, cpu_model and scope) and
//     plan.Compute, as `fleetwatt-collector plan` runs them (s/plan);
//   - fetch=daily: Fetch over the same 31 days;
//   - fetch=daily-edges: Fetch over 30 days with partial first and last days (10 + 14 hours
//     from host_1h);
//   - fetch=hourly: the same 31 days summed from host_1h by InfluxDB, as Fetch did before the
//     daily rollups; it also checks that the daily path returns the same rows;
//   - rollup=day: recomputing one day's daily rollups, what the collector does every
//     rollup.every for today (s/day).
func BenchmarkReport30d(b *testing.B) {
	hosts := benchHosts(b)
	s := benchServer(b, hosts)
	ctx := context.Background()
	w, err := influx.New(influx.Options{URL: s.URL, Bucket: s.Bucket(), Timeout: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	roller := rollup.New(s.Client(), w, s.Bucket(), slog.New(slog.DiscardHandler))
	start := benchEnd.Add(-benchDays * rollup.Day)
	began := time.Now()
	st, err := roller.Days(ctx, start, benchEnd)
	if err != nil || st.DayPoints != benchDays*hosts {
		b.Fatalf("daily rollups: %+v, %v; want %d points", st, err, benchDays*hosts)
	}
	b.Logf("computed %d host_1d points (%d days) in %s", st.DayPoints, st.Days, time.Since(began).Round(time.Second))
	benchSettle(b, s.Dir)

	table, err := regions.Load("")
	if err != nil {
		b.Fatal(err)
	}
	// --since 720h at 14:00 UTC on the data's last day: 31 whole days.
	now := benchEnd.Add(-10 * time.Hour)
	opts := Options{From: now.Add(-720 * time.Hour), To: now, Regions: table}
	from, to := Range(opts.From, opts.To)
	if !from.Equal(start) || !to.Equal(benchEnd) {
		b.Fatalf("720 h to %s covers [%s, %s), want the data's %d days", now, from, to, benchDays)
	}

	b.Run("report", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rep, err := Run(ctx, s.Client(), s.Bucket(), opts)
			if err != nil || len(rep.Comparisons) != len(benchRegions) || rep.Hours != 31*24 {
				b.Fatalf("%v: %d comparisons, %d hours", err, len(rep.Comparisons), rep.Hours)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/report")
	})
	b.Run("plan", func(b *testing.B) {
		b.ReportAllocs()
		popts := opts
		popts.By = []string{KeyRegion, KeyArch, KeyCPUModel, KeyScope}
		for b.Loop() {
			res, err := benchPlan(ctx, s, popts, "cn-hangzhou")
			if err != nil || res.HostsRemoved == 0 {
				b.Fatalf("%+v, %v", res, err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/plan")
	})
	var daily []HostRow
	b.Run("fetch=daily", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if daily, err = Fetch(ctx, s.Client(), s.Bucket(), from, to); err != nil || len(daily) != hosts {
				b.Fatalf("%d rows, %v", len(daily), err)
			}
		}
	})
	b.Run("fetch=daily-edges", func(b *testing.B) {
		b.ReportAllocs()
		from, to := benchEnd.Add(-30*rollup.Day-10*time.Hour), benchEnd.Add(-10*time.Hour)
		for b.Loop() {
			rows, err := Fetch(ctx, s.Client(), s.Bucket(), from, to)
			if err != nil || len(rows) != hosts {
				b.Fatalf("%d rows, %v", len(rows), err)
			}
		}
	})
	b.Run("fetch=hourly", func(b *testing.B) {
		b.ReportAllocs()
		f := fetcher{q: s.Client(), bucket: s.Bucket(), db: s.Database, rp: "autogen"}
		var hourly []HostRow
		for b.Loop() {
			if hourly, err = f.sums(ctx, semconv.MeasurementHostHour, from, to); err != nil || len(hourly) != hosts {
				b.Fatalf("%d rows, %v", len(hourly), err)
			}
		}
		if daily == nil {
			return
		}
		slices.SortFunc(hourly, func(a, b HostRow) int { return a.key().compare(b.key()) })
		for i, r := range hourly {
			if d := daily[i]; d.key() != r.key() || !nearRow(d, r, 1e-12) {
				b.Fatalf("row %d: daily %+v, hourly %+v", i, d, r)
			}
		}
	})
	b.Run("rollup=day", func(b *testing.B) {
		for b.Loop() {
			st, err := roller.Days(ctx, benchEnd.Add(-rollup.Day), benchEnd)
			if err != nil || st.DayPoints != hosts {
				b.Fatalf("%+v, %v", st, err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/day")
	})
}

// benchPlan is what `fleetwatt-collector plan --region region --from amd64 --to arm64` does:
// the report, the two pools' groups, plan.Compute.
func benchPlan(ctx context.Context, s *influxtest.Server, opts Options, region string) (plan.Result, error) {
	rep, err := Run(ctx, s.Client(), s.Bucket(), opts)
	if err != nil {
		return plan.Result{}, err
	}
	pools := map[string]plan.Pool{}
	for _, g := range rep.Groups {
		if g.Region != region || g.Scope != string(semconv.ScopeWall) || g.IdleW == nil || g.PeakW == nil {
			continue
		}
		pools[g.Arch] = plan.Pool{
			Region: g.Region, Arch: g.Arch, CPUModel: g.CPUModel, Scope: g.Scope, Hosts: g.Hosts,
			CoresPerHost: g.CoresPerHost, AvgUtil: g.AvgUtil, IdleW: *g.IdleW, PeakW: *g.PeakW,
		}
	}
	f, _ := opts.Regions.Get(region)
	return plan.Compute(plan.Request{
		Region: region, From: pools["amd64"], To: pools["arm64"], Share: 0.5, TargetUtil: 0.6, Basis: plan.BasisCores,
	}, f)
}

// nearRow reports whether a's and b's sums agree within rel, relatively.
func nearRow(a, b HostRow, rel float64) bool {
	av := []float64{
		a.Energy, a.Interval, a.Busy, a.Total, a.CPUInterval, a.Ops, a.Curve.N, a.Curve.U,
		a.Curve.UU, a.Curve.UUU, a.Curve.UUUU, a.Curve.P, a.Curve.UP, a.Curve.UUP, a.Curve.PP,
	}
	bv := []float64{
		b.Energy, b.Interval, b.Busy, b.Total, b.CPUInterval, b.Ops, b.Curve.N, b.Curve.U,
		b.Curve.UU, b.Curve.UUU, b.Curve.UUUU, b.Curve.P, b.Curve.UP, b.Curve.UUP, b.Curve.PP,
	}
	for i := range av {
		if math.Abs(av[i]-bv[i]) > rel*math.Max(math.Abs(av[i]), math.Abs(bv[i])) {
			return false
		}
	}
	return a.HasOps == b.HasOps
}
