package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"html"
	"image/png"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/chart"
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
			pt := map[string]string{"scope": "wall", "source": "ipmi", "sensor": "psu", "primary": "true"}
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

// svgMarks is a parsed chart: its root's attributes and every element's.
type svgMarks struct {
	root  map[string]string
	elems []map[string]string
}

func parseChart(t *testing.T, b []byte) svgMarks {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	var m svgMarks
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("svg: %v\n%s", err, b)
		}
		if se, ok := tok.(xml.StartElement); ok {
			attrs := map[string]string{"<": se.Name.Local}
			for _, a := range se.Attr {
				attrs[a.Name.Local] = a.Value
			}
			if m.root == nil {
				m.root = attrs
			}
			m.elems = append(m.elems, attrs)
		}
	}
	return m
}

// bars maps "category/series" to the data-value of each bar.
func (m svgMarks) bars() map[string]string {
	out := map[string]string{}
	for _, e := range m.elems {
		if slices.Contains(strings.Fields(e["class"]), "bar") {
			out[e["data-category"]+"/"+e["data-series"]] = e["data-value"]
		}
	}
	return out
}

// TestReportShareable: the report command's html, svg and png formats, over the same data as
// its json, agree with it.
func TestReportShareable(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	end := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	writeFleet(t, s, end)
	influxArgs := []string{"--influx-url", s.URL, "--influx-bucket", s.Bucket()}
	run := func(args ...string) (int, []byte, string) {
		var stdout, stderr bytes.Buffer
		code := cli(t.Context(), append(args, influxArgs...), &stdout, &stderr)
		return code, stdout.Bytes(), stderr.String()
	}
	from := end.Add(-3 * time.Hour).Format(time.RFC3339)
	to := end.Add(time.Hour).Format(time.RFC3339)
	if code, out, errOut := run("rollup", "--from", from, "--to", to); code != 0 {
		t.Fatalf("rollup: %d %s %s", code, out, errOut)
	}
	rng := []string{"--from", from, "--to", to}
	code, out, errOut := run(append([]string{"report", "--format", "json"}, rng...)...)
	if code != 0 {
		t.Fatalf("report json: %d %s", code, errOut)
	}
	var rep report.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Comparisons) != 1 || rep.Comparisons[0].USDPerBusyCoreYear == nil {
		t.Fatalf("comparisons %+v", rep.Comparisons)
	}
	c := rep.Comparisons[0]

	t.Run("html", func(t *testing.T) {
		code, out, errOut := run(append([]string{"report", "--format", "html"}, rng...)...)
		if code != 0 {
			t.Fatalf("report html: %d %s", code, errOut)
		}
		page := string(out)
		if m := regexp.MustCompile(`(?i)(src|href)\s*=|<script|<link|url\(|https?://`).FindAllString(page, -1); len(m) > 0 {
			t.Errorf("not self-contained: %q", m)
		}
		// The headline, from the same numbers as the JSON.
		head := strings.TrimPrefix(chart.Headline(c), c.Region+": ")
		if !strings.Contains(page, `<strong>`+c.Region+`</strong>: `+html.EscapeString(head)) {
			t.Errorf("no headline %q in\n%s", head, page)
		}
		d := c.USDPerBusyCoreYear
		for _, want := range []string{
			"$" + strconv.FormatFloat(d.ARM, 'f', 2, 64), "$" + strconv.FormatFloat(d.X86, 'f', 2, 64),
			strconv.FormatFloat(math.Abs(100*d.RelDiff), 'f', 0, 64) + " % less per busy core",
		} {
			if !strings.Contains(head, want) {
				t.Errorf("headline %q lacks %q (json: %+v)", head, want, *d)
			}
		}
		for _, svg := range regexp.MustCompile(`(?s)<svg .*?</svg>`).FindAllString(page, -1) {
			m := parseChart(t, []byte(svg))
			if m.root["data-chart"] == chart.NameComparison {
				want := map[string]string{
					c.Region + "/ARM": strconv.FormatFloat(c.WPerBusyCore.ARM, 'g', -1, 64),
					c.Region + "/x86": strconv.FormatFloat(c.WPerBusyCore.X86, 'g', -1, 64),
				}
				if got := m.bars(); !mapsEqual(got, want) {
					t.Errorf("inline comparison bars %v, json %v", got, want)
				}
			}
		}
	})

	t.Run("svg", func(t *testing.T) {
		code, out, errOut := run(append([]string{"report", "--format", "svg", "--chart", "cost"}, rng...)...)
		if code != 0 {
			t.Fatalf("svg: %d %s", code, errOut)
		}
		m := parseChart(t, out)
		want := map[string]string{
			c.Region + "/ARM": strconv.FormatFloat(c.USDPerBusyCoreYear.ARM, 'g', -1, 64),
			c.Region + "/x86": strconv.FormatFloat(c.USDPerBusyCoreYear.X86, 'g', -1, 64),
		}
		if m.root["data-chart"] != "cost" || m.root["data-points"] != "2" || !mapsEqual(m.bars(), want) {
			t.Errorf("cost chart %v bars %v, want %v", m.root, m.bars(), want)
		}
		code, out, errOut = run(append([]string{"report", "--format", "svg", "--chart", "host", "--host", "x86-1"}, rng...)...)
		if m := parseChart(t, out); code != 0 || m.root["data-chart"] != "host" || m.root["data-points"] == "0" {
			t.Errorf("host chart: %d %s %v", code, errOut, m.root)
		}
	})

	t.Run("png", func(t *testing.T) {
		code, out, errOut := run(append([]string{"report", "--format", "png", "--chart", "curves"}, rng...)...)
		if code != 0 {
			t.Fatalf("png: %d %s", code, errOut)
		}
		img, err := png.Decode(bytes.NewReader(out))
		if err != nil || img.Bounds().Dx() != 960 || img.Bounds().Dy() != 480 {
			t.Errorf("png: %v", err)
		}
	})

	t.Run("out", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "charts")
		code, out, errOut := run(append([]string{"report", "--format", "svg", "--out", dir}, rng...)...)
		if code != 0 {
			t.Fatalf("--out: %d %s", code, errOut)
		}
		var listed []string
		for _, name := range []string{"comparison", "cost", "curves", "footprint", "power"} {
			path := filepath.Join(dir, name+".svg")
			listed = append(listed, path)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if m := parseChart(t, b); m.root["data-chart"] != name || m.root["data-points"] == "0" {
				t.Errorf("%s: %v", path, m.root)
			}
		}
		if got := strings.Fields(string(out)); !slices.Equal(got, listed) {
			t.Errorf("listed %q, want %q", got, listed)
		}
	})

	for _, args := range [][]string{
		{"report", "--chart", "cost"},
		{"report", "--format", "html", "--out", t.TempDir()},
		{"report", "--format", "svg", "--chart", "nope"},
		{"report", "--format", "svg", "--chart", "host"},
		{"report", "--format", "png", "--host", "x86-1"},
		{"report", "--format", "png", "--chart", "cost", "--out", t.TempDir()},
		{"report", "--format", "svg", "--chart", "host", "--host", "no-such-host"},
		{"report", "--format", "pdf"},
	} {
		if code, _, errOut := run(args...); code != 2 || errOut == "" {
			t.Errorf("%v: code %d, stderr %q; want 2 with a message", args, code, errOut)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
