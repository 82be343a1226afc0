package chart

import (
	"strconv"
	"strings"
	"testing"

	"github.com/fleetwatt/fleetwatt/collector/internal/report"
)

// checkTicks checks that every y tick label sits where the plot's scale puts its value.
func checkTicks(t *testing.T, g node, p plot) {
	t.Helper()
	axes := g.class("y-axis")
	if len(axes) == 0 {
		t.Fatal("no y axis")
	}
	for _, tick := range axes[0].class("tick") {
		v := tick.num(t, "data-value")
		if want := p.y1 - (v-p.yd[0])/(p.yd[1]-p.yd[0])*(p.y1-p.y0); !near(tick.num(t, "y")-4, want, 0.02) {
			t.Errorf("tick %s at y %v, want %v", tick.Text, tick.num(t, "y")-4, want)
		}
	}
}

// checkBars checks each bar against want[category][series]: its data-value, its height
// proportional to the value, its base on zero; and the whiskers against the intervals.
func checkBars(t *testing.T, plotNode node, want map[string]map[string]float64, ci map[string][2]float64) int {
	t.Helper()
	p := plotOf(t, plotNode)
	checkTicks(t, plotNode, p)
	tol := (p.yd[1] - p.yd[0]) / (p.y1 - p.y0) * 0.02 // a hundredth of a unit, twice
	bars := plotNode.class("bar")
	for _, b := range bars {
		cat, ser := b.attr("data-category"), b.attr("data-series")
		w, ok := want[cat][ser]
		if !ok {
			t.Errorf("unexpected bar %s/%s", cat, ser)
			continue
		}
		if got := b.num(t, "data-value"); got != w {
			t.Errorf("%s/%s data-value %v, want %v", cat, ser, got, w)
		}
		top, h := b.num(t, "y"), b.num(t, "height")
		if !near(p.value(top, p.yd), w, tol) || !near(h/(p.y1-p.y0)*(p.yd[1]-p.yd[0]), w, tol) || !near(top+h, p.y1-(0-p.yd[0])/(p.yd[1]-p.yd[0])*(p.y1-p.y0), 0.02) {
			t.Errorf("%s/%s: bar top %v height %v does not draw %v on [%v, %v]", cat, ser, top, h, w, p.yd[0], p.yd[1])
		}
		if !strings.Contains(b.title(), cat) || !strings.Contains(b.title(), ser) {
			t.Errorf("%s/%s tooltip %q", cat, ser, b.title())
		}
	}
	n := 0
	for _, m := range want {
		n += len(m)
	}
	if len(bars) != n {
		t.Errorf("%d bars, want %d", len(bars), n)
	}
	whiskers := plotNode.class("ci")
	if len(whiskers) != len(ci) {
		t.Errorf("%d whiskers, want %d", len(whiskers), len(ci))
	}
	for _, wk := range whiskers {
		key := wk.attr("data-category") + "/" + wk.attr("data-series")
		w, ok := ci[key]
		if !ok {
			t.Errorf("unexpected whisker %s", key)
			continue
		}
		if lo, hi := wk.num(t, "data-lo"), wk.num(t, "data-hi"); !near(lo, w[0], 1e-9) || !near(hi, w[1], 1e-9) {
			t.Errorf("whisker %s data [%v, %v], want %v", key, lo, hi, w)
		}
		line := wk.class("whisker")[0]
		ends := pts(t, line)
		if !near(p.value(ends[0].Y, p.yd), w[0], tol) || !near(p.value(ends[1].Y, p.yd), w[1], tol) {
			t.Errorf("whisker %s drawn from %v to %v, want %v", key, p.value(ends[0].Y, p.yd), p.value(ends[1].Y, p.yd), w)
		}
	}
	return len(bars)
}

