package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/collector/internal/report"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// writeFleet writes two hours of raw points (one per minute) ending at end for an ARM and an
// x86 host with linear power curves.
func writeFleet(t *testing.T, s *influxtest.Server, end time.Time) {
	t.Helper()
	w, err := influx.New(influx.Options{URL: s.URL, Bucket: s.Bucket()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var points []*write.Point
	for _, h := range []struct {
		name, arch     string
		cores          float64
		idle, peak, mu float64
	}{
		{"arm-1", "arm64", 80, 54, 140, 0.35},
		{"arm-2", "arm64", 80, 56, 150, 0.40},
		{"x86-1", "amd64", 128, 117, 400, 0.45},
		{"x86-2", "amd64", 128, 120, 420, 0.50},
	} {
		tags := map[string]string{"host": h.name, "arch": h.arch, "cpu_model": h.arch + " cpu", "region": "cn-hangzhou"}
		for k := range 120 {
			ts := end.Add(-time.Duration(k) * time.Minute)
			u := h.mu + 0.25*math.Sin(float64(k)/10)
			pt := map[string]string{"scope": "wall", "source": "ipmi", "sensor": "psu"}
			for k, v := range tags {
				pt[k] = v
			}
			p := h.idle + (h.peak-h.idle)*u
			points = append(points,
				write.NewPoint(semconv.MeasurementPower, pt, map[string]any{"energy_j": p * 60, "interval_s": 60.0}, ts),
				write.NewPoint(semconv.MeasurementCPU, tags, map[string]any{"busy_s": u * h.cores * 60, "total_s": h.cores * 60, "interval_s": 60.0}, ts))
		}
	}
	if err := w.Write(context.Background(), points); err != nil {
		t.Fatal(err)
	}
}

func TestRollupAndReportCommands(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	end := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	writeFleet(t, s, end)
	influxArgs := []string{"--influx-url", s.URL, "--influx-bucket", s.Bucket()}
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := cli(t.Context(), append(args, influxArgs...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	from := end.Add(-3 * time.Hour).Format(time.RFC3339)
	to := end.Add(time.Hour).Format(time.RFC3339)
	code, out, errOut := run("rollup", "--from", from, "--to", to)
	if code != 0 || !strings.Contains(out, "rolled up 4 hours") || !strings.Contains(out, "12 points") {
		t.Fatalf("rollup: %d %q %s", code, out, errOut)
	}
	code, out, errOut = run("report", "--from", from, "--to", to, "--format", "json")
	if code != 0 {
		t.Fatalf("report: %d %s", code, errOut)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report json: %v\n%s", err, out)
	}
	if len(rep.Groups) != 2 || len(rep.Comparisons) != 1 || rep.Comparisons[0].Scope != "wall" || rep.Hours != 4 {
		t.Errorf("report: %+v", rep)
	}
	code, out, errOut = run("report", "--since", "24h", "--by", "region,scope")
	if code != 0 || !strings.Contains(out, "REGION") || !strings.Contains(out, "ARM vs x86") {
		t.Errorf("report table: %d\n%s%s", code, out, errOut)
	}
	for _, args := range [][]string{
		{"report", "--since", "1h", "--from", from},
		{"report", "--by", "host"},
		{"report", "--format", "xml"},
		{"report", "--regions", "/nonexistent.csv"},
		{"rollup", "--from", "yesterday"},
		{"report", "extra"},
	} {
		if code, _, errOut := run(args...); code != 2 || errOut == "" {
			t.Errorf("%v: code %d, stderr %q; want 2 with a message", args, code, errOut)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := cli(t.Context(), []string{"report", "--influx-url", "http://127.0.0.1:1"}, &stdout, &stderr); code != 1 {
		t.Errorf("unreachable influxdb: code %d, %s", code, stderr.String())
	}
}

// TestReportAPI: the running collector rolls up the recent hours on its own and serves the
// report on its HTTP listener.
func TestReportAPI(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	writeFleet(t, s, time.Now().UTC().Add(-time.Minute))
	cfg, stop := startCollector(t, s, io.Discard)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + cfg.Listen + "/api/v1/report"
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "?since=3h")
		if err != nil {
			t.Fatal(err)
		}
		var rep report.Report
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		if len(rep.Groups) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rollups after 30 s: %+v", rep)
		}
		time.Sleep(200 * time.Millisecond)
	}
	resp, err := http.Get(base + "?by=nope")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.Error, "nope") {
		t.Errorf("bad parameter: %d %+v %v", resp.StatusCode, body, err)
	}
}
