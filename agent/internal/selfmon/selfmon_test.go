package selfmon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/fleetwatt/fleetwatt/agent/internal/collect"
	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
	"github.com/fleetwatt/fleetwatt/agent/internal/export"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpustat"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/promtext"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var discard = slog.New(slog.DiscardHandler)

// failingExporter refuses every export, as an unreachable collector does.
type failingExporter struct{}

func (failingExporter) Temporality(sdkmetric.InstrumentKind) metricdata.Temporality {
	return metricdata.DeltaTemporality
}

func (failingExporter) Aggregation(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
	return sdkmetric.DefaultAggregationSelector(k)
}

func (failingExporter) Export(context.Context, *metricdata.ResourceMetrics) error {
	return errors.New("connection refused")
}
func (failingExporter) ForceFlush(context.Context) error { return nil }
func (failingExporter) Shutdown(context.Context) error   { return nil }

func batch(points int) *metricdata.ResourceMetrics {
	dps := make([]metricdata.DataPoint[float64], points)
	for i := range dps {
		dps[i] = metricdata.DataPoint[float64]{Time: time.Now(), Value: float64(i)}
	}
	return &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{
		Scope:   instrumentation.Scope{Name: semconv.InstrumentationScope},
		Metrics: []metricdata.Metrics{{Name: semconv.MetricPower, Data: metricdata.Gauge[float64]{DataPoints: dps}}},
	}}}
}

// startServer serves src on a free port and returns the /metrics URL; the server is shut
// down when the test ends.
func startServer(t *testing.T, src Sources) string {
	t.Helper()
	s := NewServer("127.0.0.1:0", src, discard)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return "http://" + s.Addr().String() + "/metrics"
}

func scrape(t *testing.T, url string) []promtext.Family {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != promtext.ContentType {
		t.Errorf("Content-Type %q", ct)
	}
	fams, err := promtext.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	if err := promtext.Lint(fams, prefix); err != nil {
		t.Errorf("lint: %v", err)
	}
	return fams
}

func value(t *testing.T, fams []promtext.Family, name string, labels ...string) float64 {
	t.Helper()
	f := promtext.Find(fams, name)
	if f == nil {
		t.Fatalf("%s missing", name)
	}
	v, ok := f.Value(labels...)
	if !ok {
		t.Fatalf("%s%q missing", name, labels)
	}
	return v
}

// TestDropIsVisibleAtOnce: a Sender whose queue holds one batch and whose collector refuses
// everything drops a batch at the second Enqueue, and the very next scrape shows it.
func TestDropIsVisibleAtOnce(t *testing.T) {
	t.Parallel()
	sender := export.NewSender(failingExporter{}, 1, discard)
	url := startServer(t, Sources{Sender: sender, Version: "test"})

	fams := scrape(t, url)
	if got := value(t, fams, prefix+"batches_dropped_total", "queue", "memory"); got != 0 {
		t.Fatalf("dropped before anything was queued: %v", got)
	}
	if got := value(t, fams, prefix+"last_export_timestamp_seconds"); got != 0 {
		t.Errorf("last export %v before any", got)
	}
	if err := sender.Flush(t.Context()); err != nil {
		t.Fatal(err) // nothing queued: nothing to fail
	}
	sender.Enqueue(batch(3))
	if err := sender.Flush(t.Context()); err == nil {
		t.Fatal("Flush to a failing exporter succeeded")
	}
	sender.Enqueue(batch(5)) // the queue holds 1 byte: the first batch goes

	fams = scrape(t, url)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{prefix + "batches_dropped_total", []string{"queue", "memory"}, 1},
		{prefix + "points_dropped_total", []string{"queue", "memory"}, 3},
		{prefix + "batches_dropped_total", []string{"queue", "spool"}, 0},
		{prefix + "batches_failed_total", nil, 1},
		{prefix + "batches_sent_total", nil, 0},
		{prefix + "queue_batches", nil, 1},
		{prefix + "build_info", []string{"version", "test"}, 1},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%q = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := value(t, fams, prefix+"queue_bytes"); got <= 0 {
		t.Errorf("queue_bytes = %v, want the second batch's size", got)
	}
	if promtext.Find(fams, prefix+"source_read_errors_total") != nil {
		t.Error("collector counters without a collector")
	}
}

// oddSource fails every read and gives a NaN reading, under a name that needs escaping.
type oddSource struct{ name string }

func (s oddSource) Name() string { return s.name }

func (s oddSource) Read(context.Context) ([]sensor.Reading, error) {
	return []sensor.Reading{{
		ID: "psu0", Source: s.name, Scope: semconv.ScopeWall, PowerW: math.NaN(),
	}}, errors.New("bmc timeout")
}

// TestCollectorCounters: read errors and rejected readings, labelled by a source whose name
// needs escaping, are scraped while cycles run in another goroutine (go test -race).
func TestCollectorCounters(t *testing.T) {
	t.Parallel()
	const odd = "bmc \"a\",\\b\nc ✓"
	coll := collect.New(sysfs.New(t.TempDir()), []sensor.Source{oddSource{odd}}, collect.Options{
		CPUTimes: func() (cpustat.Stat, error) { return cpustat.Stat{}, nil },
	}, discard)
	url := startServer(t, Sources{
		Sender: export.NewSender(failingExporter{}, 1<<20, discard), Collector: coll, Version: "test",
	})

	const cycles = 20
	var wg sync.WaitGroup
	wg.Go(func() {
		for range cycles {
			coll.Collect(t.Context())
		}
	})
	for range 5 {
		scrape(t, url)
	}
	wg.Wait()

	fams := scrape(t, url)
	if got := value(t, fams, prefix+"source_read_errors_total"); got != cycles {
		t.Errorf("source_read_errors_total = %v, want %d", got, cycles)
	}
	if got := value(t, fams, prefix+"readings_rejected_total", "source", odd, "reason", energy.RejectNaN); got != cycles {
		t.Errorf("readings_rejected_total = %v, want %d", got, cycles)
	}
}

func TestStartFailsOnUsedPort(t *testing.T) {
	t.Parallel()
	first := NewServer("127.0.0.1:0", Sources{Sender: export.NewSender(failingExporter{}, 1<<20, discard)}, discard)
	if err := first.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := first.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	second := NewServer(first.Addr().String(), Sources{}, discard)
	if err := second.Start(t.Context()); err == nil {
		_ = second.Shutdown(context.Background())
		t.Fatal("Start on a used port succeeded")
	}
	if err := second.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of a server that never started: %v", err)
	}
}
