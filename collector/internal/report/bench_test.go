package report

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
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
// resamples per region). The query itself is BenchmarkFetch.
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

// BenchmarkFetch is the InfluxQL aggregation of a report: 30 days of host_1h points of
// FLEETWATT_BENCH_HOSTS hosts (default 2,000: 1.44 M points, which take minutes to write on
// two cores) summed by a real influxd into one row per host.
func BenchmarkFetch(b *testing.B) {
	hosts := 2000
	if v := os.Getenv("FLEETWATT_BENCH_HOSTS"); v != "" {
		var err error
		if hosts, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	const days = 30
	s := influxtest.Start(b)
	w, err := influx.New(influx.Options{URL: s.URL, Bucket: s.Bucket(), Timeout: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	end := time.Now().UTC().Truncate(time.Hour)
	start := end.Add(-days * 24 * time.Hour)
	specs := benchSpecs(hosts)
	began := time.Now()
	// One hour of one host: the sums of 360 ten-second samples.
	perHour := make([]HostRow, len(specs))
	for i, sp := range specs {
		perHour[i] = sp.row()
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for part := range 4 {
		wg.Go(func() {
			var pts []*write.Point
			for h := part; h < days*24; h += 4 {
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
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d host_1h points (%d hosts × %d days) in %s", hosts*days*24, hosts, days, time.Since(began).Round(time.Second))
	b.ReportAllocs()
	for b.Loop() {
		rows, err := Fetch(context.Background(), s.Client(), s.Bucket(), start, end)
		if err != nil || len(rows) != hosts {
			b.Fatalf("%d rows, %v", len(rows), err)
		}
	}
}
