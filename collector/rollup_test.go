package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/internal/influxtest"
)

// TestRollupCommandDays: `rollup` computes the hours of its range, then the daily rollups of
// the UTC days those hours fall in, each the sum of the day's hourly rollups.
func TestRollupCommandDays(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	end := time.Date(2026, 3, 10, 1, 0, 0, 0, time.UTC)
	writeFleet(t, s, end) // 4 hosts, 23:01 on the 9th to 01:00 on the 10th
	var stdout, stderr bytes.Buffer
	code := cli(t.Context(), []string{
		"rollup", "--from", end.Add(-3 * time.Hour).Format(time.RFC3339), "--to", end.Add(time.Hour).Format(time.RFC3339),
		"--influx-url", s.URL, "--influx-bucket", s.Bucket(),
	}, &stdout, &stderr)
	// Hours 22 to 01: data in 23, 00 and 01; days the 9th and the 10th.
	if code != 0 || !strings.Contains(stdout.String(), "rolled up 4 hours") || !strings.Contains(stdout.String(), "12 points; and 2 days: 8 points") {
		t.Fatalf("rollup: %d %q %s", code, stdout.String(), stderr.String())
	}
	sums := func(measurement string) map[string][]any {
		out := map[string][]any{}
		q := `SELECT sum(energy_j), sum(interval_s), sum(busy_s), sum(sum_pp), count(energy_j) FROM ` + measurement +
			` WHERE time >= '2026-03-09T00:00:00Z' AND time < '2026-03-11T00:00:00Z' GROUP BY time(1d), host, scope, source`
		for _, ser := range s.Query(t, q) {
			for _, row := range ser.Values {
				out[ser.Tags["host"]+" "+time.UnixMilli(int64(row[0].(float64))).UTC().Format(time.DateOnly)] = row[1:]
			}
		}
		return out
	}
	hourly, daily := sums("host_1h"), sums("host_1d")
	if len(daily) != 8 {
		t.Fatalf("daily rollups %v, want 4 hosts × 2 days", daily)
	}
	for k, h := range hourly {
		d := daily[k]
		if d == nil || d[4] != 1.0 {
			t.Errorf("%s: %v daily points, want 1", k, d)
			continue
		}
		for i := range 4 {
			if a, b := h[i].(float64), d[i].(float64); math.Abs(a-b) > 1e-12*math.Abs(a) {
				t.Errorf("%s: daily %v, hourly sum %v", k, d[:4], h[:4])
				break
			}
		}
	}
}
