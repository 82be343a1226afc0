package simulate_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fleetwatt/fleetwatt/agent/internal/export"
	"github.com/fleetwatt/fleetwatt/agent/internal/simulate"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// deliveredCounter wraps the real exporter and counts the energy points of the exports the
// collector acknowledged.
type deliveredCounter struct {
	sdkmetric.Exporter
	mu     *sync.Mutex
	points *int
}

func (d deliveredCounter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	if err := d.Exporter.Export(ctx, rm); err != nil {
		return err
	}
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == semconv.MetricEnergy {
				n += len(m.Data.(metricdata.Sum[float64]).DataPoints)
			}
		}
	}
	d.mu.Lock()
	*d.points += n
	d.mu.Unlock()
	return nil
}

// BenchmarkLoad is the load test of `make bench`: thousands of simulated hosts report every
// 10 s to one collector (with its write-ahead log) for two minutes; every acknowledged energy
// point must be in InfluxDB, and the collector's peak memory is reported.
// FLEETWATT_LOAD_HOSTS and FLEETWATT_LOAD_DURATION change the defaults (3000 hosts, 2m).
func BenchmarkLoad(b *testing.B) {
	hosts, duration := 3000, 2*time.Minute
	if v, err := strconv.Atoi(os.Getenv("FLEETWATT_LOAD_HOSTS")); err == nil && v > 0 {
		hosts = v
	}
	if v, err := time.ParseDuration(os.Getenv("FLEETWATT_LOAD_DURATION")); err == nil && v > 0 {
		duration = v
	}
	var spec strings.Builder
	spec.WriteString("groups:\n")
	regions := []string{"cn-beijing", "cn-hangzhou", "cn-qingdao", "cn-hongkong", "cn-shenzhen", "us-west-1"}
	per := hosts / (2 * len(regions))
	for _, r := range regions {
		fmt.Fprintf(&spec, "  - {region: %s, zone: %s-a, arch: amd64, cpu_model: AMD EPYC 7763, hosts: %d, sockets: 2, cores: 256, scope: wall, idle_w: 102, peak_w: 455, curve: linear, utilization: {mean: 0.4, diurnal_amplitude: 0.2, noise: 0.03}, ops_per_core_second: 1000, sensor_noise: 0.01}\n", r, r, per)
		fmt.Fprintf(&spec, "  - {region: %s, zone: %s-a, arch: arm64, cpu_model: Ampere Altra Q80-30, hosts: %d, sockets: 1, cores: 80, scope: wall, idle_w: 54, peak_w: 140, curve: linear, utilization: {mean: 0.4, diurnal_amplitude: 0.2, noise: 0.03}, ops_per_core_second: 1050, sensor_noise: 0.01}\n", r, r, per)
	}
	fleet, err := simulate.Load(strings.NewReader(spec.String()))
	if err != nil {
		b.Fatal(err)
	}
	s := influxtest.Start(b)
	bin := buildCollector(b)
	grpcAddr, httpAddr, listen := freeAddr(b), freeAddr(b), freeAddr(b)
	c := startProc(b, bin, listen, "--influx-url", s.URL, "--influx-bucket", s.Bucket(), "--wal-dir", b.TempDir(),
		"--otlp-grpc", grpcAddr, "--otlp-http", httpAddr, "--listen", listen, "--rollup-every", "0")

	for b.Loop() {
		var mu sync.Mutex
		delivered := 0
		ctx, cancel := context.WithTimeout(context.Background(), duration)
		start := time.Now()
		err := simulate.Run(ctx, simulate.Options{
			Spec: fleet, Seed: 1, Interval: 10 * time.Second, Concurrency: 32,
			Export: export.Options{Endpoint: "http://" + grpcAddr, Protocol: export.ProtocolGRPC},
			NewExporter: func(ctx context.Context, o export.Options) (sdkmetric.Exporter, error) {
				exp, err := export.NewExporter(ctx, o)
				return deliveredCounter{Exporter: exp, mu: &mu, points: &delivered}, err
			},
		}, slog.New(slog.DiscardHandler))
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		var stored float64
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
			series := s.Query(b, `SELECT count(energy_j) AS n FROM power`)
			if len(series) == 1 {
				stored = series[0].Rows()[0]["n"].(float64)
			}
			if int(stored) >= delivered || time.Now().After(deadline) {
				break
			}
		}
		if int(stored) != delivered {
			b.Errorf("%d energy points acknowledged, %v in InfluxDB", delivered, stored)
		}
		b.ReportMetric(float64(delivered)/elapsed.Seconds(), "energy-points/s")
		b.ReportMetric(float64(per*2*len(regions)), "hosts")
		peak := peakRSSMiB(b, c.cmd.Process.Pid)
		b.ReportMetric(peak, "collector-peak-MiB")
		b.ReportMetric(peak, "MB-rss") // the same peak, MiB, under the unit of make bench's table
	}
}

// peakRSSMiB reads a process's peak resident memory (VmHWM) from /proc.
func peakRSSMiB(b *testing.B, pid int) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/pid/status")
	return 0
}
