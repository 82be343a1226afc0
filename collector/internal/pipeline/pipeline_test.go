package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
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
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

type fakeWriter struct {
	mu     sync.Mutex
	err    error
	points int
}

func (w *fakeWriter) Write(_ context.Context, points []*write.Point) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.points += len(points)
	return nil
}

// t0 is recent: the pipeline checks timestamps against the real clock.
var t0 = time.Now().Truncate(time.Second)

// agentMetrics is one interval of one host as fleetwatt-agent sends it: sensors power sensors
// (hw.energy delta + hw.power) and the 7 CPU modes, plus utilization.
func agentMetrics(md pmetric.Metrics, host string, sensors int) {
	rm := md.ResourceMetrics().AppendEmpty()
	a := rm.Resource().Attributes()
	a.PutStr(semconv.AttrHostName, host)
	a.PutStr(semconv.AttrHostArch, "arm64")
	a.PutStr(semconv.AttrHostCPUModel, "Neoverse-V2")
	a.PutStr(semconv.AttrCloudRegion, "cn-hangzhou")
	a.PutStr(semconv.AttrServiceVersion, "0.3.0")
	a.PutInt(semconv.AttrCores, 72)
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	energy := ms.AppendEmpty()
	energy.SetName(semconv.MetricEnergy)
	sum := energy.SetEmptySum()
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	sum.SetIsMonotonic(true)
	power := ms.AppendEmpty()
	power.SetName(semconv.MetricPower)
	gauge := power.SetEmptyGauge()
	for i := range sensors {
		for _, dp := range []pmetric.NumberDataPoint{sum.DataPoints().AppendEmpty(), gauge.DataPoints().AppendEmpty()} {
			dp.Attributes().PutStr(semconv.AttrHwID, fmt.Sprintf("hwmon%d/power1", i))
			dp.Attributes().PutStr(semconv.AttrScope, string(semconv.Scopes[i%len(semconv.Scopes)]))
			dp.Attributes().PutStr(semconv.AttrSource, semconv.SourceHwmon)
			dp.Attributes().PutStr(semconv.AttrMethod, semconv.MethodMeasured)
			dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(-15 * time.Second)))
			dp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
			dp.SetDoubleValue(1500)
		}
	}
	cpu := ms.AppendEmpty()
	cpu.SetName(semconv.MetricCPUTime)
	cs := cpu.SetEmptySum()
	cs.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for _, mode := range semconv.CPUModes {
		dp := cs.DataPoints().AppendEmpty()
		dp.Attributes().PutStr(semconv.AttrCPUMode, mode)
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(-15 * time.Second)))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
		dp.SetDoubleValue(100)
	}
	u := ms.AppendEmpty()
	u.SetName(semconv.MetricCPUUtilization)
	udp := u.SetEmptyGauge().DataPoints().AppendEmpty()
	udp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	udp.SetDoubleValue(0.71)
}

