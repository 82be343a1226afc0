package influx

import (
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
)

// libraryEncoding returns the body influxdb-client-go's WriteAPIBlocking.WritePoint sends for
// points (gzip off, ms precision), or its error.
func libraryEncoding(t *testing.T, points ...*write.Point) (string, error) {
	t.Helper()
	var mu sync.Mutex
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = string(b)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := influxdb2.NewClientWithOptions(srv.URL, "", influxdb2.DefaultOptions().SetPrecision(time.Millisecond).SetLogLevel(0))
	defer c.Close()
	err := c.WriteAPIBlocking("", "db").WritePoint(t.Context(), points...)
	mu.Lock()
	defer mu.Unlock()
	return got, err
}

func point(name string, tags []string, fields ...any) *write.Point {
	p := write.NewPointWithMeasurement(name)
	for i := 0; i+1 < len(tags); i += 2 {
		p.AddTag(tags[i], tags[i+1])
	}
	for i := 0; i+1 < len(fields); i += 2 {
		p.AddField(fields[i].(string), fields[i+1])
	}
	return p.SetTime(t0)
}

// TestAppendPointAsTheLibrary: the Writer sends the bytes WriteAPIBlocking would have sent.
func TestAppendPointAsTheLibrary(t *testing.T) {
	t.Parallel()
	tests := map[string]*write.Point{
		"fleetwatt power": point("power", []string{"host", "web-1", "region", "cn-hangzhou", "scope", "wall"},
			"energy_j", 2591.529559, "interval_s", 10.0, "power_w", 259.1529559),
		"every type": point("host", []string{"host", "h"},
			"agent_version", "0.3.0", "cores", int64(-128), "big", uint64(math.MaxUint64), "virtual", false, "ok", true),
		"float forms": point("m", nil, "tiny", 1e-300, "huge", 1.7976931348623157e308, "ops", 1.1844444132292974e+06,
			"zero", 0.0, "neg", -0.5, "int", 2560.0),
		"escaped measurement": point("a b,c=d\te\nf\fg\rh\\i\"j", []string{"k", "v"}, "f", 1.0),
		"escaped tags": point("m", []string{"k ,=\t\n\f\r\\\"", "v ,=\t\n\f\r\\\"", "cpu model", "AMD EPYC 7763 64-Core Processor"},
			"f", 1.0),
		"escaped field key":  point("m", []string{"k", "v"}, "a b,c=d\te", 1.0),
		"escaped string":     point("m", []string{"k", "v"}, "s", "say \"hi\"\\ a,b c=d\te\nf\fg\rh"),
		"empty tags skipped": point("m", []string{"", "v", "k", "", "x", "y"}, "f", 1.0),
		"no tags":            point("m", nil, "f", 1.0),
		"utf-8":              point("température", []string{"lieu", "Zürich ☃"}, "wert", "über, ja"),
		"no time":            write.NewPointWithMeasurement("m").AddField("f", 1.0),
		"before 1970":        point("m", nil, "f", 1.0).SetTime(time.Date(1969, 12, 31, 23, 59, 59, 999_500_000, time.UTC)),
		"field order kept":   point("m", nil, "z", 1.0, "a", 2.0),
	}
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, err := libraryEncoding(t, p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := AppendPoint(nil, p)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Errorf("AppendPoint = %q\nlibrary     %q", got, want)
			}
		})
	}
	t.Run("several", func(t *testing.T) {
		t.Parallel()
		var points []*write.Point
		for _, p := range tests {
			points = append(points, p)
		}
		want, err := libraryEncoding(t, points...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendPoints([]byte("kept"), points)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "kept"+want {
			t.Errorf("appendPoints = %q\nlibrary       %q", got, "kept"+want)
		}
	})
}

// TestAppendPointRefuses: what InfluxDB cannot store is an error, as it is for the library,
// and nothing is appended.
func TestAppendPointRefuses(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		p       *write.Point
		want    error
		library bool // the library refuses it too
	}{
		"no measurement":     {point("", nil, "f", 1.0), ErrNoMeasurement, true},
		"no fields":          {point("m", []string{"k", "v"}), ErrNoFields, true},
		"NaN":                {point("m", nil, "ok", 1.0, "f", math.NaN()), ErrNotFinite, true},
		"+Inf":               {point("m", nil, "f", math.Inf(1)), ErrNotFinite, true},
		"-Inf":               {point("m", nil, "f", math.Inf(-1)), ErrNotFinite, true},
		"empty field key":    {point("m", nil, "", 1.0), ErrFieldKey, true},
		"trailing backslash": {point("m", nil, `f\`, 1.0), ErrFieldKey, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := AppendPoint([]byte("kept"), tt.p)
			if !errors.Is(err, tt.want) {
				t.Errorf("AppendPoint error = %v, want %v", err, tt.want)
			}
			if string(got) != "kept" {
				t.Errorf("AppendPoint appended %q", strings.TrimPrefix(string(got), "kept"))
			}
			if _, err := libraryEncoding(t, tt.p); (err != nil) != tt.library {
				t.Errorf("library error = %v, want an error: %v", err, tt.library)
			}
		})
	}
}
