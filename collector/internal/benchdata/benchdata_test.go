package benchdata

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// TestFleet: hosts are distinct, read at the time asked for, and the collector stores
// PointsPerHost points of each without rejecting any.
func TestFleet(t *testing.T) {
	t.Parallel()
	f, err := New()
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 11, 1, 12, 0, 10, 0, time.UTC)
	const n = 30
	md := f.Metrics(5, n, end)
	if got := md.ResourceMetrics().Len(); got != n {
		t.Fatalf("%d hosts, want %d", got, n)
	}
	if got := md.DataPointCount(); got != 11*n {
		t.Errorf("%d data points, want %d", got, 11*n)
	}
	names := map[string]bool{}
	for i := range n {
		rm := md.ResourceMetrics().At(i)
		v, _ := rm.Resource().Attributes().Get(semconv.AttrHostName)
		names[v.Str()] = true
		eachPoint(rm, func(dp pmetric.NumberDataPoint) {
			if dp.Timestamp() != pcommon.NewTimestampFromTime(end) || dp.StartTimestamp() != pcommon.NewTimestampFromTime(end.Add(-10*time.Second)) {
				t.Fatalf("host %d: data point from %s to %s, want the 10 s to %s", i, dp.StartTimestamp(), dp.Timestamp(), end)
			}
		})
	}
	if len(names) != n {
		t.Errorf("%d distinct host names among %d hosts", len(names), n)
	}
	points, stats := convert.Options{Now: func() time.Time { return end }}.Convert(md)
	if len(points) != PointsPerHost*n || stats.Rejected != 0 {
		t.Errorf("%d points, %+v; want %d points", len(points), stats, PointsPerHost*n)
	}

	bodies, err := f.Requests(0, n, 7, end)
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 5 {
		t.Fatalf("%d requests of 7 hosts for %d hosts, want 5", len(bodies), n)
	}
	hosts := 0
	for _, b := range bodies {
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			t.Fatal(err)
		}
		hosts += req.Metrics().ResourceMetrics().Len()
	}
	if hosts != n {
		t.Errorf("requests hold %d hosts, want %d", hosts, n)
	}
}
