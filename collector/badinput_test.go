package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/fleetwatt/fleetwatt/collector/internal/config"
	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// The bad-input suite: malformed, mislabelled, absurd and hostile requests against a running
// collector and a real InfluxDB. Each is answered with a status and a message that names the
// problem; good data in the same request is stored; and the collector keeps serving (every
// case is followed by a good request that must succeed).

// badHost builds a resource of host h with one scope and returns its metrics.
func badHost(md pmetric.Metrics, h string) pmetric.MetricSlice {
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(semconv.AttrHostName, h)
	return rm.ScopeMetrics().AppendEmpty().Metrics()
}

// badPower adds an hw.power data point of w watts at at for sensor id.
func badPower(ms pmetric.MetricSlice, id string, w float64, at time.Time) {
	m := ms.AppendEmpty()
	m.SetName(semconv.MetricPower)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.Attributes().PutStr(semconv.AttrHwID, id)
	dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
	dp.SetDoubleValue(w)
}

func marshal(t *testing.T, md pmetric.Metrics) []byte {
	t.Helper()
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type answer struct {
	status   int
	message  string // google.rpc.Status message, or partial_success.error_message
	rejected int64  // partial_success.rejected_data_points
}

// postOTLP sends body to the collector's OTLP/HTTP endpoint and decodes the answer (JSON).
func postOTLP(t *testing.T, addr, contentType, encoding string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/v1/metrics", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode}
	pb := resp.Header.Get("Content-Type") == "application/x-protobuf"
	if resp.StatusCode != http.StatusOK {
		var st spb.Status
		if pb {
			err = proto.Unmarshal(b, &st)
		} else {
			err = protojson.Unmarshal(b, &st)
		}
		if err != nil {
			t.Fatalf("status %d, body %q: %v", resp.StatusCode, b, err)
		}
		a.message = st.GetMessage()
		return a
	}
	r := pmetricotlp.NewExportResponse()
	if pb {
		err = r.UnmarshalProto(b)
	} else {
		err = r.UnmarshalJSON(b)
	}
	if err != nil {
		t.Fatalf("decode response %q: %v", b, err)
	}
	a.message, a.rejected = r.PartialSuccess().ErrorMessage(), r.PartialSuccess().RejectedDataPoints()
	return a
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// countPower returns how many power points InfluxDB holds for host h.
func countPower(t *testing.T, s *influxtest.Server, h string) int {
	t.Helper()
	n := 0
	for _, se := range s.Query(t, fmt.Sprintf(`SELECT power_w FROM power WHERE host = '%s'`, h)) {
		n += len(se.Values)
	}
	return n
}

func TestBadInput(t *testing.T) {
	s := influxtest.Start(t)
	var log bytes.Buffer
	cfg, stop := startCollector(t, s, &log)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("collector: %v", err)
		}
	}()
	now := time.Now().Truncate(time.Millisecond)

	// good sends a good request and checks that it is stored: the collector is unharmed.
	good := 0
	checkGood := func(t *testing.T) {
		t.Helper()
		good++
		md := pmetric.NewMetrics()
		h := fmt.Sprintf("good-%d", good)
		badPower(badHost(md, h), "s", 100, now)
		if a := postOTLP(t, cfg.OTLP.HTTP, "application/x-protobuf", "", marshal(t, md)); a.status != http.StatusOK || a.rejected != 0 {
			t.Fatalf("follow-up good request: %+v", a)
		}
		if n := countPower(t, s, h); n != 1 {
			t.Fatalf("follow-up good request: %d points stored, want 1", n)
		}
	}

	mixed := pmetric.NewMetrics()
	ms := badHost(mixed, "mixed")
	badPower(ms, "ok-1", 250, now)
	badPower(ms, "negative", -3, now)
	badPower(ms, "absurd", 5e6, now)
	badPower(ms, "future", 250, now.Add(time.Hour))
	badPower(ms, "past", 250, now.Add(-200*24*time.Hour))
	badPower(ms, "ok-2", 300, now)
	nan := ms.AppendEmpty()
	nan.SetName("temperature")
	nan.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(20) // no timestamp
	empty := ms.AppendEmpty()
	empty.SetName("no.data") // a metric of no (or an unknown) type
	pb := marshal(t, mixed)

	untyped := pmetric.NewMetrics()
	badHost(untyped, "untyped").AppendEmpty().SetName("no.data")
	// A metric of a type from a newer OTLP (field 99 of Metric): unknown fields are skipped.
	unknownType := []byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"future.type","someNewType":{"dataPoints":[{"asDouble":1}]}}]}]}]}`)

	oversized := make([]byte, 17<<20)
	tests := []struct {
		name        string
		contentType string
		encoding    string
		body        []byte
		want        answer // message: a part of the message
	}{
		{"malformed protobuf", "application/x-protobuf", "", []byte("\x0a\xff\xff\xff\xff\x0f"), answer{status: 400, message: "decode protobuf export request"}},
		{"malformed json", "application/json", "", []byte(`{"resourceMetrics":[{"scopeMetrics":`), answer{status: 400, message: "decode json export request"}},
		{"json with a wrong type", "application/json", "", []byte(`{"resourceMetrics":"yes"}`), answer{status: 400, message: "decode json export request"}},
		{"wrong content type", "text/plain", "", pb, answer{status: 415, message: `unsupported Content-Type "text/plain"`}},
		{"no content type", "", "", pb, answer{status: 415, message: `unsupported Content-Type ""`}},
		{"gzip header lie", "application/x-protobuf", "gzip", pb, answer{status: 400, message: "read gzip body"}},
		{"truncated gzip", "application/x-protobuf", "gzip", gz(pb)[:40], answer{status: 400, message: "read body"}},
		{"unknown encoding", "application/x-protobuf", "br", pb, answer{status: 415, message: `unsupported Content-Encoding "br"`}},
		{"oversized", "application/x-protobuf", "", oversized, answer{status: 413, message: "request body exceeds 16777216 bytes"}},
		{"gzip bomb", "application/x-protobuf", "gzip", gz(oversized), answer{status: 413, message: "request body exceeds 16777216 bytes"}},
		{"empty body", "application/x-protobuf", "", nil, answer{status: 200}},
		{"empty metric type", "application/x-protobuf", "", marshal(t, untyped), answer{status: 200, message: `metric "no.data": ` + convert.ReasonNoType}},
		{"unknown metric type", "application/json", "", unknownType, answer{status: 200, message: `metric "future.type": ` + convert.ReasonNoType}},
		{"mixed good and bad", "application/x-protobuf", "", pb, answer{status: 200, rejected: 5, message: convert.ReasonNegative}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := postOTLP(t, cfg.OTLP.HTTP, tt.contentType, tt.encoding, tt.body)
			if got.status != tt.want.status || got.rejected != tt.want.rejected || !strings.Contains(got.message, tt.want.message) {
				t.Errorf("answer %+v, want %+v (message containing %q)", got, tt.want, tt.want.message)
			}
			checkGood(t)
		})
	}

	// The mixed request's good points are stored, the bad ones are not.
	got := map[string]float64{}
	for _, se := range s.Query(t, `SELECT power_w FROM power WHERE host = 'mixed' GROUP BY sensor`) {
		for _, r := range se.Rows() {
			got[se.Tags["sensor"]] = r["power_w"].(float64)
		}
	}
	if diff := cmp.Diff(map[string]float64{"ok-1": 250, "ok-2": 300}, got); diff != "" {
		t.Errorf("mixed request stored (-want +got):\n%s", diff)
	}

	t.Run("each reason named", func(t *testing.T) {
		for _, c := range []struct {
			name string
			w    float64
			at   time.Time
			want string
		}{
			{"negative", -1, now, "negative energy or power (-1 W)"},
			{"absurd", 2e6, now, "power above the per-sensor limit (2e+06 W is above 1e+06 W)"},
			{"future", 1, now.Add(time.Hour), "time in the future"},
			{"past", 1, now.Add(-365 * 24 * time.Hour), "time too old"},
		} {
			md := pmetric.NewMetrics()
			badPower(badHost(md, "reason-"+c.name), "s", c.w, c.at)
			a := postOTLP(t, cfg.OTLP.HTTP, "application/json", "", mustJSON(t, md))
			want := `metric "hw.power": ` + c.want
			if a.status != 200 || a.rejected != 1 || !strings.Contains(a.message, want) {
				t.Errorf("%s: %+v, want 1 rejected with %q", c.name, a, want)
			}
		}
		checkGood(t)
	})

	t.Run("grpc", func(t *testing.T) {
		conn, err := grpc.NewClient(cfg.OTLP.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c := pmetricotlp.NewGRPCClient(conn)
		resp, err := c.Export(t.Context(), pmetricotlp.NewExportRequestFromMetrics(mixed))
		if err != nil {
			t.Fatalf("mixed request over gRPC: %v", err)
		}
		if ps := resp.PartialSuccess(); ps.RejectedDataPoints() != 5 || !strings.Contains(ps.ErrorMessage(), convert.ReasonNegative) {
			t.Errorf("gRPC partial success: %d rejected, %q", ps.RejectedDataPoints(), ps.ErrorMessage())
		}
		// A message over the limit is refused by gRPC itself.
		big := pmetric.NewMetrics()
		bms := badHost(big, "big")
		m := bms.AppendEmpty()
		m.SetName("big")
		m.SetEmptyGauge().DataPoints().AppendEmpty().Attributes().PutStr("blob", strings.Repeat("x", 17<<20))
		_, err = c.Export(t.Context(), pmetricotlp.NewExportRequestFromMetrics(big))
		if st := grpcstatus.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "larger than max") {
			t.Errorf("oversized gRPC request: %v, want ResourceExhausted naming the size", err)
		}
		// A raw message that is not an ExportMetricsServiceRequest.
		err = conn.Invoke(t.Context(), "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", &rawMessage{b: []byte("\x0a\xff\xff\xff\xff\x0f")}, &rawMessage{}, grpc.ForceCodec(rawCodec{}))
		if st := grpcstatus.Convert(err); st.Code() != codes.Internal && st.Code() != codes.InvalidArgument {
			t.Errorf("malformed gRPC request: %v, want Internal or InvalidArgument", err)
		} else if !strings.Contains(st.Message(), "unmarshal") {
			t.Errorf("malformed gRPC request: %q does not say it could not be decoded", st.Message())
		}
		checkGood(t)
	})

	t.Run("cardinality limit", func(t *testing.T) {
		// A second collector on the same InfluxDB, allowing 5 series per sender.
		var clog bytes.Buffer
		ccfg, cstop := startCollectorWith(t, s, &clog, func(c *config.Config) { c.Limits.MaxSeriesPerToken = 5 })
		defer func() {
			if err := cstop(); err != nil {
				t.Errorf("collector: %v", err)
			}
		}()
		send := func(at time.Time, sensors int) answer {
			md := pmetric.NewMetrics()
			ms := badHost(md, "churn")
			for i := range sensors {
				badPower(ms, fmt.Sprintf("s%02d", i), 10, at)
			}
			return postOTLP(t, ccfg.OTLP.HTTP, "application/x-protobuf", "", marshal(t, md))
		}
		a := send(now, 8)
		if a.status != 200 || a.rejected != 3 || !strings.Contains(a.message, convert.ReasonCardinality) {
			t.Errorf("8 series with a limit of 5: %+v", a)
		}
		// The known series keep flowing; new ones are still refused.
		if a := send(now.Add(time.Second), 8); a.status != 200 || a.rejected != 3 {
			t.Errorf("again: %+v", a)
		}
		if n := countPower(t, s, "churn"); n != 10 {
			t.Errorf("%d points stored, want 5 series × 2", n)
		}
	})

	t.Run("line protocol escaping", func(t *testing.T) {
		values := []string{
			`say "hi"`, `a,b`, `a b`, `a=b`, `back\slash`, `\"quoted\"`, `'single'`,
			"日本語 ⚡ 5 µJ", `  padded  `, `a\,b`, `x\ y`, `ends in =`, `{json: "yes"}`, "line1\nline2", "tab\tcr\r",
		}
		md := pmetric.NewMetrics()
		for i, v := range values {
			rm := md.ResourceMetrics().AppendEmpty()
			ra := rm.Resource().Attributes()
			ra.PutStr(semconv.AttrHostName, fmt.Sprintf("esc-%d", i))
			ra.PutStr(semconv.AttrSystemVendor, v) // a string field of the host point
			ra.PutStr(semconv.AttrHostCPUModel, v) // a tag of every fleetwatt point
			ms := rm.ScopeMetrics().AppendEmpty().Metrics()
			badPower(ms, v, 10, now) // the sensor tag
			g := ms.AppendEmpty()
			g.SetName("escape test, " + fmt.Sprint(i)) // a measurement with a space and a comma
			dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
			dp.SetDoubleValue(float64(i))
			dp.Attributes().PutStr("label", v)
			dp.Attributes().PutStr("key "+v, "k") // a tag key
		}
		a := postOTLP(t, cfg.OTLP.HTTP, "application/x-protobuf", "gzip", gz(marshal(t, md)))
		if a.status != 200 || a.rejected != 0 {
			t.Fatalf("answer %+v", a)
		}
		for i, v := range values {
			h := fmt.Sprintf("esc-%d", i)
			power := s.Query(t, fmt.Sprintf(`SELECT power_w, sensor, cpu_model FROM power WHERE host = '%s'`, h))
			host := s.Query(t, fmt.Sprintf(`SELECT sys_vendor FROM host WHERE host = '%s'`, h))
			gen := s.Query(t, fmt.Sprintf(`SELECT * FROM %s WHERE host = '%s'`, quoteIdent(fmt.Sprint("escape test, ", i)), h))
			if len(power) != 1 || len(power[0].Values) != 1 || len(host) != 1 || len(gen) != 1 || len(gen[0].Values) != 1 {
				t.Errorf("value %q: power %v, host %v, generic %v; want one row each", v, power, host, gen)
				continue
			}
			p, hr, gr := power[0].Rows()[0], host[0].Rows()[0], gen[0].Rows()[0]
			// Line protocol cannot carry a newline, carriage return or tab: the InfluxDB client
			// writes them as the two characters \n, \r, \t (docs/schema.md).
			sv := controlEscapes.Replace(v)
			want := map[string]any{"sensor": sv, "cpu_model": sv, "sys_vendor": sv, "label": sv, "key " + sv: "k", "value": float64(i)}
			got := map[string]any{
				"sensor": p["sensor"], "cpu_model": p["cpu_model"], "sys_vendor": hr["sys_vendor"],
				"label": gr["label"], "key " + sv: gr["key "+sv], "value": gr["value"],
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("value %q read back (-want +got):\n%s", v, diff)
			}
		}
		checkGood(t)
	})
}

var controlEscapes = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`)

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func mustJSON(t *testing.T, md pmetric.Metrics) []byte {
	t.Helper()
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawMessage and rawCodec send bytes over gRPC as they are.
type rawMessage struct{ b []byte }

type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.(*rawMessage).b, nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	v.(*rawMessage).b = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }
