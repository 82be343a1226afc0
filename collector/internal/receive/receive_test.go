package receive

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink is a Consumer that keeps what it receives and answers as told.
type sink struct {
	mu      sync.Mutex
	got     []pmetric.Metrics
	result  Result
	err     error
	block   chan struct{} // when set, ConsumeMetrics waits for it to close
	entered chan struct{} // when set, ConsumeMetrics signals it on entry
}

func (s *sink) ConsumeMetrics(_ context.Context, md pmetric.Metrics) (Result, error) {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, md)
	return s.result, s.err
}

func (s *sink) metrics() []pmetric.Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// start starts a receiver on loopback ports and shuts it down at cleanup.
func start(t *testing.T, cfg Config, c Consumer) *Receiver {
	t.Helper()
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = "127.0.0.1:0"
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	r := New(cfg, c, discard())
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return r
}

func deltaSelector(sdkmetric.InstrumentKind) metricdata.Temporality {
	return metricdata.DeltaTemporality
}

// sdkSend records a delta energy counter and a gauge with the OpenTelemetry Go SDK and exports
// them through exp (a real OTLP exporter), as a fleetwatt agent or any instrumented program would.
func sdkSend(t *testing.T, exp sdkmetric.Exporter) error {
	t.Helper()
	ctx := t.Context()
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithResource(resource.NewSchemaless(
			attribute.String(semconv.AttrHostName, "web-1"),
			attribute.String(semconv.AttrHostArch, "amd64"),
		)),
	)
	defer func() { _ = mp.Shutdown(context.WithoutCancel(ctx)) }()
	meter := mp.Meter(semconv.InstrumentationScope)
	energy, err := meter.Float64Counter(semconv.MetricEnergy)
	if err != nil {
		t.Fatal(err)
	}
	energy.Add(ctx, 1800, metric.WithAttributes(attribute.String(semconv.AttrScope, string(semconv.ScopeWall))))
	power, err := meter.Float64Gauge(semconv.MetricPower)
	if err != nil {
		t.Fatal(err)
	}
	power.Record(ctx, 120, metric.WithAttributes(attribute.String(semconv.AttrScope, string(semconv.ScopeWall))))
	return mp.ForceFlush(ctx)
}

// received flattens what a sink got into "name scope-attr value" strings.
func received(mds []pmetric.Metrics) []string {
	var out []string
	for _, md := range mds {
		for _, rm := range md.ResourceMetrics().All() {
			host, _ := rm.Resource().Attributes().Get(semconv.AttrHostName)
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					var dps pmetric.NumberDataPointSlice
					switch m.Type() {
					case pmetric.MetricTypeSum:
						dps = m.Sum().DataPoints()
					case pmetric.MetricTypeGauge:
						dps = m.Gauge().DataPoints()
					}
					for _, dp := range dps.All() {
						scope, _ := dp.Attributes().Get(semconv.AttrScope)
						out = append(out, host.AsString()+" "+m.Name()+" "+scope.AsString()+" "+
							strconv.FormatFloat(dp.DoubleValue(), 'g', -1, 64))
					}
				}
			}
		}
	}
	return out
}

