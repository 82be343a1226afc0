package chart

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
	"github.com/fleetwatt/fleetwatt/collector/internal/report"
	"github.com/fleetwatt/fleetwatt/collector/internal/rollup"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// testHost is a simulated host: a linear power curve, a sinusoidal utilization, readings every
// minute at the wall (primary, from one or two PSUs) and at the CPU package (not primary).
type testHost struct {
	name, region, arch, model string
	cores, idle, peak, meanU  float64
	psus                      int
}

var testFleet = []testHost{
	{"hz-arm-1", "cn-hangzhou", "arm64", "Ampere Altra Q80-30", 80, 54, 140, 0.35, 1},
	{"hz-arm-2", "cn-hangzhou", "arm64", "Ampere Altra Q80-30", 80, 56, 150, 0.40, 1},
	{"hz-x86-1", "cn-hangzhou", "amd64", "AMD EPYC 9754", 256, 117, 660, 0.45, 2},
	{"hz-x86-2", "cn-hangzhou", "amd64", "AMD EPYC 9754", 256, 121, 674, 0.50, 1},
	{"sz-arm-1", "cn-shenzhen", "arm64", "Ampere Altra Q80-30", 80, 55, 142, 0.30, 1},
	{"sz-arm-2", "cn-shenzhen", "arm64", "Ampere Altra Q80-30", 80, 57, 146, 0.45, 1},
	{"sz-x86-1", "cn-shenzhen", "amd64", "Intel Xeon Platinum 8592+", 128, 250, 900, 0.40, 1},
	{"sz-x86-2", "cn-shenzhen", "amd64", "Intel Xeon Platinum 8592+", 128, 240, 880, 0.35, 2},
}

const testMinutes = 180

func (h testHost) at(k int) (u, watts float64) {
	u = h.meanU + 0.25*math.Sin(float64(k)/9)
	return u, h.idle + (h.peak-h.idle)*u
}

