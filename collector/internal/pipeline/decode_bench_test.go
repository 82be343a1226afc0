package pipeline

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/fleetwatt/fleetwatt/collector/internal/benchdata"
	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/collector/internal/limit"
)

// decodeHosts is the fleet BenchmarkDecode cycles through: the series limit then sees the
// same series again and again, as it does in production.
const decodeHosts = 1200

// BenchmarkDecode measures the collector's CPU work for one export request on one core
// (GOMAXPROCS=1, so the garbage collector's work is counted too): the OTLP/protobuf body is
// unmarshalled into pdata (as the receiver does), converted with the series limit (as
// Pipeline.ConsumeMetrics does) and encoded as line protocol (as influx.Writer does before it
// compresses the body). Bodies are the fleetwatt agent's exports (package benchdata), one host
// per request as the agent sends them, or 100 as a relay's or a batching SDK's export.
//
// Reported: points/s, InfluxDB points (lines of line protocol; 4 per host: power, cpu, work,
// host) per second; datapoints/s, OTLP data points (11 per host) per second; allocs/point
// and B/point. Unmarshalling alone (BenchmarkUnmarshal) takes about half the time.
func BenchmarkDecode(b *testing.B) {
	benchDecode(b, true)
}

// BenchmarkUnmarshal is BenchmarkDecode's first step alone: pdata's OTLP/protobuf decoding,
// the part of the collector's per-request work that the collector's code does not control.
func BenchmarkUnmarshal(b *testing.B) {
	benchDecode(b, false)
}

func benchDecode(b *testing.B, convertAndEncode bool) {
	fleet, err := benchdata.New()
	if err != nil {
		b.Fatal(err)
	}
	for _, perRequest := range []int{1, 100} {
		b.Run(fmt.Sprintf("hosts-per-request=%d", perRequest), func(b *testing.B) {
			bodies, err := fleet.Requests(0, decodeHosts, perRequest, time.Now().Add(-time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			series := limit.New(limit.Options{})
			opts := convert.Options{Admit: func(p *write.Point) bool { return series.Admit(limit.Anonymous, p) }}
			var lines []byte
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mallocs, allocated := ms.Mallocs, ms.TotalAlloc
			var points, dataPoints int64
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				req := pmetricotlp.NewExportRequest()
				if err := req.UnmarshalProto(bodies[i%len(bodies)]); err != nil {
					b.Fatal(err)
				}
				i++
				if !convertAndEncode {
					points += int64(perRequest * benchdata.PointsPerHost)
					dataPoints += int64(req.Metrics().DataPointCount())
					continue
				}
				pts, stats := opts.Convert(req.Metrics())
				if stats.Rejected != 0 || len(pts) != perRequest*benchdata.PointsPerHost {
					b.Fatalf("%d points, %+v", len(pts), stats)
				}
				lines = lines[:0]
				for _, p := range pts {
					if lines, err = influx.AppendPoint(lines, p); err != nil {
						b.Fatal(err)
					}
				}
				points += int64(len(pts))
				dataPoints += stats.DataPoints
			}
			runtime.ReadMemStats(&ms)
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(points)/s, "points/s")
			b.ReportMetric(float64(dataPoints)/s, "datapoints/s")
			b.ReportMetric(float64(ms.Mallocs-mallocs)/float64(points), "allocs/point")
			b.ReportMetric(float64(ms.TotalAlloc-allocated)/float64(points), "B/point")
		})
	}
}