func TestGRPCFromSDK(t *testing.T) {
	t.Parallel()
	s := &sink{}
	r := start(t, Config{}, s)
	exp, err := otlpmetricgrpc.New(t.Context(),
		otlpmetricgrpc.WithInsecure(),
		otlpmetricgrpc.WithEndpoint(r.GRPCAddr().String()),
		otlpmetricgrpc.WithCompressor("gzip"),
		otlpmetricgrpc.WithTemporalitySelector(deltaSelector),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := sdkSend(t, exp); err != nil {
		t.Fatalf("export: %v", err)
	}
	want := []string{"web-1 hw.energy wall 1800", "web-1 hw.power wall 120"}
	if diff := cmp.Diff(want, received(s.metrics())); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
	sum := s.metrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum()
	if sum.AggregationTemporality() != pmetric.AggregationTemporalityDelta {
		t.Errorf("temporality = %v, want delta", sum.AggregationTemporality())
	}
}

func TestHTTPFromSDK(t *testing.T) {
	t.Parallel()
	for _, compression := range []otlpmetrichttp.Compression{otlpmetrichttp.NoCompression, otlpmetrichttp.GzipCompression} {
		s := &sink{}
		r := start(t, Config{}, s)
		exp, err := otlpmetrichttp.New(t.Context(),
			otlpmetrichttp.WithInsecure(),
			otlpmetrichttp.WithEndpoint(r.HTTPAddr().String()),
			otlpmetrichttp.WithCompression(compression),
			otlpmetrichttp.WithTemporalitySelector(deltaSelector),
		)
		if err != nil {
			t.Fatal(err)
		}
		if err := sdkSend(t, exp); err != nil {
			t.Fatalf("export (compression %v): %v", compression, err)
		}
		want := []string{"web-1 hw.energy wall 1800", "web-1 hw.power wall 120"}
		if diff := cmp.Diff(want, received(s.metrics())); diff != "" {
			t.Errorf("compression %v: received (-want +got):\n%s", compression, diff)
		}
	}
}

func TestSDKSeesFailures(t *testing.T) {
	t.Parallel()
	s := &sink{err: errors.New("influxdb down")}
	r := start(t, Config{}, s)
	grpcExp, err := otlpmetricgrpc.New(t.Context(), otlpmetricgrpc.WithInsecure(),
		otlpmetricgrpc.WithEndpoint(r.GRPCAddr().String()),
		otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	if err := sdkSend(t, grpcExp); err == nil || !strings.Contains(err.Error(), "influxdb down") {
		t.Errorf("gRPC export with a failing store = %v, want the store's error", err)
	}
	httpExp, err := otlpmetrichttp.New(t.Context(), otlpmetrichttp.WithInsecure(),
		otlpmetrichttp.WithEndpoint(r.HTTPAddr().String()),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	if err := sdkSend(t, httpExp); err == nil || !strings.Contains(err.Error(), "retry-able") || !strings.Contains(err.Error(), "influxdb down") {
		t.Errorf("HTTP export with a failing store = %v, want a retryable failure with the store's error", err)
	}
}

func TestGRPCStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		sink      *sink
		code      codes.Code
		retry     bool
		rejected  int64
		rejectMsg string
	}{
		{"ok", &sink{}, codes.OK, false, 0, ""},
		{"partial", &sink{result: Result{RejectedDataPoints: 2, ErrorMessage: "metric \"x\": value is NaN"}}, codes.OK, false, 2, "metric \"x\": value is NaN"},
		{"retryable", &sink{err: errors.New("influxdb down")}, codes.Unavailable, true, 0, ""},
		{"permanent", &sink{err: Permanent(errors.New("field type conflict"))}, codes.InvalidArgument, false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := start(t, Config{}, tt.sink)
			cc, err := grpc.NewClient(r.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			resp, err := pmetricotlp.NewGRPCClient(cc).Export(t.Context(), pmetricotlp.NewExportRequestFromMetrics(sample()))
			st := status.Convert(err)
			if st.Code() != tt.code {
				t.Fatalf("Export = %v, want code %v", err, tt.code)
			}
			if tt.retry {
				var ri *errdetails.RetryInfo
				for _, d := range st.Details() {
					if x, ok := d.(*errdetails.RetryInfo); ok {
						ri = x
					}
				}
				if ri == nil || ri.GetRetryDelay().AsDuration() != DefaultRetryAfter {
					t.Errorf("details %v, want RetryInfo of %v", st.Details(), DefaultRetryAfter)
				}
			}
			if err == nil {
				ps := resp.PartialSuccess()
				if ps.RejectedDataPoints() != tt.rejected || ps.ErrorMessage() != tt.rejectMsg {
					t.Errorf("partial success = %d %q, want %d %q", ps.RejectedDataPoints(), ps.ErrorMessage(), tt.rejected, tt.rejectMsg)
				}
			}
		})
	}
}

// sample is a small request: one gauge point.
func sample() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(semconv.AttrHostName, "web-1")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(semconv.MetricPower)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(1_740_830_415_000_000_000)
	dp.SetDoubleValue(120)
	return md
}

