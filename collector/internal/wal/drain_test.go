package wal

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/collector/internal/pipeline"
	"github.com/fleetwatt/fleetwatt/collector/internal/receive"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// powerPoints returns n points of host, energy_j = 1..n, one second apart.
func powerPoints(host string, n int) []*write.Point {
	ps := make([]*write.Point, n)
	for i := range ps {
		p := write.NewPointWithMeasurement(semconv.MeasurementPower)
		p.AddTag(semconv.TagHost, host)
		p.AddTag(semconv.TagScope, string(semconv.ScopeWall))
		p.AddField(semconv.FieldEnergy, float64(i+1))
		p.SetTime(t0.Add(time.Duration(i) * time.Second))
		ps[i] = p
	}
	return ps
}

func sumTo(n int) float64 { return float64(n * (n + 1) / 2) }

// fakeInflux speaks InfluxDB's /api/v2/write: 413 for a body of more than maxLines lines,
// 400 "partial write" when a line contains "BAD" (storing the others, as InfluxDB does),
// 503 with Retry-After for the first unavailable requests.
type fakeInflux struct {
	maxLines    int
	unavailable atomic.Int64

	mu     sync.Mutex
	stored map[string]int // line → times written
}

func (f *fakeInflux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v2/write" || r.URL.Query().Get("precision") != "ms" {
		http.Error(w, "unexpected "+r.URL.String(), http.StatusNotFound)
		return
	}
	if f.unavailable.Add(-1) >= 0 {
		w.Header().Set("Retry-After", "0")
		http.Error(w, `{"code":"unavailable","message":"busy"}`, http.StatusServiceUnavailable)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > f.maxLines {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	bad := false
	for _, l := range lines {
		if strings.Contains(l, "BAD") {
			bad = true
			continue
		}
		f.stored[l]++
	}
	if bad {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"code":"invalid","message":"partial write: field type conflict"}`)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func newSink(t *testing.T, url string) *influx.Writer {
	t.Helper()
	w, err := influx.New(influx.Options{URL: url, Bucket: "fleetwatt/autogen", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

func startDrainer(t *testing.T, w *WAL, sink Sink, opts DrainerOptions) *Drainer {
	t.Helper()
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = time.Millisecond, 20*time.Millisecond
	}
	d := NewDrainer(w, sink, opts, discard)
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return d
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDrainSplitsAndDeadLetters: a 413 splits the request until it fits; a 400 splits it
// until the bad lines are alone, and those go to the dead-letter file; everything else is
// stored, and the checkpoint moves past all of it.
func TestDrainSplitsAndDeadLetters(t *testing.T) {
	t.Parallel()
	fake := &fakeInflux{maxLines: 300, stored: map[string]int{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	fake.unavailable.Store(2)

	dir := t.TempDir()
	w := open(t, Options{Dir: filepath.Join(dir, "wal"), SegmentBytes: 1 << 20, MaxBytes: 16 << 20})
	wr := NewWriter(w)
	points := powerPoints("web-1", 2000)
	for _, i := range []int{7, 1000, 1999} {
		points[i].AddTag("marker", "BAD")
	}
	for i := 0; i < len(points); i += 100 { // 20 exports of 100 points
		if err := wr.Write(t.Context(), points[i:i+100]); err != nil {
			t.Fatal(err)
		}
	}
	d := startDrainer(t, w, newSink(t, srv.URL), DrainerOptions{})
	waitFor(t, "the log to drain", func() bool {
		s := d.Stats()
		return s.WrittenPoints+s.DeadLetteredPoints == 2000
	})
	s := d.Stats()
	if s.WrittenPoints != 1997 || s.DeadLetteredPoints != 3 || s.Retries != 2 {
		t.Errorf("stats %+v, want 1997 written, 3 dead-lettered, 2 retries", s)
	}
	fake.mu.Lock()
	if len(fake.stored) != 1997 {
		t.Errorf("%d distinct lines stored, want 1997", len(fake.stored))
	}
	fake.mu.Unlock()

	f, err := os.Open(filepath.Join(dir, "dead-letter.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var e deadLetterEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("dead-letter line %q: %v", sc.Text(), err)
		}
		if e.Status != 400 || !strings.Contains(e.Reason, "partial write") || !strings.Contains(e.Line, "marker=BAD") || e.Time.IsZero() {
			t.Errorf("dead-letter entry %+v", e)
		}
		n++
	}
	if n != 3 {
		t.Errorf("%d dead-letter entries, want 3", n)
	}
	if _, ok, _ := w.TryNext(); ok {
		t.Error("records left unread")
	}
}

// TestDrainOversizedLineIsDeadLettered: a single line InfluxDB finds too large (413) cannot
// be split further; it is dead-lettered rather than blocking the log.
func TestDrainOversizedLineIsDeadLettered(t *testing.T) {
	t.Parallel()
	fake := &fakeInflux{maxLines: 0, stored: map[string]int{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	dir := t.TempDir()
	w := open(t, Options{Dir: filepath.Join(dir, "wal"), SegmentBytes: 1 << 20, MaxBytes: 16 << 20})
	if err := NewWriter(w).Write(t.Context(), powerPoints("web-1", 4)); err != nil {
		t.Fatal(err)
	}
	d := startDrainer(t, w, newSink(t, srv.URL), DrainerOptions{})
	waitFor(t, "dead letters", func() bool { return d.Stats().DeadLetteredPoints == 4 })
}

// TestWriterGuardsAndFull: NaN/±Inf fields never reach the log, a point without tags is
// valid line protocol, and a full log gives a retryable error that asks to retry later.
func TestWriterGuardsAndFull(t *testing.T) {
	t.Parallel()
	w := open(t, Options{Dir: t.TempDir(), SegmentBytes: 1024, MaxBytes: 2048})
	wr := NewWriter(w)
	nan := write.NewPoint("power", map[string]string{"host": "a b,c"}, map[string]any{"energy_j": math.NaN(), "power_w": 3.5}, t0)
	inf := write.NewPoint("power", map[string]string{"host": "a"}, map[string]any{"energy_j": math.Inf(1)}, t0)
	bare := write.NewPoint("up", nil, map[string]any{"v": int64(1)}, t0)
	if err := wr.Write(t.Context(), []*write.Point{nan, inf, bare}); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := w.TryNext()
	want := fmt.Sprintf("power,host=a\\ b\\,c power_w=3.5 %[1]d\nup v=1i %[1]d\n", t0.UnixMilli())
	if string(rec.Data) != want {
		t.Errorf("record %q, want %q", rec.Data, want)
	}
	if s := wr.Stats(); s.AppendedPoints != 2 || s.NonFinitePoints != 1 {
		t.Errorf("stats %+v", s)
	}
	var err error
	for range 100 {
		if err = wr.Write(t.Context(), powerPoints("web-1", 3)); err != nil {
			break
		}
	}
	var fe *FullError
	if !errors.Is(err, ErrFull) || !errors.As(err, &fe) || fe.RetryAfter <= 0 || !influx.IsRetryable(err) {
		t.Errorf("Write to a full log = %v, want a retryable *FullError", err)
	}
}

// switchSink forwards to a writer that the test replaces, as when InfluxDB comes back on
// another address.
type switchSink struct{ w atomic.Pointer[influx.Writer] }

func (s *switchSink) WriteLines(ctx context.Context, lines []string) error {
	return s.w.Load().WriteLines(ctx, lines)
}

func countAndSum(t *testing.T, s *influxtest.Server, host string) (float64, float64) {
	t.Helper()
	series := s.Query(t, fmt.Sprintf(`SELECT count(energy_j), sum(energy_j) FROM power WHERE host = '%s'`, host))
	if len(series) != 1 || len(series[0].Values) != 1 {
		return 0, 0
	}
	v := series[0].Values[0]
	c, _ := v[1].(float64)
	sum, _ := v[2].(float64)
	return c, sum
}

// TestDurableAcrossRestart: points appended and acknowledged, the collector stopped before
// draining anything, restarted: every point reaches InfluxDB exactly once, and a second
// restart writes nothing again.
func TestDurableAcrossRestart(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	dir := t.TempDir()
	opts := Options{Dir: filepath.Join(dir, "wal"), SegmentBytes: 256 << 10, MaxBytes: 16 << 20}
	w := open(t, opts)
	wr := NewWriter(w)
	const n = 12000
	points := powerPoints("dur-1", n)
	for i := 0; i < n; i += 600 {
		if err := wr.Write(t.Context(), points[i:i+600]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil { // the process ends before the drainer ran
		t.Fatal(err)
	}

	w = open(t, opts)
	d := NewDrainer(w, newSink(t, s.URL), DrainerOptions{}, discard)
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the log to drain", func() bool { return d.Stats().WrittenPoints == n })
	if err := d.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if c, sum := countAndSum(t, s, "dur-1"); c != n || sum != sumTo(n) {
		t.Errorf("count %v sum %v, want %d and %v", c, sum, n, sumTo(n))
	}

	w = open(t, opts)
	if _, ok, _ := w.TryNext(); ok {
		t.Error("committed records read again after a restart")
	}
	if st := w.Stats(); st.Segments != 1 {
		t.Errorf("%d segments left after draining, want 1", st.Segments)
	}
}

// TestInfluxOutage: InfluxDB goes away; exports are still acknowledged, the drainer retries;
// InfluxDB comes back on the same data directory (on a new port) and receives every point
// exactly once.
func TestInfluxOutage(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	w := open(t, Options{Dir: t.TempDir(), SegmentBytes: 256 << 10, MaxBytes: 16 << 20})
	wr := NewWriter(w)
	sink := &switchSink{}
	sink.w.Store(newSink(t, s.URL))
	d := startDrainer(t, w, sink, DrainerOptions{})
	points := powerPoints("out-1", 3000)
	if err := wr.Write(t.Context(), points[:1000]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first points", func() bool { return d.Stats().WrittenPoints == 1000 })

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := 1000; i < 3000; i += 100 {
		if err := wr.Write(t.Context(), points[i:i+100]); err != nil {
			t.Fatalf("Write during the outage: %v", err)
		}
	}
	waitFor(t, "retries", func() bool { return d.Stats().Retries >= 3 })

	s2, err := influxtest.StartDir(s.Dir, s.Database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Stop() })
	sink.w.Store(newSink(t, s2.URL))
	waitFor(t, "the log to drain", func() bool { return d.Stats().WrittenPoints == 3000 })
	if c, sum := countAndSum(t, s2, "out-1"); c != 3000 || sum != sumTo(3000) {
		t.Errorf("count %v sum %v, want 3000 and %v", c, sum, sumTo(3000))
	}
}

// TestDrainerShutdownDuringBackoff: Shutdown returns promptly while the drainer waits to
// retry against a dead address, and the data stays in the log.
func TestDrainerShutdownDuringBackoff(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	w := open(t, Options{Dir: t.TempDir(), SegmentBytes: 1 << 20, MaxBytes: 4 << 20})
	if err := NewWriter(w).Write(t.Context(), powerPoints("web-1", 10)); err != nil {
		t.Fatal(err)
	}
	d := NewDrainer(w, newSink(t, dead), DrainerOptions{MinBackoff: time.Hour}, discard)
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a retry", func() bool { return d.Stats().Retries == 1 })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	d := NewDrainer(&WAL{opts: Options{Dir: "/x/wal"}}, nil, DrainerOptions{}, discard)
	for attempt, bound := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		for range 100 {
			if got := d.backoff(attempt, 0); got < 0 || got >= bound {
				t.Fatalf("attempt %d: %v, want in [0, %v)", attempt, got, bound)
			}
		}
	}
	if got := d.backoff(100, 0); got >= DefaultMaxBackoff {
		t.Errorf("attempt 100: %v, want below the cap %v", got, DefaultMaxBackoff)
	}
	if got := d.backoff(0, 30*time.Second); got != 30*time.Second {
		t.Errorf("with Retry-After 30s: %v", got)
	}
	if got := d.backoff(0, 24*time.Hour); got != maxRetryAfter {
		t.Errorf("with Retry-After 24h: %v, want %v", got, maxRetryAfter)
	}
	if d.opts.DeadLetterPath != "/x/dead-letter.jsonl" {
		t.Errorf("dead-letter path %q", d.opts.DeadLetterPath)
	}
}

// TestPipelineFullIsRetryable: through the pipeline, a full log is a retryable failure (the
// receiver answers 503 / UNAVAILABLE with Retry-After), never a permanent refusal.
func TestPipelineFullIsRetryable(t *testing.T) {
	t.Parallel()
	w := open(t, Options{Dir: t.TempDir(), SegmentBytes: 1024, MaxBytes: 2048})
	p := pipeline.New(NewWriter(w), discard)
	var err error
	for range 100 {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr(semconv.AttrHostName, "web-1")
		g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		g.SetName(semconv.MetricPower)
		dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now())) // the pipeline refuses old times
		dp.SetDoubleValue(150)
		if _, err = p.ConsumeMetrics(t.Context(), md); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) || receive.IsPermanent(err) {
		t.Fatalf("ConsumeMetrics on a full log = %v (permanent %v), want retryable ErrFull", err, receive.IsPermanent(err))
	}
	if s := p.Stats(); s.PointsWritten == 0 || s.PermanentFailures != 0 {
		t.Errorf("pipeline stats %+v", s)
	}
}
