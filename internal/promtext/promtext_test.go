package promtext

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteAndParse(t *testing.T) {
	t.Parallel()
	h := NewHist(0.1, 0.01, 1, 1) // unsorted, with a duplicate
	for _, v := range []float64{0.005, 0.01, 0.05, 0.5, 3} {
		h.Observe(v)
	}
	var w Writer
	w.Counter("x_requests_total", "Requests.\nSecond line \\ with a backslash.", 42)
	w.Family("x_rejected_total", "Rejected, by reason.", Counter)
	w.Sample("x_rejected_total", 1, "reason", `a "quoted", back\slash`+"\nnewline ✓")
	w.Sample("x_rejected_total", 2, "reason", "plain", "source", "rapl")
	w.Gauge("x_bytes", "Bytes.", 1.5)
	w.Gauge("x_big", "Big.", 1e20)
	w.Histogram("x_latency_seconds", "Latency.", h)

	want := `# HELP x_requests_total Requests.\nSecond line \\ with a backslash.
# TYPE x_requests_total counter
x_requests_total 42
# HELP x_rejected_total Rejected, by reason.
# TYPE x_rejected_total counter
x_rejected_total{reason="a \"quoted\", back\\slash\nnewline ✓"} 1
x_rejected_total{reason="plain",source="rapl"} 2
# HELP x_bytes Bytes.
# TYPE x_bytes gauge
x_bytes 1.5
# HELP x_big Big.
# TYPE x_big gauge
x_big 1e+20
# HELP x_latency_seconds Latency.
# TYPE x_latency_seconds histogram
x_latency_seconds_bucket{le="0.01"} 2
x_latency_seconds_bucket{le="0.1"} 3
x_latency_seconds_bucket{le="1"} 4
x_latency_seconds_bucket{le="+Inf"} 5
x_latency_seconds_sum 3.565
x_latency_seconds_count 5
`
	if diff := cmp.Diff(want, string(w.Bytes())); diff != "" {
		t.Fatalf("exposition (-want +got):\n%s", diff)
	}
	fams, err := Parse(strings.NewReader(string(w.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	if err := Lint(fams, "x_"); err != nil {
		t.Error(err)
	}
	got := Find(fams, "x_rejected_total")
	if got == nil {
		t.Fatal("x_rejected_total missing")
	}
	if got.Help != "Rejected, by reason." {
		t.Errorf("help %q", got.Help)
	}
	if v, ok := got.Value("reason", `a "quoted", back\slash`+"\nnewline ✓"); !ok || v != 1 {
		t.Errorf("escaped label value: %v %v", v, ok)
	}
	if f := Find(fams, "x_requests_total"); f.Help != "Requests.\nSecond line \\ with a backslash." {
		t.Errorf("help round trip %q", f.Help)
	}
}

func TestAppendValue(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		v    float64
		want string
	}{
		{0, "0"},
		{-3, "-3"},
		{0.25, "0.25"},
		{math.Inf(1), "+Inf"},
		{math.Inf(-1), "-Inf"},
		{math.NaN(), "NaN"},
		{1 << 53, "9.007199254740992e+15"},
		{1<<53 - 1, "9007199254740991"},
	} {
		if got := string(AppendValue(nil, tt.v)); got != tt.want {
			t.Errorf("AppendValue(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	const head = "# HELP a_total A.\n# TYPE a_total counter\n"
	const hist = "# HELP h H.\n# TYPE h histogram\n"
	for name, in := range map[string]string{
		"no newline at end":   head + "a_total 1",
		"blank line":          head + "\na_total 1\n",
		"no TYPE":             "# HELP a_total A.\na_total 1\n",
		"TYPE first":          "# TYPE a_total counter\n# HELP a_total A.\na_total 1\n",
		"no samples":          head,
		"repeated family":     head + "a_total 1\n" + head + "a_total 1\n",
		"repeated series":     head + "a_total{x=\"1\"} 1\na_total{x=\"1\"} 2\n",
		"foreign sample":      head + "b_total 1\n",
		"bad escape":          head + "a_total{x=\"\\t\"} 1\n",
		"raw quote":           head + "a_total{x=\"a\"b\"} 1\n",
		"bad help escape":     "# HELP a_total A\\t.\n# TYPE a_total counter\na_total 1\n",
		"unknown type":        "# HELP a A.\n# TYPE a summary\na 1\n",
		"timestamp":           head + "a_total 1 1700000000000\n",
		"bad value":           head + "a_total one\n",
		"inf spelled":         head + "a_total Inf\n",
		"two spaces":          head + "a_total  1\n",
		"bad label name":      head + "a_total{1x=\"1\"} 1\n",
		"repeated label":      head + "a_total{x=\"1\",x=\"2\"} 1\n",
		"unclosed label":      head + "a_total{x=\"1\" 1\n",
		"other comment":       head + "# hello\na_total 1\n",
		"hist no inf":         hist + "h_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
		"hist not cumulative": hist + "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"hist bounds order":   hist + "h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"hist count mismatch": hist + "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
		"hist no sum":         hist + "h_bucket{le=\"+Inf\"} 1\nh_count 1\n",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%s: Parse accepted\n%s", name, in)
		}
	}
}

func TestLint(t *testing.T) {
	t.Parallel()
	fams := []Family{
		{Name: "y_requests", Help: "x", Type: Counter, Samples: []Sample{{Name: "y_requests", Value: -1}}},
	}
	err := Lint(fams, "x_")
	for _, want := range []string{"prefix", "_total", "counter value"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Lint = %v, want it to mention %q", err, want)
		}
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	h := Handler(func(w *Writer) { w.Counter("x_total", "X.", 1) })
	for range 2 { // the second reuses the pooled buffer
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if ct := rec.Header().Get("Content-Type"); ct != ContentType {
			t.Errorf("Content-Type %q", ct)
		}
		if got, want := rec.Body.String(), "# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n"; got != want {
			t.Errorf("body %q, want %q", got, want)
		}
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	h := NewHist(0.001, 0.01, 0.1, 1)
	if n := testing.AllocsPerRun(100, func() { h.Observe(0.05) }); n != 0 {
		t.Errorf("Observe allocates %v times", n)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"\\\"\"} 1\n")
	f.Add("# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n")
	f.Fuzz(func(t *testing.T, in string) {
		fams, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		// What parses writes back to something that parses the same.
		var w Writer
		for _, fam := range fams {
			w.Family(fam.Name, fam.Help, fam.Type)
			for _, s := range fam.Samples {
				var labels []string
				for k, v := range s.Labels {
					labels = append(labels, k, v)
				}
				w.Sample(s.Name, s.Value, labels...)
			}
		}
		again, err := Parse(strings.NewReader(string(w.Bytes())))
		if err != nil {
			t.Fatalf("rewritten exposition does not parse: %v\n%s", err, w.Bytes())
		}
		if diff := cmp.Diff(fams, again, cmpNaN); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

var cmpNaN = cmp.Comparer(func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) })
