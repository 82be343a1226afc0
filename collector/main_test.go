package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.uber.org/goleak"

	"github.com/fleetwatt/fleetwatt/collector/internal/config"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startCollector runs run() against the InfluxDB at s and returns its config and a function
// that stops it (as SIGTERM would) and returns run's error.
func startCollector(t *testing.T, s *influxtest.Server, log io.Writer) (config.Config, func() error) {
	t.Helper()
	return startCollectorWith(t, s, log, func(*config.Config) {})
}

// startCollectorWith is startCollector with edit applied to the configuration first.
func startCollectorWith(t *testing.T, s *influxtest.Server, log io.Writer, edit func(*config.Config)) (config.Config, func() error) {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.Influx.URL, cfg.Influx.Bucket = s.URL, s.Bucket()
	cfg.OTLP.GRPC, cfg.OTLP.HTTP, cfg.Listen = freeAddr(t), freeAddr(t), freeAddr(t)
	edit(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.NewTextHandler(log, nil))) }()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			return errors.New("run did not return within a minute of cancellation")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + cfg.Listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			_ = stop()
			t.Fatalf("collector not ready within 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cfg, stop
}

func deltaSelector(sdkmetric.InstrumentKind) metricdata.Temporality {
	return metricdata.DeltaTemporality
}

