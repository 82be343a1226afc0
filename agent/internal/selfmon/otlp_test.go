package selfmon

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fleetwatt/fleetwatt/agent/internal/export"
)

// TestMetricsMatchTheExposition: what goes with the batches is what /metrics shows — a drop
// counted in one is counted in the other.
func TestMetricsMatchTheExposition(t *testing.T) {
	t.Parallel()
	sender := export.NewSender(failingExporter{}, 1, discard)
	sender.Enqueue(batch(3))
	sender.Enqueue(batch(3)) // the 1-byte queue drops the first
	_ = sender.Flush(context.Background())
	start, now := time.Now().Add(-time.Hour), time.Now()
	ms := Metrics(Sources{Sender: sender, Version: "test"}, start, now)
	byName := map[string]metricdata.Metrics{}
	for _, m := range ms {
		byName[m.Name] = m
	}
	if _, ok := byName[prefix+"build_info"]; ok {
		t.Error("build_info sent as a metric")
	}
	dropped, ok := byName[prefix+"batches_dropped_total"].Data.(metricdata.Sum[float64])
	if !ok || dropped.Temporality != metricdata.CumulativeTemporality || !dropped.IsMonotonic {
		t.Fatalf("batches_dropped_total: %+v", byName[prefix+"batches_dropped_total"])
	}
	var total float64
	for _, p := range dropped.DataPoints {
		total += p.Value
		if !p.StartTime.Equal(start) || !p.Time.Equal(now) {
			t.Errorf("point times %v..%v, want %v..%v", p.StartTime, p.Time, start, now)
		}
	}
	if total != 1 {
		t.Errorf("batches dropped %v, want 1", total)
	}
	if _, ok := byName[prefix+"queue_bytes"].Data.(metricdata.Gauge[float64]); !ok {
		t.Errorf("queue_bytes is not a gauge: %+v", byName[prefix+"queue_bytes"])
	}
}