// loadFleet writes three hours of raw readings of testFleet ending at end (a whole hour) and
// rolls them up with the collector's own rollup.
func loadFleet(t *testing.T, s *influxtest.Server, end time.Time) {
	t.Helper()
	w, err := influx.New(influx.Options{URL: s.URL, Bucket: s.Bucket()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	from := end.Add(-testMinutes * time.Minute)
	var points []*write.Point
	for _, h := range testFleet {
		tags := map[string]string{
			semconv.TagHost: h.name, semconv.TagArch: h.arch, semconv.TagCPUModel: h.model,
			semconv.TagRegion: h.region, semconv.TagZone: h.region + "-a",
		}
		with := func(extra map[string]string) map[string]string {
			m := map[string]string{}
			for k, v := range tags {
				m[k] = v
			}
			for k, v := range extra {
				m[k] = v
			}
			return m
		}
		for k := range testMinutes {
			ts := from.Add(time.Duration(k)*time.Minute + 30*time.Second)
			u, p := h.at(k)
			for psu := range h.psus {
				points = append(points, write.NewPoint(semconv.MeasurementPower,
					with(map[string]string{semconv.TagScope: "wall", semconv.TagSource: "ipmi", semconv.TagSensor: fmt.Sprintf("psu-%d", psu), semconv.TagPrimary: "true"}),
					map[string]any{semconv.FieldEnergy: p / float64(h.psus) * 60, semconv.FieldInterval: 60.0}, ts))
			}
			points = append(points,
				write.NewPoint(semconv.MeasurementPower,
					with(map[string]string{semconv.TagScope: "cpu-package", semconv.TagSource: "rapl", semconv.TagSensor: "package-0", semconv.TagPrimary: "false"}),
					map[string]any{semconv.FieldEnergy: 0.6 * p * 60, semconv.FieldInterval: 60.0}, ts),
				write.NewPoint(semconv.MeasurementCPU, tags,
					map[string]any{semconv.FieldBusy: u * h.cores * 60, semconv.FieldTotal: h.cores * 60, semconv.FieldInterval: 60.0}, ts))
		}
	}
	ctx := context.Background()
	if err := w.Write(ctx, points); err != nil {
		t.Fatal(err)
	}
	roller := rollup.New(s.Client(), w, s.Bucket(), slog.New(slog.DiscardHandler))
	if _, err := roller.Rollup(ctx, from, end); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, base, path string, q url.Values) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(base + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func parseSVG(t *testing.T, body []byte) node {
	t.Helper()
	var root node
	if err := xml.Unmarshal(body, &root); err != nil {
		t.Fatalf("svg: %v\n%s", err, body)
	}
	return root
}

// TestHandler serves every chart over a real InfluxDB and checks its numbers against
// report.Run over the same range and against the readings written.
func TestHandler(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	end := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	from := end.Add(-testMinutes * time.Minute)
	loadFleet(t, s, end)
	table, err := regions.Load("")
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Querier: s.Client(), Bucket: s.Bucket(), Regions: table, Now: func() time.Time { return end }}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/charts/{file}", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	rng := url.Values{"from": {from.Format(time.RFC3339)}, "to": {end.Format(time.RFC3339)}}
	rep, err := report.Run(t.Context(), s.Client(), s.Bucket(), report.Options{From: from, To: end, Regions: table})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Comparisons) != 2 || len(rep.Groups) != 4 {
		t.Fatalf("report: %d comparisons, %d groups", len(rep.Comparisons), len(rep.Groups))
	}

	chart := func(name string, q url.Values) node {
		t.Helper()
		code, ctype, body := get(t, srv.URL, "/api/v1/charts/"+name+".svg", q)
		if code != http.StatusOK || ctype != "image/svg+xml" {
			t.Fatalf("%s: %d %s %s", name, code, ctype, body)
		}
		root := parseSVG(t, body)
		if root.attr("data-chart") != name || root.attr("data-points") == "0" {
			t.Errorf("%s: data-chart %q data-points %q", name, root.attr("data-chart"), root.attr("data-points"))
		}
		return root
	}

	t.Run("comparison and cost", func(t *testing.T) {
		for name, pick := range map[string]func(report.Comparison) *report.Delta{
			NameComparison: func(c report.Comparison) *report.Delta { return c.WPerBusyCore },
			NameCost:       func(c report.Comparison) *report.Delta { return c.USDPerBusyCoreYear },
		} {
			root := chart(name, rng)
			want := map[string]map[string]float64{}
			ci := map[string][2]float64{}
			for _, c := range rep.Comparisons {
				d := pick(c)
				want[c.Region] = map[string]float64{"ARM": d.ARM, "x86": d.X86}
				ci[c.Region+"/ARM"] = [2]float64{d.X86 * (1 + d.CI95[0]), d.X86 * (1 + d.CI95[1])}
			}
			checkBars(t, root.class("plot")[0], want, ci)
		}
	})

	t.Run("curves", func(t *testing.T) {
		root := chart(NameCurves, rng)
		byModel, err := report.Run(t.Context(), s.Client(), s.Bucket(), report.Options{From: from, To: end, By: []string{report.KeyCPUModel}, Regions: table})
		if err != nil {
			t.Fatal(err)
		}
		series := root.class("series")
		if len(series) != len(byModel.Groups) {
			t.Fatalf("%d curves, %d models", len(series), len(byModel.Groups))
		}
		for _, g := range byModel.Groups {
			found := false
			for _, s := range series {
				if !strings.HasPrefix(s.attr("data-series"), g.CPUModel+" · "+g.Scope+" (") {
					continue
				}
				found = true
				m := s.class("marker")
				if idle, peak := m[0].num(t, "data-y"), m[1].num(t, "data-y"); !near(idle, *g.IdleW, 1e-4**g.IdleW) || !near(peak, *g.PeakW, 1e-4**g.PeakW) {
					t.Errorf("%s: idle %v peak %v, the report by model says %v and %v", g.CPUModel, idle, peak, *g.IdleW, *g.PeakW)
				}
			}
			if !found {
				t.Errorf("no curve for %s", g.CPUModel)
			}
		}
	})

	t.Run("footprint", func(t *testing.T) {
		root := chart(NameFootprint, rng)
		cost := map[string]map[string]float64{}
		for _, g := range rep.Groups {
			if cost[g.Region] == nil {
				cost[g.Region] = map[string]float64{}
			}
			cost[g.Region][family(g.Arch)] += *g.CostUSD
		}
		checkBars(t, root.class("plot")[0], cost, nil)
	})

	t.Run("power", func(t *testing.T) {
		root := chart(NamePower, rng)
		p := plotOf(t, root.class("plot")[0])
		// Averaged over the range, each region's fleet power is the sum of its hosts' average
		// power: the report's Σ avg_power_w × hosts.
		want := map[string]float64{}
		for _, g := range rep.Groups {
			want[g.Region] += g.AvgPowerW * float64(g.Hosts)
		}
		series := root.class("series")
		if len(series) != 2 {
			t.Fatalf("%d regions", len(series))
		}
		for _, s := range series {
			vs := pts(t, s.class("line")[0])
			if len(s.class("line")) != 1 || len(vs) != testMinutes/2 {
				t.Errorf("%s: %d lines, %d points; want one line of 2-minute buckets", s.attr("data-series"), len(s.class("line")), len(vs))
			}
			sum := 0.0
			for _, v := range vs {
				sum += p.value(v.Y, p.yd)
			}
			if got, w := sum/float64(len(vs)), want[s.attr("data-series")]; !near(got, w, 1e-3*w) {
				t.Errorf("%s: mean fleet power %v W, the report says %v W", s.attr("data-series"), got, w)
			}
		}
		one := chart(NamePower, url.Values{"from": rng["from"], "to": rng["to"], "region": {"cn-shenzhen"}})
		if s := one.class("series"); len(s) != 1 || s[0].attr("data-series") != "cn-shenzhen" {
			t.Errorf("region=cn-shenzhen: series %+v", s)
		}
	})

	t.Run("host", func(t *testing.T) {
		host := testFleet[2] // two PSUs at the wall
		root := chart(NameHost, url.Values{"from": rng["from"], "to": rng["to"], "host": {host.name}})
		p := plotOf(t, root.class("plot")[0])
		var meanP, meanU float64
		for k := range testMinutes {
			u, w := host.at(k)
			meanP += w / testMinutes
			meanU += u / testMinutes
		}
		got := map[string]float64{}
		for _, s := range root.class("series") {
			d := p.yd
			if s.attr("data-axis") == "right" {
				d = p.y2d
			}
			vs := pts(t, s.class("line")[0])
			for _, v := range vs {
				got[s.attr("data-series")] += p.value(v.Y, d) / float64(len(vs))
			}
		}
		for name, w := range map[string]float64{"wall · ipmi (W)": meanP, "cpu-package · rapl (W)": 0.6 * meanP, "CPU utilization (%)": 100 * meanU} {
			if !near(got[name], w, 2e-3*w) {
				t.Errorf("%s: mean %v, want %v (all series: %v)", name, got[name], w, got)
			}
		}
	})

	t.Run("region filter", func(t *testing.T) {
		root := chart(NameComparison, url.Values{"since": {"3h"}, "region": {"cn-hangzhou"}})
		var cats []string
		for _, b := range root.class("bar") {
			cats = append(cats, b.attr("data-category"))
		}
		if strings.Join(cats, ",") != "cn-hangzhou,cn-hangzhou" {
			t.Errorf("bars of %v", cats)
		}
	})

	t.Run("png", func(t *testing.T) {
		for _, name := range []string{NameComparison, NamePower} {
			code, ctype, body := get(t, srv.URL, "/api/v1/charts/"+name+".png", rng)
			if code != http.StatusOK || ctype != "image/png" {
				t.Fatalf("%s.png: %d %s", name, code, ctype)
			}
			img, err := png.Decode(strings.NewReader(string(body)))
			if err != nil || img.Bounds().Dx() != 960 || img.Bounds().Dy() != 480 {
				t.Errorf("%s.png: %v %v", name, err, img.Bounds())
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tt := range []struct {
			path string
			q    url.Values
			code int
			msg  string
		}{
			{"/api/v1/charts/nope.svg", rng, http.StatusNotFound, "nope"},
			{"/api/v1/charts/comparison.gif", rng, http.StatusNotFound, "svg"},
			{"/api/v1/charts/comparison.svg", url.Values{"since": {"soon"}}, http.StatusBadRequest, "since"},
			{"/api/v1/charts/host.svg", rng, http.StatusBadRequest, "host"},
			{"/api/v1/charts/host.svg", url.Values{"host": {"no-such-host"}}, http.StatusNotFound, "no-such-host"},
		} {
			code, ctype, body := get(t, srv.URL, tt.path, tt.q)
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || code != tt.code || ctype != "application/json" || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("%s?%s: %d %s %s; want %d with %q", tt.path, tt.q.Encode(), code, ctype, body, tt.code, tt.msg)
			}
		}
		// A chart with no data in its range still draws, and says so.
		empty := url.Values{"from": {"2020-01-01T00:00:00Z"}, "to": {"2020-01-02T00:00:00Z"}}
		for _, name := range Names {
			q := empty
			if name == NameHost {
				q = url.Values{"from": empty["from"], "to": empty["to"], "host": {testFleet[0].name}}
			}
			code, _, body := get(t, srv.URL, "/api/v1/charts/"+name+".svg", q)
			if code != http.StatusOK {
				t.Fatalf("%s over an empty range: %d %s", name, code, body)
			}
			if root := parseSVG(t, body); root.attr("data-points") != "0" || !strings.Contains(string(body), "no data for this range") {
				t.Errorf("%s over an empty range: data-points %s", name, root.attr("data-points"))
			}
		}
	})

	t.Run("influxdb down", func(t *testing.T) {
		down := &Handler{Querier: &influxql.Client{URL: "http://127.0.0.1:1"}, Bucket: s.Bucket(), Regions: table}
		for _, name := range []string{NameComparison, NamePower} {
			rec := httptest.NewRecorder()
			down.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/charts/"+name+".svg", nil))
			if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), `"error"`) {
				t.Errorf("%s with InfluxDB down: %d %s", name, rec.Code, rec.Body)
			}
		}
	})
}
