package influx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"go.uber.org/goleak"

	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newWriter(t *testing.T, url, bucket string) *Writer {
	t.Helper()
	w, err := New(Options{URL: url, Bucket: bucket, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func powerPoint(host string, i int) *write.Point {
	p := write.NewPointWithMeasurement(semconv.MeasurementPower)
	p.AddTag(semconv.TagHost, host)
	p.AddTag(semconv.TagScope, string(semconv.ScopeWall))
	p.AddField(semconv.FieldEnergy, 1500.0+float64(i))
	p.AddField(semconv.FieldInterval, 15.0)
	p.SetTime(t0.Add(time.Duration(i) * time.Second))
	return p
}

func TestWriteReadBack(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	w := newWriter(t, s.URL, s.Bucket())
	ctx := t.Context()
	if err := w.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := w.Write(ctx, []*write.Point{powerPoint("web-1", 0), powerPoint("web-1", 1)}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	series := s.Query(t, `SELECT energy_j, interval_s FROM power GROUP BY host, scope`)
	if len(series) != 1 {
		t.Fatalf("got %d series, want 1: %+v", len(series), series)
	}
	want := []map[string]any{
		{"time": float64(t0.UnixMilli()), "energy_j": 1500.0, "interval_s": 15.0},
		{"time": float64(t0.Add(time.Second).UnixMilli()), "energy_j": 1501.0, "interval_s": 15.0},
	}
	if diff := cmp.Diff(want, series[0].Rows()); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"host": "web-1", "scope": "wall"}, series[0].Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
}

func TestWriteSplitsLargeBatches(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	w := newWriter(t, s.URL, s.Bucket())
	const n = 2*MaxLines + 7
	points := make([]*write.Point, n)
	for i := range points {
		points[i] = powerPoint("web-2", i)
	}
	if err := w.Write(t.Context(), points); err != nil {
		t.Fatalf("Write: %v", err)
	}
	series := s.Query(t, `SELECT count(energy_j) FROM power`)
	if len(series) != 1 || len(series[0].Values) != 1 || series[0].Values[0][1] != float64(n) {
		t.Errorf("count = %+v, want %d", series, n)
	}
}

func TestWriteServerDown(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	w := newWriter(t, s.URL, s.Bucket())
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	err := w.Write(t.Context(), []*write.Point{powerPoint("web-1", 0)})
	if err == nil || !IsRetryable(err) {
		t.Fatalf("Write to a stopped server = %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "is influxdb running") {
		t.Errorf("error %q does not say what to check", err)
	}
	if err := w.Ping(t.Context()); err == nil {
		t.Error("Ping to a stopped server succeeded")
	}
}

func TestWriteNoDatabase(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	w := newWriter(t, s.URL, "nosuchdb/autogen")
	err := w.Write(t.Context(), []*write.Point{powerPoint("web-1", 0)})
	if err == nil || !IsRetryable(err) {
		t.Fatalf("Write to a missing database = %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "CREATE DATABASE nosuchdb") {
		t.Errorf("error %q does not say how to create the database", err)
	}
}

func TestWriteFieldTypeConflictIsPermanent(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	w := newWriter(t, s.URL, s.Bucket())
	if err := w.Write(t.Context(), []*write.Point{powerPoint("web-1", 0)}); err != nil {
		t.Fatal(err)
	}
	p := write.NewPointWithMeasurement(semconv.MeasurementPower)
	p.AddTag(semconv.TagHost, "web-1")
	p.AddField(semconv.FieldEnergy, "not a number")
	p.SetTime(t0.Add(time.Minute))
	err := w.Write(t.Context(), []*write.Point{p})
	if err == nil || IsRetryable(err) {
		t.Fatalf("Write with a field type conflict = %v, want a permanent error", err)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status     int
		retryAfter string
		retryable  bool
		hint       string
	}{
		{http.StatusBadRequest, "", false, ""},
		{http.StatusUnprocessableEntity, "", false, ""},
		{http.StatusRequestEntityTooLarge, "", false, "max-body-size"},
		{http.StatusUnauthorized, "", true, "check the token"},
		{http.StatusForbidden, "", true, "check the token"},
		{http.StatusNotFound, "", true, "CREATE DATABASE fleetwatt"},
		{http.StatusTooManyRequests, "7", true, ""},
		{http.StatusInternalServerError, "", true, ""},
		{http.StatusServiceUnavailable, "3", true, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, `{"code":"x","message":"status %d"}`, tt.status)
			}))
			defer srv.Close()
			w := newWriter(t, srv.URL, "fleetwatt")
			err := w.Write(t.Context(), []*write.Point{powerPoint("a", 0)})
			var e *Error
			if !errorAs(err, &e) {
				t.Fatalf("Write = %v, want an *Error", err)
			}
			if e.StatusCode != tt.status || e.Retryable != tt.retryable || IsRetryable(err) != tt.retryable {
				t.Errorf("Write = %+v, want status %d retryable %v", e, tt.status, tt.retryable)
			}
			if !strings.Contains(err.Error(), tt.hint) || !strings.Contains(err.Error(), fmt.Sprintf("status %d", tt.status)) {
				t.Errorf("error %q lacks %q or the server's message", err, tt.hint)
			}
			if tt.retryAfter != "" && e.RetryAfter == 0 {
				t.Errorf("RetryAfter = 0, want the server's %ss", tt.retryAfter)
			}
			srv.CloseClientConnections()
		})
	}
}

func errorAs(err error, e **Error) bool { return errors.As(err, e) }

func TestIsRetryable(t *testing.T) {
	t.Parallel()
	if IsRetryable(nil) {
		t.Error("IsRetryable(nil) = true")
	}
	if !IsRetryable(context.Canceled) {
		t.Error("IsRetryable(context.Canceled) = false; an unknown error must not drop data")
	}
	if IsRetryable(fmt.Errorf("wrapped: %w", &Error{Err: fmt.Errorf("bad"), Retryable: false})) {
		t.Error("IsRetryable(wrapped permanent) = true")
	}
}
