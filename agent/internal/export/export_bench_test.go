package export

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/fleetwatt/fleetwatt/agent/internal/collect"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpufreq"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpuidle"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/registry"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// BenchmarkExport sends one cycle's batch of the 2-socket Intel server (power, CPU time,
// frequency, idle states: what the agent sends every interval) through a Sender and the
// SDK's OTLP exporter to an endpoint on loopback that decodes and discards it, over each
// protocol. It is the agent's per-interval cost of sending, the part BenchmarkCycle leaves
// out; the endpoint's own work is in the figure too.
func BenchmarkExport(b *testing.B) {
	rm := fixtureBatch(b)
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		b.Run("protocol="+proto, func(b *testing.B) {
			var n atomic.Int64
			var endpoint string
			if proto == ProtocolGRPC {
				endpoint = "http://" + serveGRPC(b, &sink{n: &n})
			} else {
				endpoint = serveHTTP(b, &n)
			}
			ctx := context.Background()
			exp, err := NewExporter(ctx, Options{Endpoint: endpoint, Protocol: proto, Timeout: 5 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			s := NewSender(exp, 1<<20, slog.New(slog.DiscardHandler))
			defer func() {
				if err := s.Shutdown(ctx); err != nil {
					b.Error(err)
				}
			}()
			b.ReportAllocs()
			for b.Loop() {
				s.Enqueue(rm)
				if err := s.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
			if n.Load() < int64(b.N) {
				b.Fatalf("%d batches arrived, want %d", n.Load(), b.N)
			}
		})
	}
}

// fixtureBatch is one cycle's batch of the Intel fixture, as run.go builds it.
func fixtureBatch(b *testing.B) *metricdata.ResourceMetrics {
	b.Helper()
	fs := sysfs.New(fixture.Root(b, "intel-xeon-2s"))
	ctx := context.Background()
	sources, _ := registry.Open(ctx, registry.Env{FS: fs})
	freq, err := cpufreq.Open(fs)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = freq.Close() })
	idle, err := cpuidle.Open(fs)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = idle.Close() })
	now := time.Unix(1_700_000_000, 0)
	c := collect.New(fs, sources, collect.Options{Freq: freq, Idle: idle, Now: func() time.Time { return now }},
		slog.New(slog.DiscardHandler))
	c.Collect(ctx)
	now = now.Add(10 * time.Second)
	res := resource.NewSchemaless(attribute.String(semconv.AttrHostName, "bench"))
	rm := NewBuilder(res, "bench", metricdata.DeltaTemporality).Build(c.Collect(ctx))
	if rm == nil {
		b.Fatal("empty batch")
	}
	return rm
}

// sink is an OTLP/gRPC metrics endpoint that counts what it receives; serveHTTP is its
// OTLP/HTTP twin. Both decode each request, as a collector would.
type sink struct {
	collectormetrics.UnimplementedMetricsServiceServer
	n *atomic.Int64
}

func (s *sink) Export(context.Context, *collectormetrics.ExportMetricsServiceRequest) (*collectormetrics.ExportMetricsServiceResponse, error) {
	s.n.Add(1)
	return &collectormetrics.ExportMetricsServiceResponse{}, nil
}

func serveGRPC(b *testing.B, s *sink) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	collectormetrics.RegisterMetricsServiceServer(srv, s)
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(srv.Stop)
	return l.Addr().String()
}

func serveHTTP(b *testing.B, n *atomic.Int64) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req collectormetrics.ExportMetricsServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
	})}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}