func protoBody(t testing.TB) []byte {
	b, err := pmetricotlp.NewExportRequestFromMetrics(sample()).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// jsonBody is an OTLP/JSON export request as curl would send it (the OTLP JSON encoding:
// lowerCamelCase keys, 64-bit integers as strings).
const jsonBody = `{"resourceMetrics":[{"resource":{"attributes":[{"key":"host.name","value":{"stringValue":"web-1"}}]},
 "scopeMetrics":[{"scope":{"name":"curl"},"metrics":[{"name":"hw.power","unit":"W","gauge":{"dataPoints":[
  {"attributes":[{"key":"fleetwatt.power.scope","value":{"stringValue":"wall"}}],
   "timeUnixNano":"1740830415000000000","asDouble":120}]}}]}]}]}`

type httpCase struct {
	name        string
	method      string
	contentType string
	encoding    string
	body        []byte
	sink        *sink
	max         int64

	status     int
	respType   string
	code       codes.Code // of the google.rpc.Status body, for errors
	msg        string     // in the error message
	retryAfter string
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	pb := protoBody(t)
	bomb := gzipped(make([]byte, 4<<20)) // 4 MiB of zeros in about 4 KiB
	tests := []httpCase{
		{name: "protobuf", contentType: contentTypeProtobuf, body: pb, status: 200, respType: contentTypeProtobuf},
		{name: "json", contentType: contentTypeJSON, body: []byte(jsonBody), status: 200, respType: contentTypeJSON},
		{name: "json_charset", contentType: "application/json; charset=utf-8", body: []byte(jsonBody), status: 200, respType: contentTypeJSON},
		{name: "gzip", contentType: contentTypeProtobuf, encoding: "gzip", body: gzipped(pb), status: 200, respType: contentTypeProtobuf},
		{name: "gzip_json", contentType: contentTypeJSON, encoding: "gzip", body: gzipped([]byte(jsonBody)), status: 200, respType: contentTypeJSON},
		{
			name: "malformed_protobuf", contentType: contentTypeProtobuf, body: []byte("\xff\xff\xff not protobuf"),
			status: 400, respType: contentTypeProtobuf, code: codes.InvalidArgument, msg: "decode protobuf export request",
		},
		{
			name: "malformed_json", contentType: contentTypeJSON, body: []byte(`{"resourceMetrics":[{`),
			status: 400, respType: contentTypeJSON, code: codes.InvalidArgument, msg: "decode json export request",
		},
		{
			name: "bad_gzip", contentType: contentTypeProtobuf, encoding: "gzip", body: pb,
			status: 400, respType: contentTypeProtobuf, code: codes.InvalidArgument, msg: "read gzip body",
		},
		{
			name: "oversized", contentType: contentTypeProtobuf, body: bytes.Repeat(pb, 100), max: 1024,
			status: 413, respType: contentTypeProtobuf, code: codes.InvalidArgument, msg: "exceeds 1024 bytes",
		},
		{
			name: "gzip_bomb", contentType: contentTypeProtobuf, encoding: "gzip", body: bomb, max: 1 << 20,
			status: 413, respType: contentTypeProtobuf, code: codes.InvalidArgument, msg: "exceeds 1048576 bytes",
		},
		{
			name: "unknown_encoding", contentType: contentTypeProtobuf, encoding: "br", body: pb,
			status: 415, respType: contentTypeProtobuf, code: codes.InvalidArgument, msg: `unsupported Content-Encoding "br"`,
		},
		{
			name: "unknown_type", contentType: "text/plain", body: pb,
			status: 415, respType: contentTypeJSON, code: codes.InvalidArgument, msg: `unsupported Content-Type "text/plain"`,
		},
		{name: "get", method: http.MethodGet, status: 405, respType: contentTypeJSON, code: codes.Unimplemented, msg: "takes POST"},
		{
			name: "store_down", contentType: contentTypeProtobuf, body: pb, sink: &sink{err: errors.New("influxdb down")},
			status: 503, respType: contentTypeProtobuf, code: codes.Unavailable, msg: "influxdb down", retryAfter: "5",
		},
		{
			name: "store_refuses", contentType: contentTypeJSON, body: []byte(jsonBody), sink: &sink{err: Permanent(errors.New("partial write"))},
			status: 400, respType: contentTypeJSON, code: codes.InvalidArgument, msg: "partial write",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.sink == nil {
				tt.sink = &sink{}
			}
			r := New(Config{MaxRequestBytes: tt.max}, tt.sink, discard())
			srv := httptest.NewServer(r.Handler())
			defer srv.Close()
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+MetricsPath, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tt.contentType)
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.respType {
				t.Errorf("Content-Type %q, want %q", got, tt.respType)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			if tt.status == http.StatusOK {
				if n := len(tt.sink.metrics()); n != 1 {
					t.Errorf("consumer got %d requests, want 1", n)
				}
				return
			}
			var st spb.Status
			if tt.respType == contentTypeProtobuf {
				err = proto.Unmarshal(body, &st)
			} else {
				err = protojson.Unmarshal(body, &st)
			}
			if err != nil {
				t.Fatalf("body %q is not a google.rpc.Status: %v", body, err)
			}
			if codes.Code(st.Code) != tt.code || !strings.Contains(st.Message, tt.msg) {
				t.Errorf("status {%v %q}, want {%v %q}", codes.Code(st.Code), st.Message, tt.code, tt.msg)
			}
		})
	}
}

