package export

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/fleetwatt/fleetwatt/agent/internal/collect"
	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpustat"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// receiver is an OTLP metrics endpoint on loopback, over gRPC or HTTP, that keeps what it
// receives.
type receiver struct {
	collectormetrics.UnimplementedMetricsServiceServer
	mu  sync.Mutex
	got []*collectormetrics.ExportMetricsServiceRequest
}

func (r *receiver) Export(_ context.Context, req *collectormetrics.ExportMetricsServiceRequest) (*collectormetrics.ExportMetricsServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, req)
	return &collectormetrics.ExportMetricsServiceResponse{}, nil
}

func (r *receiver) requests() []*collectormetrics.ExportMetricsServiceRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got
}

func startGRPC(t *testing.T, r *receiver) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectormetrics.RegisterMetricsServiceServer(srv, r)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}

func startHTTP(t *testing.T, r *receiver) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var m collectormetrics.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = r.Export(req.Context(), &m)
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(nil)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

func sample() collect.Sample {
	t0 := time.Unix(1_700_000_000, 0)
	t1 := t0.Add(10 * time.Second)
	pkg := sensor.Reading{ID: "package-0", Name: "package-0", Source: semconv.SourceRAPL, Scope: semconv.ScopeCPUPackage, Counter: true}
	return collect.Sample{
		At:    t1,
		Power: []energy.Delta{{Reading: pkg, Start: t0, End: t1, Joules: 850, TotalJ: 1700, Since: t0.Add(-10 * time.Second)}},
		CPU: &collect.CPU{
			Start: t0, End: t1, Since: t0.Add(-10 * time.Second),
			All:      cpustat.Times{User: 30, System: 7.5, Idle: 122.5},
			AllTotal: cpustat.Times{User: 60, System: 15, Idle: 245},
		},
	}
}

// TestExportOverBothProtocols sends one sample with the SDK's OTLP exporters, gRPC and HTTP,
// and checks what a real OTLP endpoint decodes: names, units, temporality, timestamps,
// attributes and values.
func TestExportOverBothProtocols(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			r := &receiver{}
			var endpoint string
			if proto == ProtocolGRPC {
				endpoint = "http://" + startGRPC(t, r)
			} else {
				endpoint = startHTTP(t, r) // bare host:port: http and /v1/metrics implied
			}
			ctx := context.Background()
			exp, err := NewExporter(ctx, Options{Endpoint: endpoint, Protocol: proto, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			res := resource.NewSchemaless(attribute.String(semconv.AttrHostName, "h1"), attribute.String(semconv.AttrHostArch, "arm64"))
			b := NewBuilder(res, "test", metricdata.DeltaTemporality)
			if err := exp.Export(ctx, b.Build(sample())); err != nil {
				t.Fatalf("export: %v", err)
			}
			if err := exp.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			reqs := r.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			checkRequest(t, reqs[0])
		})
	}
}

func checkRequest(t *testing.T, req *collectormetrics.ExportMetricsServiceRequest) {
	t.Helper()
	rm := req.GetResourceMetrics()[0]
	attrs := map[string]string{}
	for _, kv := range rm.GetResource().GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	if attrs[semconv.AttrHostName] != "h1" || attrs[semconv.AttrHostArch] != "arm64" {
		t.Errorf("resource attributes %v", attrs)
	}
	sm := rm.GetScopeMetrics()[0]
	if sm.GetScope().GetName() != semconv.InstrumentationScope {
		t.Errorf("scope %q", sm.GetScope().GetName())
	}
	t0, t1 := uint64(time.Unix(1_700_000_000, 0).UnixNano()), uint64(time.Unix(1_700_000_010, 0).UnixNano())
	byName := map[string]*metricspb.Metric{}
	for _, m := range sm.GetMetrics() {
		byName[m.GetName()] = m
	}
	energy := byName[semconv.MetricEnergy]
	if energy.GetUnit() != "J" || !energy.GetSum().GetIsMonotonic() ||
		energy.GetSum().GetAggregationTemporality() != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
		t.Errorf("hw.energy: %v", energy)
	}
	p := energy.GetSum().GetDataPoints()[0]
	if p.GetAsDouble() != 850 || p.GetStartTimeUnixNano() != t0 || p.GetTimeUnixNano() != t1 {
		t.Errorf("hw.energy point %v, want 850 J from %d to %d", p, t0, t1)
	}
	pa := map[string]string{}
	for _, kv := range p.GetAttributes() {
		pa[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	for k, v := range map[string]string{
		semconv.AttrHwID: "package-0", semconv.AttrSource: "rapl", semconv.AttrScope: "cpu-package",
		semconv.AttrMethod: "measured", semconv.AttrHwType: "cpu",
	} {
		if pa[k] != v {
			t.Errorf("hw.energy attribute %s = %q, want %q", k, pa[k], v)
		}
	}
	if w := byName[semconv.MetricPower].GetGauge().GetDataPoints()[0]; w.GetAsDouble() != 85 || w.GetTimeUnixNano() != t1 {
		t.Errorf("hw.power point %v, want 85 W at %d", w, t1)
	}
	modes := map[string]float64{}
	for _, dp := range byName[semconv.MetricCPUTime].GetSum().GetDataPoints() {
		modes[dp.GetAttributes()[0].GetValue().GetStringValue()] = dp.GetAsDouble()
	}
	if modes["user"] != 30 || modes["system"] != 7.5 || modes["idle"] != 122.5 || len(modes) != 7 {
		t.Errorf("system.cpu.time modes %v", modes)
	}
	if u := byName[semconv.MetricCPUUtilization].GetGauge().GetDataPoints()[0].GetAsDouble(); u != 37.5/160 {
		t.Errorf("system.cpu.utilization %v, want %v", u, 37.5/160)
	}
}

// TestCumulative: cumulative temporality sends the totals since the agent started.
func TestCumulative(t *testing.T) {
	t.Parallel()
	b := NewBuilder(resource.Empty(), "test", metricdata.CumulativeTemporality)
	rm := b.Build(sample())
	for _, m := range rm.ScopeMetrics[0].Metrics {
		sum, ok := m.Data.(metricdata.Sum[float64])
		if !ok {
			continue
		}
		if sum.Temporality != metricdata.CumulativeTemporality {
			t.Errorf("%s: temporality %v", m.Name, sum.Temporality)
		}
		p := sum.DataPoints[0]
		if !p.StartTime.Equal(time.Unix(1_699_999_990, 0)) {
			t.Errorf("%s: start %v, want the agent's start", m.Name, p.StartTime)
		}
		if m.Name == semconv.MetricEnergy && p.Value != 1700 {
			t.Errorf("hw.energy cumulative %v, want 1700", p.Value)
		}
	}
}

func TestNewExporterRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{
		{Endpoint: "ftp://x:1", Protocol: ProtocolGRPC},
		{Endpoint: "http://", Protocol: ProtocolGRPC},
		{Endpoint: "127.0.0.1:4317", Protocol: "udp"},
	} {
		if _, err := NewExporter(context.Background(), o); err == nil {
			t.Errorf("NewExporter(%+v) = nil error", o)
		}
	}
}
