package main

import (
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
	"github.com/fleetwatt/fleetwatt/internal/promtext"
)

// TestSelfMetrics: the collector's exposition becomes OTLP its own conversion stores: counters
// as cumulative totals, gauges as values, a histogram's sum and count, labels as tags.
func TestSelfMetrics(t *testing.T) {
	t.Parallel()
	var w promtext.Writer
	w.Counter("fleetwatt_collector_requests_total", "Requests.", 42)
	w.Gauge("fleetwatt_collector_wal_bytes", "Bytes.", 1024)
	w.Family("fleetwatt_collector_auth_refusals_total", "Refusals.", promtext.Counter)
	w.Sample("fleetwatt_collector_auth_refusals_total", 3, "reason", "forbidden")
	h := promtext.NewHist(0.01, 0.1)
	h.Observe(0.05)
	w.Histogram("fleetwatt_collector_influx_write_duration_seconds", "Latency.", h)
	fams, err := promtext.Parse(strings.NewReader(string(w.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	points, stats := convert.Convert(selfMetrics(fams, "c1", now.Add(-time.Hour), now))
	if stats.Rejected != 0 {
		t.Fatalf("rejected %d: %s", stats.Rejected, stats.FirstError)
	}
	var lines []string
	for _, p := range points {
		lines = append(lines, strings.TrimSpace(convertLine(p)))
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"fleetwatt_collector_requests_total,host=c1,service.name=fleetwatt-collector,service.version=dev value=42",
		"fleetwatt_collector_wal_bytes,host=c1,service.name=fleetwatt-collector,service.version=dev value=1024",
		"fleetwatt_collector_auth_refusals_total,host=c1,reason=forbidden,service.name=fleetwatt-collector,service.version=dev value=3",
		"fleetwatt_collector_influx_write_duration_seconds_count,host=c1,service.name=fleetwatt-collector,service.version=dev value=1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "_bucket") {
		t.Errorf("histogram buckets stored:\n%s", got)
	}
}

func convertLine(p *write.Point) string { return write.PointToLineProtocol(p, time.Millisecond) }