func TestHTTPPartialSuccess(t *testing.T) {
	t.Parallel()
	s := &sink{result: Result{RejectedDataPoints: 3, ErrorMessage: `metric "temp": value is NaN or infinite`}}
	r := New(Config{}, s, discard())
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+MetricsPath, contentTypeJSON, strings.NewReader(jsonBody))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	er := pmetricotlp.NewExportResponse()
	if err := er.UnmarshalJSON(body); err != nil {
		t.Fatalf("response %q: %v", body, err)
	}
	if ps := er.PartialSuccess(); ps.RejectedDataPoints() != 3 || ps.ErrorMessage() != s.result.ErrorMessage {
		t.Errorf("partial success %d %q in %s", ps.RejectedDataPoints(), ps.ErrorMessage(), body)
	}
}

// TestShutdownWaitsForInFlight: a request whose write is under way when shutdown starts is
// finished and acknowledged; Shutdown returns only after it.
func TestShutdownWaitsForInFlight(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := &sink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
			r := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, s, discard())
			if err := r.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			sent := make(chan error, 1)
			go func() {
				if proto == "grpc" {
					cc, err := grpc.NewClient(r.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
					if err != nil {
						sent <- err
						return
					}
					defer cc.Close()
					_, err = pmetricotlp.NewGRPCClient(cc).Export(context.Background(), pmetricotlp.NewExportRequestFromMetrics(sample()))
					sent <- err
					return
				}
				resp, err := http.Post("http://"+r.HTTPAddr().String()+MetricsPath, contentTypeJSON, strings.NewReader(jsonBody))
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = errors.New(resp.Status)
					}
				}
				sent <- err
			}()
			<-s.entered
			stopped := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				stopped <- r.Shutdown(ctx)
			}()
			select {
			case err := <-stopped:
				t.Fatalf("Shutdown returned (%v) while a write was in flight", err)
			case <-time.After(200 * time.Millisecond):
			}
			close(s.block)
			if err := <-sent; err != nil {
				t.Errorf("in-flight request: %v", err)
			}
			if err := <-stopped; err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	s := &sink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	defer close(s.block)
	r := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, s, discard())
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(r.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sent := make(chan error, 1)
	go func() {
		_, err := pmetricotlp.NewGRPCClient(cc).Export(context.Background(), pmetricotlp.NewExportRequestFromMetrics(sample()))
		sent <- err
	}()
	<-s.entered
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	go func() {
		// The cut-off request's consumer is released after Shutdown's deadline.
		time.Sleep(300 * time.Millisecond)
		s.block <- struct{}{}
	}()
	if err := r.Shutdown(ctx); err == nil {
		t.Error("Shutdown past its deadline returned nil")
	}
	if err := <-sent; status.Code(err) != codes.Unavailable && status.Code(err) != codes.Canceled {
		t.Errorf("cut-off request = %v, want Unavailable or Canceled so the sender retries", err)
	}
}

func TestStartAddressInUse(t *testing.T) {
	t.Parallel()
	r1 := start(t, Config{}, &sink{})
	r2 := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: r1.HTTPAddr().String()}, &sink{}, discard())
	if err := r2.Start(t.Context()); err == nil {
		_ = r2.Shutdown(t.Context())
		t.Fatal("Start on a used address succeeded")
	} else if !strings.Contains(err.Error(), "listen for otlp/http") {
		t.Errorf("error %q does not name the listener", err)
	}
}

// FuzzHTTP sends random bodies through the OTLP/HTTP handler in each content type and
// encoding: nothing may panic, and every answer is 200 or a 4xx.
func FuzzHTTP(f *testing.F) {
	pb := protoBody(f)
	f.Add(uint8(0), pb)
	f.Add(uint8(1), []byte(jsonBody))
	f.Add(uint8(2), gzipped(pb))
	f.Add(uint8(3), gzipped([]byte(jsonBody)))
	f.Add(uint8(1), []byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"dataPoints":[{"asInt":"9223372036854775807"}]}}]}]}]}`))
	r := New(Config{MaxRequestBytes: 1 << 20}, &sink{}, discard())
	h := r.Handler()
	f.Fuzz(func(t *testing.T, mode uint8, body []byte) {
		req := httptest.NewRequest(http.MethodPost, MetricsPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", []string{contentTypeProtobuf, contentTypeJSON}[mode%2])
		if mode&2 != 0 {
			req.Header.Set("Content-Encoding", "gzip")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK && (w.Code < 400 || w.Code > 499) {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}
