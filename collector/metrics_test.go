package main

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/fleetwatt/fleetwatt/collector/internal/config"
	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/promtext"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// scrape gets url and parses it strictly as the Prometheus text format.
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
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != promtext.ContentType {
		t.Errorf("Content-Type %q, want %q", ct, promtext.ContentType)
	}
	fams, err := promtext.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	if err := promtext.Lint(fams, prefix); err != nil {
		t.Errorf("lint /metrics: %v", err)
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

// TestMetricsEndpoint: a collector with a write-ahead log receives one export with a good
// and a NaN data point; its /metrics shows every family, the rejection by reason, the point
// drained into InfluxDB and the write's latency.
func TestMetricsEndpoint(t *testing.T) {
	s := influxtest.Start(t)
	var logs bytes.Buffer
	cfg, stop := startCollectorWith(t, s, &logs, func(c *config.Config) {
		c.WAL.Dir = filepath.Join(t.TempDir(), "wal")
		c.WAL.SegmentBytes = 1 << 20
	})
	defer func() {
		err := stop()
		if err != nil || t.Failed() {
			t.Errorf("run: %v\n%s", err, logs.String())
		}
	}()

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(semconv.AttrHostName, "metrics-test")
	rm.Resource().Attributes().PutStr(semconv.AttrCloudRegion, "cn-hangzhou")
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName(semconv.MetricPower)
	now := pcommon.NewTimestampFromTime(time.Now())
	gauge := g.SetEmptyGauge()
	for _, v := range []float64{250, math.NaN()} {
		dp := gauge.DataPoints().AppendEmpty()
		dp.SetTimestamp(now)
		dp.SetDoubleValue(v)
		dp.Attributes().PutStr(semconv.AttrHwID, "psu0")
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+cfg.OTLP.HTTP+"/v1/metrics", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %s", resp.Status)
	}

	url := "http://" + cfg.Listen + "/metrics"
	var fams []promtext.Family
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fams = scrape(t, url)
		if value(t, fams, prefix+"drain_written_points_total") > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing drained within 30 s: %+v", fams) // logs follow, from the deferred stop
		}
	}

	want := map[string]promtext.Type{
		prefix + "build_info":                       promtext.Gauge,
		prefix + "requests_total":                   promtext.Counter,
		prefix + "data_points_received_total":       promtext.Counter,
		prefix + "data_points_rejected_total":       promtext.Counter,
		prefix + "points_written_total":             promtext.Counter,
		prefix + "write_failures_total":             promtext.Counter,
		prefix + "points_refused_total":             promtext.Counter,
		prefix + "auth_refusals_total":              promtext.Counter,
		prefix + "busy_refusals_total":              promtext.Counter,
		prefix + "influx_write_duration_seconds":    promtext.Histogram,
		prefix + "wal_bytes":                        promtext.Gauge,
		prefix + "wal_segments":                     promtext.Gauge,
		prefix + "wal_pending_bytes":                promtext.Gauge,
		prefix + "wal_appended_records_total":       promtext.Counter,
		prefix + "wal_appended_bytes_total":         promtext.Counter,
		prefix + "wal_syncs_total":                  promtext.Counter,
		prefix + "wal_full_refusals_total":          promtext.Counter,
		prefix + "wal_torn_tails_total":             promtext.Counter,
		prefix + "wal_truncated_bytes_total":        promtext.Counter,
		prefix + "wal_corrupt_bytes_total":          promtext.Counter,
		prefix + "wal_appended_points_total":        promtext.Counter,
		prefix + "wal_non_finite_points_total":      promtext.Counter,
		prefix + "drain_written_points_total":       promtext.Counter,
		prefix + "drain_write_requests_total":       promtext.Counter,
		prefix + "drain_retries_total":              promtext.Counter,
		prefix + "drain_dead_lettered_points_total": promtext.Counter,
		prefix + "drain_commit_errors_total":        promtext.Counter,
	}
	var names []string
	for _, f := range fams {
		names = append(names, f.Name)
		if typ, ok := want[f.Name]; !ok {
			t.Errorf("%s is not documented in this test (and docs/operations.md)", f.Name)
		} else if f.Type != typ {
			t.Errorf("%s: TYPE %s, want %s", f.Name, f.Type, typ)
		}
	}
	for name := range want {
		if !slices.Contains(names, name) {
			t.Errorf("%s missing", name)
		}
	}

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{prefix + "requests_total", nil, 1},
		{prefix + "data_points_received_total", nil, 2},
		{prefix + "data_points_rejected_total", []string{"reason", convert.ReasonNotFinite}, 1},
		{prefix + "points_written_total", nil, 1},
		{prefix + "write_failures_total", []string{"kind", "retryable"}, 0},
		{prefix + "write_failures_total", []string{"kind", "permanent"}, 0},
		{prefix + "auth_refusals_total", []string{"reason", "unauthenticated"}, 0},
		{prefix + "busy_refusals_total", nil, 0},
		{prefix + "wal_appended_points_total", nil, 1},
		{prefix + "drain_written_points_total", nil, 1},
		{prefix + "drain_dead_lettered_points_total", nil, 0},
		{prefix + "build_info", []string{"version", version}, 1},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%q = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := value(t, fams, prefix+"wal_segments"); got < 1 {
		t.Errorf("wal_segments = %v, want at least 1", got)
	}
	h := promtext.Find(fams, prefix+"influx_write_duration_seconds")
	var count float64
	for _, s := range h.Samples {
		if s.Name == h.Name+"_count" {
			count = s.Value
		}
	}
	if count < 1 {
		t.Errorf("influx_write_duration_seconds_count = %v, want at least the drainer's write", count)
	}
}

// TestMetricsWithoutWAL: without a write-ahead log the WAL families are left out, and the rest
// is well formed before any traffic.
func TestMetricsWithoutWAL(t *testing.T) {
	t.Parallel()
	mx := newMetrics()
	mx.influxLatency.Observe(0.003)
	mx.influxLatency.Observe(30)
	rec := httptest.NewRecorder()
	mx.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	fams, err := promtext.Parse(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := promtext.Lint(fams, prefix); err != nil {
		t.Error(err)
	}
	for _, f := range fams {
		if bytes.HasPrefix([]byte(f.Name), []byte(prefix+"wal_")) || bytes.HasPrefix([]byte(f.Name), []byte(prefix+"drain_")) {
			t.Errorf("%s without a write-ahead log", f.Name)
		}
	}
	h := promtext.Find(fams, prefix+"influx_write_duration_seconds")
	if h == nil {
		t.Fatal("latency histogram missing")
	}
	got := map[string]float64{}
	for _, s := range h.Samples {
		got[s.Name+s.Labels["le"]] = s.Value
	}
	for k, v := range map[string]float64{
		h.Name + "_bucket0.005": 1, h.Name + "_bucket20": 1, h.Name + "_bucket+Inf": 2, h.Name + "_count": 2, h.Name + "_sum": 30.003,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
