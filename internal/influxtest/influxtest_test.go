package influxtest

import (
	"context"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
)

// TestStartWriteQuery writes a point through the v2 API, as the collector does, and reads it
// back with InfluxQL, as reports do.
func TestStartWriteQuery(t *testing.T) {
	t.Parallel()
	s := Start(t)

	client := influxdb2.NewClient(s.URL, "")
	defer client.Close()
	w := client.WriteAPIBlocking("", s.Bucket())
	ts := time.Unix(1700000000, 0)
	p := influxdb2.NewPoint("power", map[string]string{"host": "h1"}, map[string]any{"power_w": 123.5}, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.WritePoint(ctx, p); err != nil {
		t.Fatalf("write: %v", err)
	}

	series := s.Query(t, `SELECT power_w FROM power WHERE host = 'h1'`)
	if len(series) != 1 || len(series[0].Values) != 1 {
		t.Fatalf("want one row, got %+v", series)
	}
	row := series[0].Rows()[0]
	if got := row["power_w"]; got != 123.5 {
		t.Errorf("power_w = %v, want 123.5", got)
	}
	if got := row["time"]; got != float64(ts.UnixMilli()) {
		t.Errorf("time = %v, want %d", got, ts.UnixMilli())
	}
}
