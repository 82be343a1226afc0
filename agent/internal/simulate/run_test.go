package simulate

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"

	"github.com/fleetwatt/fleetwatt/agent/internal/export"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// receiver is a real OTLP/gRPC metrics endpoint on loopback that counts what it decodes.
type receiver struct {
	collectormetrics.UnimplementedMetricsServiceServer
	points, requests atomic.Int64
	keep             bool // keep per-host details (tests), or only count (benchmarks)

	mu     sync.Mutex
	hosts  map[string]int64   // host.name → points
	energy map[string]float64 // host.name → hw.energy, J
	bad    []string           // energy points that are not the simulator's primary wall reading
}

func (r *receiver) Export(_ context.Context, req *collectormetrics.ExportMetricsServiceRequest) (*collectormetrics.ExportMetricsServiceResponse, error) {
	r.requests.Add(1)
	for _, rm := range req.GetResourceMetrics() {
		var host string
		for _, kv := range rm.GetResource().GetAttributes() {
			if kv.GetKey() == semconv.AttrHostName {
				host = kv.GetValue().GetStringValue()
			}
		}
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				var n int
				switch d := m.GetData().(type) {
				case *metricspb.Metric_Sum:
					n = len(d.Sum.GetDataPoints())
				case *metricspb.Metric_Gauge:
					n = len(d.Gauge.GetDataPoints())
				}
				r.points.Add(int64(n))
				if !r.keep {
					continue
				}
				r.mu.Lock()
				r.hosts[host] += int64(n)
				if m.GetName() == semconv.MetricEnergy {
					for _, p := range m.GetSum().GetDataPoints() {
						r.energy[host] += p.GetAsDouble()
						attrs := map[string]string{}
						for _, kv := range p.GetAttributes() {
							attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
						}
						primary := false
						for _, kv := range p.GetAttributes() {
							if kv.GetKey() == semconv.AttrPrimary {
								primary = kv.GetValue().GetBoolValue()
							}
						}
						if attrs[semconv.AttrSource] != semconv.SourceSimulator || attrs[semconv.AttrScope] != "wall" || !primary {
							r.bad = append(r.bad, host)
						}
					}
				}
				r.mu.Unlock()
			}
		}
	}
	return &collectormetrics.ExportMetricsServiceResponse{}, nil
}

