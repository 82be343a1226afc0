package influx

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/benchdata"
	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
)

// BenchmarkWrite measures the Writer's own work for one request of MaxLines points (the
// fleet's power, cpu, work and host points): encoding, gzip and the HTTP exchange, with a
// server that reads the body and answers 204 standing in for InfluxDB, whose time is
// BenchmarkEndToEndVsDirect's. writer=library is the same request through
// influxdb-client-go's WriteAPIBlocking.WritePoint with gzip, as the Writer sent it before
// it encoded and compressed the bodies itself. Reported: points/s on one core (GOMAXPROCS=1)
// and allocs/point.
func BenchmarkWrite(b *testing.B) {
	fleet, err := benchdata.New()
	if err != nil {
		b.Fatal(err)
	}
	points, _ := convert.Convert(fleet.Metrics(0, MaxLines/benchdata.PointsPerHost, time.Now().Add(-time.Hour)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)

	w, err := New(Options{URL: srv.URL, Bucket: "fleetwatt"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Close)
	client := influxdb2.NewClientWithOptions(srv.URL, "", influxdb2.DefaultOptions().
		SetUseGZip(true).SetPrecision(Precision).SetBatchSize(MaxLines).SetLogLevel(0))
	b.Cleanup(client.Close)
	library := client.WriteAPIBlocking("", "fleetwatt")

	for _, tc := range []struct {
		name  string
		write func(context.Context, []*write.Point) error
	}{
		{"writer=fleetwatt", w.Write},
		{"writer=library", func(ctx context.Context, p []*write.Point) error { return library.WritePoint(ctx, p...) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			b.ReportAllocs()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mallocs := ms.Mallocs
			for b.Loop() {
				if err := tc.write(b.Context(), points); err != nil {
					b.Fatal(err)
				}
			}
			runtime.ReadMemStats(&ms)
			n := float64(b.N * len(points))
			b.ReportMetric(n/b.Elapsed().Seconds(), "points/s")
			b.ReportMetric(float64(ms.Mallocs-mallocs)/n, "allocs/point")
		})
	}
}

// BenchmarkAppendPoint encodes one power point, 10 tags and 3 fields.
func BenchmarkAppendPoint(b *testing.B) {
	tags := []string{
		"arch", "amd64", "cpu_model", "AMD EPYC 7763 64-Core Processor", "host", "cn-hangzhou-amd64-00001",
		"method", "measured", "primary", "true", "region", "cn-hangzhou", "scope", "wall", "sensor", "simulated-wall",
		"source", "simulator", "zone", "cn-hangzhou-h",
	}
	p := point("power", tags, "energy_j", 2591.529559, "interval_s", 10.0, "power_w", 259.1529559)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendPoint(buf[:0], p)
	}
}
