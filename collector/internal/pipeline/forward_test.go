package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fleetwatt/fleetwatt/collector/internal/auth"
	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/collector/internal/limit"
	"github.com/fleetwatt/fleetwatt/collector/internal/receive"
)

// linesWriter keeps the line protocol of what it is given.
type linesWriter struct {
	mu    sync.Mutex
	lines []string
}

func (w *linesWriter) Write(_ context.Context, points []*write.Point) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range points {
		w.lines = append(w.lines, write.PointToLineProtocol(p, time.Millisecond))
	}
	return nil
}

// metricsWriter keeps what it is given; err, when set, is its answer instead.
type metricsWriter struct {
	mu  sync.Mutex
	err error
	got []pmetric.Metrics
}

func (w *metricsWriter) WriteMetrics(_ context.Context, md pmetric.Metrics) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.got = append(w.got, md)
	return nil
}

// TestForwardingKeepsWhatWouldBeWritten: a forwarding pipeline answers the sender exactly as
// one writing InfluxDB does, and what it stores converts, on the central collector, into
// exactly the points the other would have written: the rejected data points (NaN, out of
// bounds, over the series limit) are left out, everything else is kept as it came.
func TestForwardingKeepsWhatWouldBeWritten(t *testing.T) {
	t.Parallel()
	opts := Options{Series: limit.Options{MaxSeries: 8}}
	lw, mw := &linesWriter{}, &metricsWriter{}
	direct := NewWithOptions(lw, slog.New(slog.DiscardHandler), opts)
	fwd := NewForwarding(mw, slog.New(slog.DiscardHandler), opts)
	ctx := auth.NewContext(t.Context(), auth.Principal{Name: "region-a"})

	var requests []pmetric.Metrics
	// Clean: forwarded untouched.
	md := pmetric.NewMetrics()
	agentMetrics(md, "h1", 1)
	requests = append(requests, md)
	// A NaN gauge, and a gauge with one data point fine and one from the future.
	md = pmetric.NewMetrics()
	agentMetrics(md, "h2", 2)
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	nan := ms.AppendEmpty()
	nan.SetName("temp")
	dp := nan.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	dp.SetDoubleValue(math.NaN())
	mixed := ms.AppendEmpty()
	mixed.SetName("fan.speed")
	gauge := mixed.SetEmptyGauge()
	for _, at := range []time.Time{t0, t0.Add(time.Hour)} {
		dp := gauge.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		dp.SetDoubleValue(3000)
	}
	requests = append(requests, md)
	// A third host: h1's 3 series (power, cpu, host) and h2's 5 (two sensors, cpu,
	// fan.speed, host) reach the limit of 8 for this sender, so nothing of h3 is stored.
	md = pmetric.NewMetrics()
	agentMetrics(md, "h3", 1)
	requests = append(requests, md)

	stored := 0 // requests of which the direct pipeline wrote something
	for i, req := range requests {
		before := len(lw.lines)
		a, aerr := direct.ConsumeMetrics(ctx, req)
		if len(lw.lines) > before {
			stored++
		}
		b, berr := fwd.ConsumeMetrics(ctx, req)
		if aerr != nil || berr != nil {
			t.Fatalf("request %d: %v, %v", i, aerr, berr)
		}
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("request %d: answers differ (-direct +forwarding):\n%s", i, diff)
		}
	}
	for _, r := range []string{convert.ReasonNotFinite, convert.ReasonFuture, convert.ReasonCardinality} {
		if direct.Stats().RejectedByReason[r] == 0 {
			t.Fatalf("nothing rejected for %q: the test tests less than it says (%+v)", r, direct.Stats())
		}
	}
	if diff := cmp.Diff(direct.Stats(), fwd.Stats()); diff != "" {
		t.Errorf("stats differ (-direct +forwarding):\n%s", diff)
	}
	if len(mw.got) != stored {
		t.Fatalf("%d requests stored, want %d", len(mw.got), stored)
	}
	// The first request is stored as it came.
	if a, b := marshal(t, requests[0]), marshal(t, mw.got[0]); string(a) != string(b) {
		t.Error("a request without rejections was changed")
	}

	// On the central collector, with its own (default) bounds and no series limit yet.
	central := &linesWriter{}
	cp := NewWithOptions(central, slog.New(slog.DiscardHandler), Options{NoSeriesLimit: true})
	for _, md := range mw.got {
		res, err := cp.ConsumeMetrics(t.Context(), md)
		if err != nil || res.RejectedDataPoints != 0 {
			t.Errorf("central: %+v, %v; want nothing rejected", res, err)
		}
	}
	want, got := slices.Sorted(slices.Values(lw.lines)), slices.Sorted(slices.Values(central.lines))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("central points (-regional would have written +central writes):\n%s", diff)
	}
}

// TestForwardingFailures: the store's failures reach the sender as in the direct pipeline:
// a full log is retryable, a request the log can never take is permanent.
func TestForwardingFailures(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"retryable", errors.New("disk busy"), false},
		{"permanent", receive.Permanent(errors.New("too large")), true},
		{"influx permanent", &influx.Error{Retryable: false, Err: errors.New("bad")}, true},
	} {
		mw := &metricsWriter{err: tt.err}
		p := NewForwarding(mw, slog.New(slog.DiscardHandler), Options{})
		md := pmetric.NewMetrics()
		agentMetrics(md, "h1", 1)
		_, err := p.ConsumeMetrics(t.Context(), md)
		if !errors.Is(err, tt.err) || receive.IsPermanent(err) != tt.permanent {
			t.Errorf("%s: ConsumeMetrics = %v (permanent %v), want %v (permanent %v)", tt.name, err, receive.IsPermanent(err), tt.err, tt.permanent)
		}
		if s := p.Stats(); s.WriteFailures != 1 || (s.PermanentFailures == 1) != tt.permanent {
			t.Errorf("%s: stats %+v", tt.name, s)
		}
	}
}

func marshal(t *testing.T, md pmetric.Metrics) []byte {
	t.Helper()
	b, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
