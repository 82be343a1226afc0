package simulate_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fleetwatt/fleetwatt/agent/internal/export"
	"github.com/fleetwatt/fleetwatt/agent/internal/simulate"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// faultSpec is a small fleet without sensor noise, so that the energy it sends is exactly the
// integral of its hosts' power.
const faultSpec = `groups:
  - {region: cn-hangzhou, zone: cn-hangzhou-h, arch: amd64, cpu_model: AMD EPYC 7763, hosts: 4, sockets: 2, cores: 256,
     scope: wall, idle_w: 102, peak_w: 455, curve: linear, utilization: {mean: 0.4, diurnal_amplitude: 0.2, noise: 0.03},
     sensor_noise: 0}
  - {region: cn-hangzhou, zone: cn-hangzhou-h, arch: arm64, cpu_model: Ampere Altra Q80-30, hosts: 4, sockets: 1, cores: 80,
     scope: wall, idle_w: 54, peak_w: 140, curve: linear, utilization: {mean: 0.4, diurnal_amplitude: 0.2, noise: 0.03},
     sensor_noise: 0}
`

// countingExporter counts the hw.energy data points and joules a run sends, without a network:
// what the fleet produces, to compare with what InfluxDB ends up holding.
type countingExporter struct {
	sdkmetric.Exporter
	mu     sync.Mutex
	points int
	joules float64
}

func (c *countingExporter) Export(_ context.Context, rm *metricdata.ResourceMetrics) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != semconv.MetricEnergy {
				continue
			}
			for _, p := range m.Data.(metricdata.Sum[float64]).DataPoints {
				c.points++
				c.joules += p.Value
			}
		}
	}
	return nil
}

func (c *countingExporter) Shutdown(context.Context) error { return nil }

// TestNothingLostThroughFaults: the fleet starts sending while the collector is down (it
// keeps its data and retries), InfluxDB is down too, the collector — with a write-ahead log —
// comes up, acknowledges everything into its log, and is killed with SIGKILL during the
// outage; then InfluxDB and the collector come back. Every energy point the fleet produced
// must be in InfluxDB, exactly once, and the joules must add up exactly.
func TestNothingLostThroughFaults(t *testing.T) {
	spec, err := simulate.Load(strings.NewReader(faultSpec))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Hour)
	opts := simulate.Options{
		Spec: spec, Seed: 11, Backfill: 6 * time.Hour, Interval: 5 * time.Minute,
		Now: func() time.Time { return now }, Version: "test",
	}

	// What the fleet produces.
	want := &countingExporter{}
	counted := opts
	counted.NewExporter = func(context.Context, export.Options) (sdkmetric.Exporter, error) { return want, nil }
	if err := simulate.Run(context.Background(), counted, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}

	s1 := influxtest.Start(t)
	dir := s1.Dir
	if err := s1.Stop(); err != nil { // InfluxDB is down from the start
		t.Fatal(err)
	}
	bin := buildCollector(t)
	grpcAddr, httpAddr, listen := freeAddr(t), freeAddr(t), freeAddr(t)
	walDir := t.TempDir()
	args := func(influxURL string) []string {
		return []string{
			"--influx-url", influxURL, "--influx-bucket", s1.Bucket(), "--wal-dir", walDir,
			"--otlp-grpc", grpcAddr, "--otlp-http", httpAddr, "--listen", listen, "--rollup-every", "0",
		}
	}

	// The fleet sends while nothing listens: it keeps every batch and retries.
	sent := make(chan error, 1)
	run := opts
	run.Export = export.Options{Endpoint: "http://" + grpcAddr, Protocol: export.ProtocolGRPC, Timeout: 2 * time.Second}
	go func() { sent <- simulate.Run(context.Background(), run, slog.New(slog.DiscardHandler)) }()
	time.Sleep(1500 * time.Millisecond)

	c1 := startProc(t, bin, listen, args(s1.URL)...) // InfluxDB still down: into the log
	select {
	case err := <-sent:
		if err != nil {
			t.Fatalf("fleet: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the fleet did not finish sending within 2 minutes")
	}
	c1.kill(t) // SIGKILL, everything acknowledged only in the log

	s2, err := influxtest.StartDir(dir, s1.Database) // InfluxDB is back, its data intact
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Stop() })
	startProc(t, bin, listen, args(s2.URL)...)

	var points, joules float64
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		series := s2.Query(t, `SELECT count(energy_j) AS n, sum(energy_j) AS j FROM power`)
		if len(series) == 1 {
			r := series[0].Rows()[0]
			points, joules = r["n"].(float64), r["j"].(float64)
			if int(points) >= want.points {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("InfluxDB holds %v energy points after a minute, want %d", points, want.points)
		}
	}
	if int(points) != want.points {
		t.Errorf("InfluxDB holds %v energy points, the fleet produced %d", points, want.points)
	}
	if d := joules - want.joules; d > 1e-6*want.joules || d < -1e-6*want.joules {
		t.Errorf("InfluxDB holds %.3f J, the fleet produced %.3f J", joules, want.joules)
	}
	t.Logf("%d energy points and %.0f J produced; the same in InfluxDB after the outage and a SIGKILL", want.points, want.joules)
}

func buildCollector(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fleetwatt-collector")
	build := exec.Command("go", "build", "-o", bin, "github.com/fleetwatt/fleetwatt/collector")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build collector: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

// startProc starts the collector and waits until it answers /healthz on listen (it is alive;
// /readyz would wait for InfluxDB).
func startProc(t testing.TB, bin, listen string, args ...string) *proc {
	return startProcTLS(t, bin, "http://"+listen, http.DefaultClient, args...)
}

// startProcTLS is startProc for a listener at base, reached with client.
func startProcTLS(t testing.TB, bin, base string, client *http.Client, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), logs: &bytes.Buffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("collector log:\n%s", p.logs.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := client.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not up:\n%s", p.logs.String())
		}
	}
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}
