package wal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// TestLineProtocolFormatUnchanged: a log of line protocol is laid out exactly as before record
// kinds existed (the same magic number), so logs written by earlier versions open and read
// as line protocol, and an earlier version can still read what this one writes.
func TestLineProtocolFormatUnchanged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := open(t, Options{Dir: dir, SegmentBytes: 1 << 20, MaxBytes: 4 << 20})
	appendN(t, w, 0, 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, "00000000000000000001.wal")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b[:headerSize]); got != "FWWAL\x00\x00\x01" {
		t.Errorf("segment header %q, want the version-1 magic", got)
	}
	if want := headerSize + 3*(frameSize+8); int64(len(b)) != want {
		t.Errorf("segment of %d bytes, want %d: frames changed", len(b), want)
	}
}

// TestKindSwitch: a collector that wrote InfluxDB and now forwards (and back) keeps one log:
// the records of each period are read in order with their own kind, and the pending bytes
// of each kind are known.
func TestKindSwitch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentBytes: 1 << 20, MaxBytes: 8 << 20}
	w := open(t, opts)
	appendN(t, w, 0, 2) // line protocol
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	opts.Kind = KindOTLP
	w = open(t, opts)
	if got := w.PendingBytes(KindLineProtocol); got != 2*(frameSize+8) {
		t.Errorf("pending line protocol %d bytes, want %d", got, 2*(frameSize+8))
	}
	appendN(t, w, 2, 4)
	if got := w.PendingBytes(KindOTLP); got != 2*(frameSize+8) {
		t.Errorf("pending otlp %d bytes, want %d", got, 2*(frameSize+8))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	opts.Kind = KindLineProtocol
	w = open(t, opts)
	appendN(t, w, 4, 5)
	type rec struct {
		Data string
		Kind Kind
	}
	var got []rec
	for {
		r, ok, err := w.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, rec{string(r.Data), r.Kind})
		if err := w.Commit(r.End); err != nil {
			t.Fatal(err)
		}
	}
	want := []rec{
		{"record-0", KindLineProtocol},
		{"record-1", KindLineProtocol},
		{"record-2", KindOTLP},
		{"record-3", KindOTLP},
		{"record-4", KindLineProtocol},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if s := w.Stats(); s.Segments != 1 || s.PendingBytes != 0 {
		t.Errorf("after draining %+v, want 1 segment and nothing pending", s)
	}
}

// TestUnknownKindRefused: a segment of a kind this version does not know (a newer one) is
// refused at start, not misread.
func TestUnknownKindRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.wal"), []byte("FWWAL\x07\x00\x01"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir}, discard); err == nil {
		t.Fatal("Open of a segment of kind 7 succeeded")
	}
}

// TestReady: the log is ready while it takes appends; a refusal for want of room makes it
// unready until draining frees a segment; a closed log is not ready.
func TestReady(t *testing.T) {
	t.Parallel()
	w := open(t, Options{Dir: t.TempDir(), SegmentBytes: 256, MaxBytes: 512})
	if err := w.Ready(); err != nil {
		t.Fatalf("Ready of a new log = %v", err)
	}
	var i int
	for i = 0; ; i++ {
		err := w.Append(t.Context(), []byte("record-x"))
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Ready(); !errors.Is(err, ErrFull) {
		t.Errorf("Ready of a full log = %v, want ErrFull", err)
	}
	readAll(t, w, true)
	if err := w.Ready(); err != nil {
		t.Errorf("Ready after draining = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Ready(); !errors.Is(err, ErrClosed) {
		t.Errorf("Ready after Close = %v, want ErrClosed", err)
	}
}

// TestDrainerWritesOTLPRecords: OTLP records left by a collector that forwarded until it was
// given InfluxDB to write are converted and written like any export.
func TestDrainerWritesOTLPRecords(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	dir := t.TempDir()
	opts := Options{Dir: filepath.Join(dir, "wal"), SegmentBytes: 1 << 20, MaxBytes: 8 << 20, Kind: KindOTLP}
	w := open(t, opts)
	const n = 30
	for i := range n {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr(semconv.AttrHostName, "fwd-1")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName(semconv.MetricEnergy)
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i-1) * 10 * time.Second)))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * 10 * time.Second)))
		dp.SetDoubleValue(float64(i + 1))
		dp.Attributes().PutStr(semconv.AttrScope, "wall")
		b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Append(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	opts.Kind = KindLineProtocol
	w = open(t, opts)
	d := startDrainer(t, w, newSink(t, s.URL), DrainerOptions{MaxLines: 7})
	waitFor(t, "the log to drain", func() bool { return d.Stats().WrittenPoints == n })
	if c, sum := countAndSum(t, s, "fwd-1"); c != n || sum != sumTo(n) {
		t.Errorf("count %v sum %v, want %d and %v", c, sum, n, sumTo(n))
	}
	if st := d.Stats(); st.DeadLetteredPoints != 0 || st.Retries != 0 {
		t.Errorf("drainer stats %+v", st)
	}
}

// TestDamagedOlderHeaderSkipped: an older segment whose header is damaged is skipped and
// counted, like a corrupt record; the log still opens and the later segments are read.
func TestDamagedOlderHeaderSkipped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentBytes: 64, MaxBytes: 1 << 20}
	w := open(t, opts)
	appendN(t, w, 0, 6) // 16 bytes a record: two segments of three
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "00000000000000000001.wal"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XX"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	w = open(t, opts)
	if diff := cmp.Diff(records(3, 6), readAll(t, w, true)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if s := w.Stats(); s.CorruptBytes != headerSize+3*(frameSize+8) {
		t.Errorf("corrupt bytes %d, want the damaged segment's %d", s.CorruptBytes, headerSize+3*(frameSize+8))
	}
}