// TestEndToEnd: the OpenTelemetry Go SDK sends fleetwatt's metrics over OTLP/gRPC and
// OTLP/HTTP to the collector's run(), which writes them into a real InfluxDB; the stored
// points are read back with InfluxQL, and `status` summarises them.
func TestEndToEnd(t *testing.T) {
	s := influxtest.Start(t)
	var logs bytes.Buffer
	cfg, stop := startCollector(t, s, &logs)
	ctx := t.Context()

	grpcExp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithInsecure(),
		otlpmetricgrpc.WithEndpoint(cfg.OTLP.GRPC), otlpmetricgrpc.WithTemporalitySelector(deltaSelector))
	if err != nil {
		t.Fatal(err)
	}
	httpExp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithInsecure(),
		otlpmetrichttp.WithEndpoint(cfg.OTLP.HTTP), otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression),
		otlpmetrichttp.WithTemporalitySelector(deltaSelector))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(
		attribute.String(semconv.AttrHostName, "arm-1"),
		attribute.String(semconv.AttrHostArch, "arm64"),
		attribute.String(semconv.AttrHostCPUModel, "Neoverse-V2"),
		attribute.String(semconv.AttrCloudRegion, "cn-hangzhou"),
		attribute.String(semconv.AttrServiceVersion, "0.3.0"),
		attribute.Int(semconv.AttrCores, 72),
	)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(grpcExp, sdkmetric.WithInterval(time.Hour))))
	meter := mp.Meter(semconv.InstrumentationScope)
	energy, err := meter.Float64Counter(semconv.MetricEnergy, metric.WithUnit(semconv.UnitJoule))
	if err != nil {
		t.Fatal(err)
	}
	cpuTime, err := meter.Float64Counter(semconv.MetricCPUTime, metric.WithUnit(semconv.UnitSecond))
	if err != nil {
		t.Fatal(err)
	}
	energy.Add(ctx, 1800, metric.WithAttributes(
		attribute.String(semconv.AttrHwID, "hwmon0/power1"),
		attribute.String(semconv.AttrHwName, "CPU power"),
		attribute.String(semconv.AttrSource, semconv.SourceHwmon),
		attribute.String(semconv.AttrScope, string(semconv.ScopeCPUPackage)),
		attribute.String(semconv.AttrMethod, semconv.MethodMeasured),
	))
	for mode, v := range map[string]float64{semconv.ModeUser: 10, semconv.ModeSystem: 5, semconv.ModeIdle: 80, semconv.ModeIOWait: 5} {
		cpuTime.Add(ctx, v, metric.WithAttributes(attribute.String(semconv.AttrCPUMode, mode)))
	}
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatalf("export over gRPC: %v", err)
	}
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Any OpenTelemetry program: a histogram over OTLP/HTTP, stored under its own name.
	mp2 := sdkmetric.NewMeterProvider(sdkmetric.WithResource(resource.NewSchemaless(
		attribute.String(semconv.AttrHostName, "app-1"), attribute.String(semconv.AttrServiceName, "checkout"))),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(httpExp, sdkmetric.WithInterval(time.Hour))))
	hist, err := mp2.Meter("checkout").Float64Histogram("http.server.duration",
		metric.WithExplicitBucketBoundaries(0.1, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []float64{0.05, 0.5, 0.7, 3} {
		hist.Record(ctx, v, metric.WithAttributes(attribute.String("http.route", "/pay")))
	}
	if err := mp2.ForceFlush(ctx); err != nil {
		t.Fatalf("export over HTTP: %v", err)
	}
	if err := mp2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Everything acknowledged is stored: stop the collector first, then look.
	if err := stop(); err != nil {
		t.Fatalf("run: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "points_written=4") {
		t.Errorf("shutdown log lacks the totals (points_written=4):\n%s", logs.String())
	}

	power := s.Query(t, `SELECT * FROM power`)
	if len(power) != 1 || len(power[0].Values) != 1 {
		t.Fatalf("power: %+v, want one point", power)
	}
	row := power[0].Rows()[0]
	interval, _ := row[semconv.FieldInterval].(float64)
	if interval <= 0 || interval > 60 {
		t.Errorf("interval_s = %v, want the SDK's collection interval (0, 60]", row[semconv.FieldInterval])
	}
	if pw, _ := row[semconv.FieldPower].(float64); math.Abs(pw-1800/interval) > 1e-6*pw {
		t.Errorf("power_w = %v, want energy_j / interval_s = %v", pw, 1800/interval)
	}
	delete(row, "time")
	delete(row, semconv.FieldInterval)
	delete(row, semconv.FieldPower)
	wantPower := map[string]any{
		semconv.FieldEnergy: 1800.0,
		semconv.TagHost:     "arm-1", semconv.TagArch: "arm64", semconv.TagCPUModel: "Neoverse-V2",
		semconv.TagRegion: "cn-hangzhou", semconv.TagScope: "cpu-package", semconv.TagSource: "hwmon",
		semconv.TagMethod: "measured", semconv.TagSensor: "hwmon0/power1",
	}
	if diff := cmp.Diff(wantPower, row); diff != "" {
		t.Errorf("power point (-want +got):\n%s", diff)
	}

	cpu := s.Query(t, `SELECT busy_s, total_s, user_s, system_s, idle_s, iowait_s FROM cpu GROUP BY *`)
	if len(cpu) != 1 || len(cpu[0].Values) != 1 {
		t.Fatalf("cpu: %+v, want one point", cpu)
	}
	crow := cpu[0].Rows()[0]
	delete(crow, "time")
	if diff := cmp.Diff(map[string]any{"busy_s": 15.0, "total_s": 100.0, "user_s": 10.0, "system_s": 5.0, "idle_s": 80.0, "iowait_s": 5.0}, crow); diff != "" {
		t.Errorf("cpu point (-want +got):\n%s", diff)
	}
	wantTags := map[string]string{semconv.TagHost: "arm-1", semconv.TagArch: "arm64", semconv.TagCPUModel: "Neoverse-V2", semconv.TagRegion: "cn-hangzhou"}
	if diff := cmp.Diff(wantTags, cpu[0].Tags); diff != "" {
		t.Errorf("cpu tags (-want +got):\n%s", diff)
	}

	host := s.Query(t, `SELECT cores, agent_version FROM host GROUP BY *`)
	if len(host) != 1 || len(host[0].Values) != 1 {
		t.Fatalf("host: %+v", host)
	}
	hrow := host[0].Rows()[0]
	delete(hrow, "time")
	if diff := cmp.Diff(map[string]any{"cores": 72.0, "agent_version": "0.3.0"}, hrow); diff != "" {
		t.Errorf("host point (-want +got):\n%s", diff)
	}

	h := s.Query(t, `SELECT "count", "sum", "le_0.1", "le_1", "le_+Inf" FROM "http.server.duration" GROUP BY *`)
	if len(h) != 1 || len(h[0].Values) != 1 {
		t.Fatalf("histogram: %+v", h)
	}
	hr := h[0].Rows()[0]
	delete(hr, "time")
	if diff := cmp.Diff(map[string]any{"count": 4.0, "sum": 4.25, "le_0.1": 1.0, "le_1": 3.0, "le_+Inf": 4.0}, hr); diff != "" {
		t.Errorf("histogram point (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"host": "app-1", "service.name": "checkout", "http.route": "/pay"}, h[0].Tags); diff != "" {
		t.Errorf("histogram tags (-want +got):\n%s", diff)
	}

	var out bytes.Buffer
	if err := status(ctx, s.Client(), config.Influx{URL: s.URL, Bucket: s.Bucket()}, 10*time.Minute, &out, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"HOST", "cpu-package W", "arm-1", "arm64", "Neoverse-V2", "cn-hangzhou", "15.0%", " ago", "1 host, data from"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("status:\n%s", out.String())
}

func TestStatusNoData(t *testing.T) {
	s := influxtest.Start(t)
	var out bytes.Buffer
	if err := status(t.Context(), s.Client(), config.Influx{URL: s.URL, Bucket: s.Database}, 10*time.Minute, &out, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "no data in the last 10m ") {
		t.Errorf("status on an empty database = %q", out.String())
	}
}

func TestStatusUnreachable(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	c := &influxql.Client{URL: "http://" + freeAddr(t)}
	err := status(t.Context(), c, config.Influx{URL: c.URL, Bucket: "fleetwatt"}, time.Minute, &out, time.Now())
	if err == nil || !strings.Contains(err.Error(), "query influxdb") {
		t.Errorf("status against nothing = %v", err)
	}
}

type fakePinger struct{ err error }

func (p fakePinger) Ping(context.Context) error { return p.err }

func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path   string
		ping   error
		status int
		body   string
	}{
		{"/healthz", errors.New("down"), 200, "ok"},
		{"/readyz", nil, 200, "ready"},
		{"/readyz", errors.New("ping influxdb http://x: connection refused"), 503, "not ready: ping influxdb http://x: connection refused"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		healthHandler(fakePinger{tt.ping}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if rec.Code != tt.status || strings.TrimSpace(rec.Body.String()) != tt.body {
			t.Errorf("GET %s (ping %v) = %d %q, want %d %q", tt.path, tt.ping, rec.Code, rec.Body.String(), tt.status, tt.body)
		}
	}
}

func TestCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("influx:\n  url: ftp://x\nlog:\n  level: loud\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"version", []string{"version"}, 0, "fleetwatt-collector dev\n", nil},
		{"version flag", []string{"--version"}, 0, "fleetwatt-collector dev\n", nil},
		{"help", []string{"--help"}, 0, "", []string{"status [flags]", "-influx-url", "-influx-token-file", "-otlp-grpc", "-otlp-http", "-listen", "-log-level", "-config", "FLEETWATT_INFLUX_TOKEN"}},
		{"status help", []string{"status", "--help"}, 0, "", []string{"-since", "-influx-url", "InfluxQL"}},
		{"unknown flag", []string{"--nope"}, 2, "", []string{"flag provided but not defined: -nope"}},
		{"unknown command", []string{"serve"}, 2, "", []string{`unknown command "serve"`}},
		{"bad config", []string{"--config", bad}, 2, "", []string{"influx.url:", "log.level:"}},
		{"flag fixes config", []string{"--config", bad, "--influx-url", "http://127.0.0.1:1", "--log-level", "debug", "--listen", "bad"}, 2, "", []string{"listen:"}},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := cli(t.Context(), tt.args, &stdout, &stderr)
		if code != tt.code || stdout.String() != tt.stdout {
			t.Errorf("%s: code %d stdout %q, want %d %q (stderr %s)", tt.name, code, stdout.String(), tt.code, tt.stdout, stderr.String())
		}
		for _, want := range tt.stderr {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%s: stderr lacks %q:\n%s", tt.name, want, stderr.String())
			}
		}
		if tt.name == "flag fixes config" && (strings.Contains(stderr.String(), "influx.url") || strings.Contains(stderr.String(), "log.level")) {
			t.Errorf("flags did not override the file:\n%s", stderr.String())
		}
	}
}

func TestRunFailsOnUsedPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := config.DefaultConfig()
	cfg.OTLP.GRPC, cfg.OTLP.HTTP, cfg.Listen = freeAddr(t), l.Addr().String(), freeAddr(t)
	err = run(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "listen for otlp/http") {
		t.Errorf("run with a used port = %v", err)
	}
}

// TestStatusHostWithoutPower: a host that sends CPU time but no power (a VM) is listed with
// "none reported" and a note saying why, never with zero watts.
func TestStatusHostWithoutPower(t *testing.T) {
	s := influxtest.Start(t)
	now := time.Now()
	lines := fmt.Sprintf("cpu,host=vm1,arch=amd64,region=local busy_s=1.5,total_s=20,interval_s=10 %d\n", now.Add(-time.Minute).UnixNano())
	resp, err := http.Post(s.URL+"/write?db="+s.Database, "text/plain", strings.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: HTTP %d", resp.StatusCode)
	}
	var out bytes.Buffer
	if err := status(t.Context(), s.Client(), config.Influx{URL: s.URL, Bucket: s.Database}, 10*time.Minute, &out, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"POWER", "none reported", "7.5%", "1 of 1 hosts reported no power", "fleetwatt-agent doctor"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), " 0.0") {
		t.Errorf("status prints zero watts for a host without power:\n%s", out.String())
	}
}