func TestConsumeCounts(t *testing.T) {
	t.Parallel()
	w := &fakeWriter{}
	p := New(w, slog.New(slog.DiscardHandler))
	md := pmetric.NewMetrics()
	agentMetrics(md, "arm-1", 2)
	nan := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
	nan.SetName("temp")
	dp := nan.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	dp.SetDoubleValue(math.NaN())

	res, err := p.ConsumeMetrics(t.Context(), md)
	if err != nil {
		t.Fatal(err)
	}
	want := receive.Result{RejectedDataPoints: 1, ErrorMessage: `metric "temp": ` + convert.ReasonNotFinite}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	// 2 power points, 1 cpu point, 1 host point.
	wantStats := Stats{
		Requests: 1, DataPoints: 4 + 7 + 1 + 1, DataPointsRejected: 1, PointsWritten: 4,
		RejectedByReason: map[string]int64{convert.ReasonNotFinite: 1},
	}
	if diff := cmp.Diff(wantStats, p.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestConsumeFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		permanent bool
	}{
		{"retryable", &influx.Error{Err: errors.New("connection refused"), Retryable: true}, false},
		{"unknown", errors.New("context canceled"), false},
		{"permanent", &influx.Error{Err: errors.New("partial write: field type conflict"), Retryable: false}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := New(&fakeWriter{err: tt.err}, slog.New(slog.DiscardHandler))
			md := pmetric.NewMetrics()
			agentMetrics(md, "arm-1", 1)
			_, err := p.ConsumeMetrics(t.Context(), md)
			if !errors.Is(err, tt.err) || receive.IsPermanent(err) != tt.permanent {
				t.Fatalf("ConsumeMetrics = %v (permanent %v), want %v (permanent %v)", err, receive.IsPermanent(err), tt.err, tt.permanent)
			}
			want := Stats{Requests: 1, DataPoints: 10, WriteFailures: 1}
			if tt.permanent {
				want.PermanentFailures, want.PointsRefused = 1, 3
			}
			if diff := cmp.Diff(want, p.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailureLogIsRateLimited(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	w := &fakeWriter{err: &influx.Error{Err: errors.New("connection refused"), Retryable: true}}
	p := New(w, log)
	now := t0
	p.failLog.now = func() time.Time { return now }
	md := pmetric.NewMetrics()
	agentMetrics(md, "arm-1", 1)
	for range 100 { // a storm: one line
		_, _ = p.ConsumeMetrics(t.Context(), md)
	}
	now = now.Add(DefaultLogInterval)
	_, _ = p.ConsumeMetrics(t.Context(), md) // the next interval: one line with the count
	w.err = nil
	_, _ = p.ConsumeMetrics(t.Context(), md)
	_, _ = p.ConsumeMetrics(t.Context(), md)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d log lines, want 3:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"failures_since_last_log=0", "failures_since_last_log=99", "succeed again"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q lacks %q", i, lines[i], want)
		}
	}
}

// TestSeriesLimit: each token has its own series budget; beyond it, new series are rejected
// and counted while the series it already writes keep flowing.
func TestSeriesLimit(t *testing.T) {
	t.Parallel()
	w := &fakeWriter{}
	p := NewWithOptions(w, slog.New(slog.DiscardHandler), Options{Series: limit.Options{MaxSeries: 3}})
	a := auth.NewContext(t.Context(), auth.Principal{Name: "a"})
	send := func(ctx context.Context, host string, sensors int) receive.Result {
		t.Helper()
		md := pmetric.NewMetrics()
		agentMetrics(md, host, sensors)
		res, err := p.ConsumeMetrics(ctx, md)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// 1 sensor: power, cpu and host points, 3 series.
	if res := send(a, "h1", 1); res.RejectedDataPoints != 0 {
		t.Fatalf("first request: %+v", res)
	}
	// A second sensor is a fourth series: its 2 data points are rejected, the rest stored.
	written := w.points
	res := send(a, "h1", 2)
	if res.RejectedDataPoints != 2 || !strings.Contains(res.ErrorMessage, convert.ReasonCardinality) {
		t.Errorf("over the limit: %+v", res)
	}
	if got := w.points - written; got != 3 {
		t.Errorf("over the limit: %d points written, want 3", got)
	}
	// Another token, and anonymous senders, have budgets of their own.
	if res := send(auth.NewContext(t.Context(), auth.Principal{Name: "b"}), "h1", 1); res.RejectedDataPoints != 0 {
		t.Errorf("token b: %+v", res)
	}
	if res := send(t.Context(), "h1", 1); res.RejectedDataPoints != 0 {
		t.Errorf("anonymous: %+v", res)
	}
	if got := p.Stats().RejectedByReason[convert.ReasonCardinality]; got != 2 {
		t.Errorf("RejectedByReason[%q] = %d, want 2", convert.ReasonCardinality, got)
	}
	// Off: no limit.
	p = NewWithOptions(w, slog.New(slog.DiscardHandler), Options{Series: limit.Options{MaxSeries: 1}, NoSeriesLimit: true})
	if res := send(a, "h1", 4); res.RejectedDataPoints != 0 {
		t.Errorf("without a limit: %+v", res)
	}
}

// TestBounds: the pipeline rejects data points out of the conversion's bounds.
func TestBounds(t *testing.T) {
	t.Parallel()
	w := &fakeWriter{}
	p := NewWithOptions(w, slog.New(slog.DiscardHandler), Options{Convert: convert.Options{MaxPowerW: 1000}})
	md := pmetric.NewMetrics()
	agentMetrics(md, "h1", 1) // hw.power 1500 W; hw.energy 1500 J over 15 s, 100 W
	res, err := p.ConsumeMetrics(t.Context(), md)
	if err != nil {
		t.Fatal(err)
	}
	if res.RejectedDataPoints != 1 || !strings.Contains(res.ErrorMessage, convert.ReasonMaxPower) {
		t.Errorf("1500 W with a 1000 W limit: %+v", res)
	}
}
