package chart

import (
	"strconv"
	"testing"
	"time"
)

func TestPowerChart(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(6 * time.Hour)
	step := 10 * time.Minute
	var series []TimeSeries
	for i, region := range []string{"cn-hangzhou", "cn-shenzhen"} {
		s := TimeSeries{Name: region}
		for k := range 36 {
			if i == 0 && k >= 10 && k < 13 { // three buckets missing: the line breaks
				continue
			}
			s.Points = append(s.Points, TimePoint{from.Add(time.Duration(k) * step), 1000*float64(i+1) + 10*float64(k)})
		}
		series = append(series, s)
	}
	root, _ := render(t, Power(series, step, from, to, ""))
	g := root.class("plot")[0]
	p := plotOf(t, g)
	checkTicks(t, g, p)
	if p.xd[0] != float64(from.Unix()) || p.xd[1] != float64(to.Unix()) {
		t.Errorf("x domain %v, want the range", p.xd)
	}
	tol := (p.yd[1] - p.yd[0]) / (p.y1 - p.y0) * 0.02
	total := 0
	for i, s := range root.class("series") {
		if s.attr("data-series") != series[i].Name {
			t.Errorf("series %d is %q", i, s.attr("data-series"))
		}
		var drawn []Pt
		lines := s.class("line")
		for _, l := range lines {
			drawn = append(drawn, pts(t, l)...)
		}
		if wantRuns := 1 + (1 - i); len(lines) != wantRuns {
			t.Errorf("%s: %d runs, want %d", series[i].Name, len(lines), wantRuns)
		}
		if len(drawn) != len(series[i].Points) {
			t.Fatalf("%s: %d points drawn, want %d", series[i].Name, len(drawn), len(series[i].Points))
		}
		for k, d := range drawn {
			want := series[i].Points[k]
			if got := p.xValue(d.X); !near(got, float64(want.T.Unix()), 20) {
				t.Errorf("%s point %d at %v, want %v", series[i].Name, k, time.Unix(int64(got), 0).UTC(), want.T)
			}
			if got := p.value(d.Y, p.yd); !near(got, want.V, tol) {
				t.Errorf("%s point %d: %v W, want %v", series[i].Name, k, got, want.V)
			}
		}
		total += len(drawn)
	}
	if root.attr("data-points") != strconv.Itoa(total) {
		t.Errorf("data-points %s, want %d", root.attr("data-points"), total)
	}
	// Time ticks every hour on the hour, the first with its date.
	var labels []string
	for _, tk := range g.class("x-axis")[0].class("tick") {
		labels = append(labels, tk.Text)
	}
	want := []string{"00:00", "Sep 1", "01:00", "02:00", "03:00", "04:00", "05:00", "06:00"}
	if len(labels) != len(want) {
		t.Fatalf("x tick labels %q, want %q", labels, want)
	}
	for i := range want {
		if labels[i] != want[i] {
			t.Errorf("x tick labels %q, want %q", labels, want)
			break
		}
	}
}

func TestHostChart(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(2 * time.Hour)
	hs := HostSeries{Step: 10 * time.Minute, Util: TimeSeries{Name: "CPU utilization"}}
	for _, s := range []string{"wall · ipmi", "cpu-package · rapl"} {
		ts := TimeSeries{Name: s}
		for k := range 12 {
			ts.Points = append(ts.Points, TimePoint{from.Add(time.Duration(k) * hs.Step), 300 + float64(k)})
		}
		hs.Power = append(hs.Power, ts)
	}
	for k := range 12 {
		hs.Util.Points = append(hs.Util.Points, TimePoint{from.Add(time.Duration(k) * hs.Step), 0.05 * float64(k)})
	}
	root, _ := render(t, Host("hz-a1", hs, from, to))
	g := root.class("plot")[0]
	p := plotOf(t, g)
	if len(p.y2d) != 2 || p.y2d[0] != 0 || p.y2d[1] != 100 {
		t.Fatalf("right axis %v, want utilization 0..100 %%", p.y2d)
	}
	series := root.class("series")
	if len(series) != 3 || series[2].attr("data-axis") != "right" || series[0].attr("data-series") != "wall · ipmi (W)" {
		t.Fatalf("series %+v", series)
	}
	tol := 100 / (p.y1 - p.y0) * 0.02
	for k, d := range pts(t, series[2].class("line")[0]) {
		if got := p.value(d.Y, p.y2d); !near(got, 100*0.05*float64(k), tol) {
			t.Errorf("utilization point %d: %v %%, want %v", k, got, 5*k)
		}
	}
	if root.attr("data-points") != "36" {
		t.Errorf("data-points %s, want 36", root.attr("data-points"))
	}
}