func TestComparisonAndCost(t *testing.T) {
	t.Parallel()
	rep := testReport()
	for _, tt := range []struct {
		name string
		d    *Drawing
		pick func(report.Comparison) *report.Delta
	}{
		{NameComparison, Comparison(rep), func(c report.Comparison) *report.Delta { return c.WPerBusyCore }},
		{NameCost, Cost(rep), func(c report.Comparison) *report.Delta { return c.USDPerBusyCoreYear }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root, _ := render(t, tt.d)
			want := map[string]map[string]float64{}
			ci := map[string][2]float64{}
			for _, c := range rep.Comparisons {
				d := tt.pick(c)
				if d == nil {
					continue
				}
				want[c.Region] = map[string]float64{"ARM": d.ARM, "x86": d.X86}
				// The ARM bar's whisker: the interval of ARM relative to x86, in the metric's units.
				ci[c.Region+"/ARM"] = [2]float64{d.X86 * (1 + d.CI95[0]), d.X86 * (1 + d.CI95[1])}
			}
			if len(want) != 2 {
				t.Fatalf("fixture: %d comparisons with the metric", len(want))
			}
			plots := root.class("plot")
			if len(plots) != 1 {
				t.Fatalf("%d plots", len(plots))
			}
			n := checkBars(t, plots[0], want, ci)
			if root.attr("data-chart") != tt.name || root.attr("data-points") != strconv.Itoa(n) || n != 4 {
				t.Errorf("data-chart %q data-points %q, want %s and %d", root.attr("data-chart"), root.attr("data-points"), tt.name, n)
			}
			if vb := root.attr("viewBox"); vb != "0 0 960 480" || root.attr("width") != "100%" || root.attr("height") != "" {
				t.Errorf("viewBox %q width %q height %q", vb, root.attr("width"), root.attr("height"))
			}
			// Accessible: a title and a description naming every region's numbers.
			desc := root.tag("desc")[0].Text
			for _, want := range []string{"cn-hangzhou", "cn-shenzhen", "−41 %"} {
				if !strings.Contains(desc, want) {
					t.Errorf("desc %q lacks %q", desc, want)
				}
			}
			if root.tag("title")[0].Text != tt.d.Title || root.attr("aria-labelledby") == "" || root.attr("role") != "img" {
				t.Errorf("title %q, aria %q", root.tag("title")[0].Text, root.attr("aria-labelledby"))
			}
			if labels := root.class("axis-label"); len(labels) != 1 || !strings.Contains(labels[0].Text, "per busy core") {
				t.Errorf("y axis label %+v, want the metric with its unit", labels)
			}
		})
	}
}

func TestCurves(t *testing.T) {
	t.Parallel()
	rep := testReport()
	root, _ := render(t, Curves(rep))
	p := plotOf(t, root.class("plot")[0])
	checkTicks(t, root.class("plot")[0], p)
	if p.xd[0] != 0 || p.xd[1] != 100 {
		t.Fatalf("x domain %v, want 0..100 %%", p.xd)
	}
	// The fixture's fitted groups by CPU model and scope, weighted by fitted hosts:
	// AMD EPYC 9754 at the wall is 4 hosts in cn-hangzhou and 2 in cn-shenzhen.
	want := map[string][3]float64{ // idle, p50, peak
		"Ampere Altra Q80-30 · wall (8 hosts)":       {(2*55 + 6*57) / 8.0, (2*98.5 + 6*101) / 8.0, (2*142 + 6*146) / 8.0},
		"AMD EPYC 9754 · wall (6 hosts)":             {(4*119 + 2*121) / 6.0, (4*375 + 2*380) / 6.0, (4*667 + 2*660) / 6.0},
		"AMD EPYC 9754 · cpu-package (1 host)":       {80, 250, 420},
		"Intel Xeon Platinum 8592+ · wall (3 hosts)": {250, 580, 900},
	}
	series := root.class("series")
	if len(series) != len(want) {
		t.Fatalf("%d series, want %d", len(series), len(want))
	}
	tol := (p.yd[1] - p.yd[0]) / (p.y1 - p.y0) * 0.02
	points := 0
	for _, s := range series {
		name := s.attr("data-series")
		w, ok := want[name]
		if !ok {
			t.Errorf("unexpected series %q", name)
			continue
		}
		c0, c1, c2 := Quadratic(w[0], w[1], w[2])
		line := s.class("line")
		if len(line) != 1 {
			t.Fatalf("%s: %d lines", name, len(line))
		}
		vs := pts(t, line[0])
		if len(vs) != curveSteps+1 {
			t.Errorf("%s: %d points", name, len(vs))
		}
		for _, v := range vs {
			u := p.xValue(v.X) / 100
			if got, want := p.value(v.Y, p.yd), c0+c1*u+c2*u*u; !near(got, want, tol) {
				t.Errorf("%s at u=%.3f: %v W, want C0+C1u+C2u² = %v", name, u, got, want)
			}
		}
		// The curve goes through the groups' idle, p50 and peak.
		for i, u := range []int{0, curveSteps / 2, curveSteps} {
			if got := p.value(vs[u].Y, p.yd); !near(got, w[i], tol) {
				t.Errorf("%s: point %d is %v W, want %v", name, u, got, w[i])
			}
		}
		markers := s.class("marker")
		if len(markers) != 2 || markers[0].num(t, "data-x") != 0 || !near(markers[0].num(t, "data-y"), w[0], 1e-9) ||
			markers[1].num(t, "data-x") != 100 || !near(markers[1].num(t, "data-y"), w[2], 1e-9) {
			t.Errorf("%s: markers %+v, want idle %v at 0 and peak %v at 100", name, markers, w[0], w[2])
		}
		for _, m := range markers {
			if !near(p.value(m.num(t, "cy"), p.yd), m.num(t, "data-y"), tol) {
				t.Errorf("%s: marker drawn at %v W, says %v", name, p.value(m.num(t, "cy"), p.yd), m.num(t, "data-y"))
			}
		}
		x86 := strings.Contains(name, "AMD") || strings.Contains(name, "Intel")
		if dashed := s.class("line")[0].attr("stroke-dasharray") != ""; dashed != x86 {
			t.Errorf("%s: dashed %v; want x86 dashed, ARM solid", name, dashed)
		}
		points += len(vs) + len(markers)
	}
	if root.attr("data-points") != strconv.Itoa(points) {
		t.Errorf("data-points %s, want %d", root.attr("data-points"), points)
	}
}