// startReceiver serves r on loopback until the test ends and returns its endpoint URL.
func startReceiver(tb testing.TB, r *receiver) string {
	tb.Helper()
	r.hosts, r.energy = map[string]int64{}, map[string]float64{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer()
	collectormetrics.RegisterMetricsServiceServer(srv, r)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	tb.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return "http://" + l.Addr().String()
}

// smallFleet is two pools of three hosts.
func smallFleet(t testing.TB) Spec {
	t.Helper()
	s, err := Load(strings.NewReader(`groups:
  - {region: cn-hangzhou, zone: cn-hangzhou-h, arch: arm64, cpu_model: Ampere Altra Q80-30, hosts: 3, sockets: 1,
     cores: 80, scope: wall, idle_w: 54, peak_w: 140, curve: teads,
     utilization: {mean: 0.35, diurnal_amplitude: 0.2, noise: 0.03}, ops_per_core_second: 1050, sensor_noise: 0.01}
  - {region: cn-hangzhou, zone: cn-hangzhou-h, arch: amd64, cpu_model: AMD EPYC 7763, hosts: 3, sockets: 2,
     cores: 256, scope: wall, idle_w: 102, peak_w: 455, curve: linear,
     utilization: {mean: 0.35, diurnal_amplitude: 0.2, noise: 0.03}, sensor_noise: 0}
`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// now is a fixed clock for backfills, off the interval grid.
func fixedNow() time.Time { return time.Date(2026, 3, 9, 12, 3, 27, 0, time.UTC) }

// TestBackfillEndToEnd sends a 6-hour backfill of a small fleet to a real OTLP receiver and
// expects every data point the plan announced, from every host, with the energy the hosts'
// truth says.
func TestBackfillEndToEnd(t *testing.T) {
	t.Parallel()
	r := &receiver{keep: true}
	endpoint := startReceiver(t, r)
	var prog bytes.Buffer
	spec := smallFleet(t)
	opts := Options{
		Spec: spec, Seed: 5, Backfill: 6 * time.Hour, Concurrency: 4, Version: "test",
		Export:   export.Options{Endpoint: endpoint, Protocol: export.ProtocolGRPC, Timeout: 10 * time.Second},
		Progress: &prog, Now: fixedNow,
	}
	if err := Run(context.Background(), opts, discard); err != nil {
		t.Fatal(err)
	}
	// 6 h at the backfill default of 5 min: 72 intervals; 16 points per interval on the ARM
	// hosts (with work), 15 on the x86 ones (without).
	const want = 72 * (3*16 + 3*15)
	if got := r.points.Load(); got != want {
		t.Errorf("received %d points, want %d", got, want)
	}
	if got := r.requests.Load(); got != 72*6 {
		t.Errorf("received %d requests, want one per host and interval, %d", got, 72*6)
	}
	hosts, _ := NewHosts(spec, 5)
	plan := PlanBackfill(hosts, fixedNow(), 6*time.Hour, 5*time.Minute)
	if plan.Points != want || !plan.End.Equal(time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("plan %+v", plan)
	}
	wantHosts := map[string]int64{}
	for _, h := range hosts {
		wantHosts[h.HostName] = 72 * int64(pointsPerInterval(h))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if diff := cmp.Diff(wantHosts, r.hosts); diff != "" {
		t.Errorf("points per host (-want +got):\n%s", diff)
	}
	if len(r.bad) > 0 {
		t.Errorf("energy points not labelled simulator/wall/primary from %v", r.bad)
	}
	for _, h := range hosts {
		truth := h.Integrate(plan.Start, plan.End).EnergyJ
		if got := r.energy[h.HostName]; !near(got, truth, 0.005) { // 1 % noise per reading, 72 readings
			t.Errorf("%s: received %.0f J, truth %.0f J", h.HostName, got, truth)
		}
	}
	out := prog.String()
	for _, w := range []string{
		"backfill 2026-03-09T06:00:00Z to 2026-03-09T12:00:00Z: 6 hosts × 72 intervals = 432 exports, 6,696 points expected\n",
		"6,696/6,696 points  100.0%",
		"backfill done: sent 6,696 of 6,696 points (100.0%)",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("progress output lacks %q:\n%s", w, out)
		}
	}
}

// flaky fails the first n exports (of all flaky exporters together), then passes the rest on.
type flaky struct {
	sdkmetric.Exporter
	left *atomic.Int64
}

func (f flaky) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	if f.left.Add(-1) >= 0 {
		return errors.New("collector not ready")
	}
	return f.Exporter.Export(ctx, rm)
}

// TestBackfillRetriesFailedExports: exports that fail are retried until the collector takes
// them; nothing is dropped.
func TestBackfillRetriesFailedExports(t *testing.T) {
	t.Parallel()
	r := &receiver{}
	endpoint := startReceiver(t, r)
	var left atomic.Int64
	left.Store(10)
	opts := Options{
		Spec: smallFleet(t), Seed: 1, Backfill: time.Hour, Concurrency: 3, Now: fixedNow,
		Export: export.Options{Endpoint: endpoint, Protocol: export.ProtocolGRPC},
		NewExporter: func(ctx context.Context, o export.Options) (sdkmetric.Exporter, error) {
			exp, err := export.NewExporter(ctx, o)
			return flaky{exp, &left}, err
		},
	}
	var logs bytes.Buffer
	if err := Run(context.Background(), opts, newTestLogger(&logs)); err != nil {
		t.Fatal(err)
	}
	if got, want := r.points.Load(), int64(12*(3*16+3*15)); got != want {
		t.Errorf("received %d points, want %d", got, want)
	}
	for _, w := range []string{"export failed; retrying with backoff", "export recovered", "failed_exports=10"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logs.String())
		}
	}
	if n := strings.Count(logs.String(), "export failed"); n != 1 {
		t.Errorf("%d failure log lines, want 1:\n%s", n, logs.String())
	}
}

// TestBackfillStops: cancelling stops a backfill cleanly, with a summary and no error.
func TestBackfillStops(t *testing.T) {
	t.Parallel()
	r := &receiver{}
	endpoint := startReceiver(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent atomic.Int64
	var prog bytes.Buffer
	opts := Options{
		Spec: smallFleet(t), Seed: 1, Backfill: 30 * 24 * time.Hour, Concurrency: 2, Now: fixedNow,
		Export: export.Options{Endpoint: endpoint, Protocol: export.ProtocolGRPC}, Progress: &prog,
		NewExporter: func(ctx context.Context, o export.Options) (sdkmetric.Exporter, error) {
			exp, err := export.NewExporter(ctx, o)
			return stopAfter{exp, &sent, cancel}, err
		},
	}
	if err := Run(ctx, opts, discard); err != nil {
		t.Fatal(err)
	}
	if got := r.requests.Load(); got < 50 || got > 60 {
		t.Errorf("%d requests after cancelling at 50", got)
	}
	if !strings.Contains(prog.String(), "backfill stopped: sent ") {
		t.Errorf("no summary:\n%s", prog.String())
	}
}

// stopAfter cancels the run after 50 exports.
type stopAfter struct {
	sdkmetric.Exporter
	n      *atomic.Int64
	cancel context.CancelFunc
}

func (s stopAfter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := s.Exporter.Export(ctx, rm)
	if s.n.Add(1) == 50 {
		s.cancel()
	}
	return err
}

// TestLive runs the fleet live for a few intervals: every host sends, with timestamps now.
func TestLive(t *testing.T) {
	t.Parallel()
	r := &receiver{keep: true}
	endpoint := startReceiver(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	opts := Options{
		Spec: smallFleet(t), Seed: 1, Interval: time.Second, Concurrency: 2,
		Export: export.Options{Endpoint: endpoint, Protocol: export.ProtocolGRPC},
	}
	done := make(chan error)
	start := time.Now()
	go func() { done <- Run(ctx, opts, discard) }()
	deadline := time.After(20 * time.Second)
	for r.requests.Load() < 12 { // two ticks of six hosts
		select {
		case <-deadline:
			t.Fatalf("%d requests after 20 s", r.requests.Load())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.hosts) != 6 {
		t.Errorf("hosts heard from: %v, want 6", r.hosts)
	}
	if time.Since(start) < 2*time.Second {
		t.Errorf("two 1 s intervals done in %v", time.Since(start))
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	t.Parallel()
	err := Run(context.Background(), Options{Spec: Spec{}, Interval: time.Millisecond, Backfill: -time.Hour, Concurrency: -1}, discard)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"interval 1ms", "backfill -1h0m0s", "concurrency -1", "groups: no groups"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

func TestProgressLines(t *testing.T) {
	t.Parallel()
	clock := fixedNow()
	var out bytes.Buffer
	p := newProgress(&out, 2_661_120, func() time.Time { return clock })
	if p.tty {
		t.Fatal("a buffer is not a terminal")
	}
	p.begin(Plan{Start: clock.Add(-168 * time.Hour), End: clock, Hosts: 120, Intervals: 2016, Exports: 241_920, Points: 2_661_120})
	clock = clock.Add(10 * time.Second)
	p.draw(1_000_000)
	clock = clock.Add(10 * time.Second)
	p.end(2_661_120, 20*time.Second, false)
	want := "backfill 2026-03-02T12:03:27Z to 2026-03-09T12:03:27Z: 120 hosts × 2016 intervals = 241,920 exports, 2,661,120 points expected\n" +
		"1,000,000/2,661,120 points   37.6%  100,000 points/s  ETA 17s\n" +
		"2,661,120/2,661,120 points  100.0%  133,056 points/s  ETA 0s\n" +
		"backfill done: sent 2,661,120 of 2,661,120 points (100.0%) in 20s, 133,056 points/s\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	if got, want := bar(1, 2), "[###############---------------]"; got != want {
		t.Errorf("bar = %q, want %q", got, want)
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// BenchmarkBackfillDefaultFleet backfills a week of the default fleet (120 hosts, 5-minute
// steps, 241,920 exports) into a real OTLP/gRPC receiver on loopback, and reports points/s.
func BenchmarkBackfillDefaultFleet(b *testing.B) {
	spec, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r := &receiver{}
		endpoint := startReceiver(b, r)
		start := time.Now()
		opts := Options{
			Spec: spec, Seed: 1, Backfill: 168 * time.Hour,
			Export: export.Options{Endpoint: endpoint, Protocol: export.ProtocolGRPC},
		}
		if err := Run(context.Background(), opts, discard); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(r.points.Load())/time.Since(start).Seconds(), "points/s")
		b.ReportMetric(float64(r.points.Load()), "points")
	}
}
