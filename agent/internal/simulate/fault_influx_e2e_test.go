package simulate_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/fleetwatt/fleetwatt/agent/internal/export"
	"github.com/fleetwatt/fleetwatt/agent/internal/simulate"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
)

// TestNothingLostWhenInfluxFails puts a proxy between the collector and a real InfluxDB that,
// for a while, answers writes with 500 and refuses any write of more than 100 lines with 413:
// the collector's write-ahead log must retry the one and split the other, and every energy
// point and joule the fleet produced must end up in InfluxDB exactly once.
func TestNothingLostWhenInfluxFails(t *testing.T) {
	spec, err := simulate.Load(strings.NewReader(faultSpec))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Hour)
	opts := simulate.Options{
		Spec: spec, Seed: 13, Backfill: 6 * time.Hour, Interval: 5 * time.Minute,
		Now: func() time.Time { return now }, Version: "test",
	}
	want := &countingExporter{}
	counted := opts
	counted.NewExporter = func(context.Context, export.Options) (sdkmetric.Exporter, error) { return want, nil }
	if err := simulate.Run(context.Background(), counted, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}

	s := influxtest.Start(t)
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var failing atomic.Bool
	var refused500, refused413 atomic.Int64
	failing.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() && strings.HasSuffix(r.URL.Path, "/write") {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if lines(t, r, body) > 100 {
				refused413.Add(1)
				http.Error(w, "request entity too large", http.StatusRequestEntityTooLarge)
				return
			}
			if refused500.Add(1)%2 == 1 { // every other write fails
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	bin := buildCollector(t)
	grpcAddr, httpAddr, listen := freeAddr(t), freeAddr(t), freeAddr(t)
	startProc(t, bin, listen, "--influx-url", srv.URL, "--influx-bucket", s.Bucket(), "--wal-dir", t.TempDir(),
		"--otlp-grpc", grpcAddr, "--otlp-http", httpAddr, "--listen", listen, "--rollup-every", "0")
	run := opts
	run.Export = export.Options{Endpoint: "http://" + grpcAddr, Protocol: export.ProtocolGRPC}
	if err := simulate.Run(context.Background(), run, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // a while of failures, then InfluxDB behaves
	failing.Store(false)

	var points, joules float64
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		series := s.Query(t, `SELECT count(energy_j) AS n, sum(energy_j) AS j FROM power`)
		if len(series) == 1 {
			r := series[0].Rows()[0]
			points, joules = r["n"].(float64), r["j"].(float64)
			if int(points) >= want.points {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("InfluxDB holds %v energy points, want %d", points, want.points)
		}
	}
	if int(points) != want.points {
		t.Errorf("InfluxDB holds %v energy points, the fleet produced %d", points, want.points)
	}
	if d := joules - want.joules; d > 1e-6*want.joules || d < -1e-6*want.joules {
		t.Errorf("InfluxDB holds %.3f J, the fleet produced %.3f J", joules, want.joules)
	}
	if refused500.Load() == 0 || refused413.Load() == 0 {
		t.Errorf("the proxy answered %d writes with 500 and %d with 413: the test did not test both", refused500.Load(), refused413.Load())
	}
	t.Logf("%d points, %.0f J; the proxy answered %d writes with 413 and about %d with 500",
		want.points, want.joules, refused413.Load(), refused500.Load()/2)
}

// lines counts the lines of a write request's body, gzipped or not.
func lines(t *testing.T, r *http.Request, body []byte) int {
	if r.Header.Get("Content-Encoding") != "gzip" {
		return bytes.Count(body, []byte("\n")) + 1
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Errorf("gzip body: %v", err)
		return 0
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Errorf("gzip body: %v", err)
	}
	return bytes.Count(plain, []byte("\n")) + 1
}