func TestQuadratic(t *testing.T) {
	t.Parallel()
	for _, c := range [][3]float64{{55, 86, 0}, {119, 620, -72}, {100, 0, 0}, {30.5, 12.25, 40}} {
		at := func(u float64) float64 { return c[0] + c[1]*u + c[2]*u*u }
		c0, c1, c2 := Quadratic(at(0), at(0.5), at(1))
		if !near(c0, c[0], 1e-9) || !near(c1, c[1], 1e-9) || !near(c2, c[2], 1e-9) {
			t.Errorf("Quadratic of %v: %v %v %v", c, c0, c1, c2)
		}
	}
}

func TestFootprint(t *testing.T) {
	t.Parallel()
	root, _ := render(t, Footprint(testReport()))
	plots := root.class("plot")
	if len(plots) != 2 {
		t.Fatalf("%d panels, want cost and carbon", len(plots))
	}
	// Sums of the groups per region and architecture; mars-north-1 has no factors.
	cost := map[string]map[string]float64{
		"cn-beijing":  {"x86": 120.5},
		"cn-hangzhou": {"ARM": 40.75, "x86": 210.25},
		"cn-shenzhen": {"ARM": 95, "x86": 130 + 30},
	}
	carbon := map[string]map[string]float64{
		"cn-beijing":  {"x86": 910},
		"cn-hangzhou": {"ARM": 255, "x86": 1320},
		"cn-shenzhen": {"ARM": 610, "x86": 800 + 190},
	}
	n := checkBars(t, plots[0], cost, nil) + checkBars(t, plots[1], carbon, nil)
	if root.attr("data-points") != strconv.Itoa(n) || n != 10 {
		t.Errorf("data-points %s, %d bars", root.attr("data-points"), n)
	}
	if foot := root.class("footnote")[0].Text; !strings.Contains(foot, "mars-north-1") {
		t.Errorf("footnote %q does not name the region without factors", foot)
	}
	var cats []string
	for _, c := range plots[0].class("category-label") {
		cats = append(cats, c.Text)
	}
	if strings.Join(cats, ",") != "cn-beijing,cn-hangzhou,cn-shenzhen" {
		t.Errorf("categories %v", cats)
	}
}

func TestNoData(t *testing.T) {
	t.Parallel()
	empty := &report.Report{From: testReport().From, To: testReport().To}
	for _, d := range []*Drawing{
		Comparison(empty), Cost(empty), Curves(empty), Footprint(empty),
		Power(nil, 0, empty.From, empty.To, ""), Host("h1", HostSeries{}, empty.From, empty.To),
	} {
		root, _ := render(t, d)
		if root.attr("data-points") != "0" || len(root.class("no-data")) != 1 ||
			root.class("no-data")[0].Text != "no data for this range" || len(root.class("plot")) != 0 {
			t.Errorf("%s: data-points %q, texts %q", d.Name, root.attr("data-points"), root.texts())
		}
		if root.attr("data-chart") != d.Name || d.Name == "" {
			t.Errorf("data-chart %q", root.attr("data-chart"))
		}
	}
}

// TestNoComparisonMetric: a report whose comparisons lack a metric draws no bar for it.
func TestNoComparisonMetric(t *testing.T) {
	t.Parallel()
	rep := testReport()
	for i := range rep.Comparisons {
		rep.Comparisons[i].USDPerBusyCoreYear = nil
	}
	root, _ := render(t, Cost(rep))
	if root.attr("data-points") != "0" {
		t.Errorf("cost without prices: data-points %s", root.attr("data-points"))
	}
}
