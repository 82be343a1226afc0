package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/fleetwatt/fleetwatt/collector/internal/config"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/promtext"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// sendEnergy exports one hw.energy data point of host over OTLP/gRPC to addr and returns the
// exporter's error.
func sendEnergy(t *testing.T, addr, host string, joules float64) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithInsecure(), otlpmetricgrpc.WithEndpoint(addr),
		otlpmetricgrpc.WithTemporalitySelector(deltaSelector), otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String(semconv.AttrHostName, host),
		attribute.String(semconv.AttrCloudRegion, "cn-hangzhou"))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	energy, err := mp.Meter(semconv.InstrumentationScope).Float64Counter(semconv.MetricEnergy, metric.WithUnit(semconv.UnitJoule))
	if err != nil {
		t.Fatal(err)
	}
	energy.Add(ctx, joules, metric.WithAttributes(attribute.String(semconv.AttrHwID, "dcmi"),
		attribute.String(semconv.AttrScope, string(semconv.ScopeWall))))
	return mp.ForceFlush(ctx)
}

// metricOf returns the value of a metric on the collector listening on listen.
func metricOf(t *testing.T, listen, name string) float64 {
	t.Helper()
	return value(t, scrape(t, "http://"+listen+"/metrics"), name)
}

// TestForwardMode: a regional collector forwarding to a central one that is not there yet is
// ready (its WAL takes exports), acknowledges exports, and retries; once the central
// collector starts, everything arrives in its InfluxDB.
func TestForwardMode(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	centralHTTP := freeAddr(t)
	regionalLog := &syncWriter{w: &bytes.Buffer{}}
	regional, stopRegional := startCollectorWith(t, s, regionalLog, func(c *config.Config) {
		c.Influx.URL = "http://127.0.0.1:1" // never written: the regional collector forwards
		c.WAL.Dir = t.TempDir()
		c.Forward.Endpoint = "http://" + centralHTTP
		c.Forward.MaxBackoff = time.Second
	})
	for i := range 3 {
		if err := sendEnergy(t, regional.OTLP.GRPC, "fwd-1", float64(100*(i+1))); err != nil {
			t.Fatalf("export %d to the regional collector while the centre is away: %v", i, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for metricOf(t, regional.Listen, "fleetwatt_collector_forward_retries_total") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the regional collector does not retry")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := metricOf(t, regional.Listen, "fleetwatt_collector_wal_pending_bytes"); n == 0 {
		t.Error("nothing waits in the regional WAL while the centre is away")
	}

	central, stopCentral := startCollectorWith(t, s, io.Discard, func(c *config.Config) {
		c.OTLP.HTTP = centralHTTP
		c.WAL.Dir = t.TempDir()
	})
	deadline = time.Now().Add(20 * time.Second)
	for {
		series := s.Query(t, `SELECT count(energy_j), sum(energy_j) FROM power WHERE host = 'fwd-1'`)
		if len(series) == 1 && series[0].Values[0][1] == 3.0 {
			if sum := series[0].Values[0][2]; sum != 600.0 {
				t.Errorf("sum of energy %v J, want 600", sum)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("InfluxDB holds %v", series)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fams := scrape(t, "http://"+regional.Listen+"/metrics")
	if n := value(t, fams, prefix+"forward_sent_records_total"); n != 3 {
		t.Errorf("forwarded %v records, want 3", n)
	}
	// A forwarding collector's own families (docs/operations.md), beside the WAL's.
	for name, typ := range map[string]promtext.Type{
		"forward_appended_records_total":         promtext.Counter,
		"forward_requests_total":                 promtext.Counter,
		"forward_sent_records_total":             promtext.Counter,
		"forward_sent_bytes_total":               promtext.Counter,
		"forward_retries_total":                  promtext.Counter,
		"forward_dead_lettered_records_total":    promtext.Counter,
		"forward_rejected_data_points_total":     promtext.Counter,
		"forward_commit_errors_total":            promtext.Counter,
		"forward_last_success_timestamp_seconds": promtext.Gauge,
		"forward_request_duration_seconds":       promtext.Histogram,
		"wal_pending_bytes":                      promtext.Gauge,
	} {
		if f := promtext.Find(fams, prefix+name); f == nil || f.Type != typ {
			t.Errorf("%s%s: %v, want a %s", prefix, name, f, typ)
		}
	}
	for _, f := range fams {
		if strings.HasPrefix(f.Name, prefix+"drain_") || strings.HasPrefix(f.Name, prefix+"wal_appended_points") {
			t.Errorf("a forwarding collector serves %s, which only a collector writing InfluxDB has", f.Name)
		}
	}
	if last := value(t, fams, prefix+"forward_last_success_timestamp_seconds"); time.Since(time.Unix(int64(last), 0)) > time.Minute {
		t.Errorf("last success %v", last)
	}
	if n := metricOf(t, central.Listen, "fleetwatt_collector_requests_total"); n < 1 {
		t.Errorf("central collector consumed %v requests", n)
	}
	for _, stop := range []func() error{stopRegional, stopCentral} {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(regionalLog.String(), "forwarding to the central collector succeeds again") {
		t.Errorf("the regional collector did not log its recovery:\n%s", regionalLog.String())
	}
}

// TestForwardRefusesLineProtocol: a collector whose WAL still holds line protocol for
// InfluxDB does not start forwarding, and says what to do.
func TestForwardRefusesLineProtocol(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	walDir := t.TempDir()
	cfg, stop := startCollectorWith(t, s, io.Discard, func(c *config.Config) {
		c.Influx.Bucket = "missing/autogen" // InfluxDB answers, but cannot store: the export stays in the WAL
		c.WAL.Dir = walDir
		c.Rollup.Every = 0
	})
	if err := sendEnergy(t, cfg.OTLP.GRPC, "lp-1", 100); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cfg.Forward.Endpoint = "http://127.0.0.1:1"
	err := run(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "still holds") || !strings.Contains(err.Error(), "start once without forward.endpoint") {
		t.Errorf("run = %v, want a refusal naming the line protocol left", err)
	}
}

func TestForwardCLI(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := cli(t.Context(), []string{"--forward-endpoint", "https://central.example.com:4318"}, &stdout, &stderr)
	want := "forward.endpoint: forwarding goes through the write-ahead log: set wal.dir (--wal-dir) too"
	if code != 2 || !strings.Contains(stderr.String(), want) {
		t.Errorf("--forward-endpoint without --wal-dir: code %d, stderr %q; want 2 and %q", code, stderr.String(), want)
	}
	stderr.Reset()
	code = cli(t.Context(), []string{"--help"}, &stdout, &stderr)
	for _, f := range []string{"-forward-endpoint", "-forward-token-file", "-forward-ca", "-forward-cert", "-forward-key", "-forward-timeout"} {
		if code != 0 || !strings.Contains(stderr.String(), f) {
			t.Errorf("--help lacks %s", f)
		}
	}
}

// syncWriter is a log destination shared by run()'s goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
