package chart

import (
	"image/color"
	"math"
	"time"
)

// Lines is a line chart: series of (x, y) points over a numeric or a time axis, optionally
// some on a second y axis at the right, with markers.
type Lines struct {
	Name, Title, Subtitle, Desc string
	X, Y                        Axis
	// Y2 is the right axis of the series with Right set; nil when there are none.
	Y2       *Axis
	Series   []Line
	Footnote string
}

// Axis is an axis' label and domain.
type Axis struct {
	// Label names the axis, with its unit.
	Label string
	// Time: values are Unix seconds, ticks fall on round UTC times.
	Time bool
	// Fixed: the domain is [Min, Max]; otherwise it covers the data, from 0 with FromZero.
	Fixed    bool
	Min, Max float64
	FromZero bool
}

// Line is one series.
type Line struct {
	Name  string
	Color color.NRGBA
	Dash  bool
	// Right puts the series on the right axis (Lines.Y2).
	Right  bool
	Points []XY
	// Gap: consecutive points further apart in x break the line (missing data); 0 never.
	Gap     float64
	Markers []Marker
}

// XY is a point in data units.
type XY struct{ X, Y float64 }

// Marker is an emphasized point with a tooltip.
type Marker struct {
	X, Y  float64
	Label string
}

func (l Lines) points() int {
	n := 0
	for _, s := range l.Series {
		n += len(s.Points) + len(s.Markers)
	}
	return n
}

// domain is the range of x or y over the series (right or left ones for y).
func (l Lines) domain(ax Axis, pick func(XY) float64, want func(Line) bool) (float64, float64) {
	if ax.Fixed {
		return ax.Min, ax.Max
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range l.Series {
		if !want(s) {
			continue
		}
		for _, p := range s.Points {
			lo, hi = math.Min(lo, pick(p)), math.Max(hi, pick(p))
		}
		for _, m := range s.Markers {
			lo, hi = math.Min(lo, pick(m.XY())), math.Max(hi, pick(m.XY()))
		}
	}
	if ax.FromZero {
		lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	}
	if math.IsInf(lo, 0) {
		return 0, 1
	}
	return lo, hi
}

// XY is the marker's position.
func (m Marker) XY() XY { return XY{m.X, m.Y} }

// Drawing lays the chart out.
func (l Lines) Drawing() *Drawing {
	fr := newFrame(l.Name, l.Title, l.Subtitle, l.Desc)
	if l.points() == 0 {
		return fr.noData()
	}
	entries := make([]legendEntry, len(l.Series))
	for i, s := range l.Series {
		entries[i] = legendEntry{name: s.Name, color: s.Color, line: true, dash: s.Dash}
	}
	fr.legend(entries)
	fr.footnote(l.Footnote)

	all := func(Line) bool { return true }
	left := func(s Line) bool { return !s.Right }
	right := func(s Line) bool { return s.Right }
	xlo, xhi := l.domain(l.X, func(p XY) float64 { return p.X }, all)
	ylo, yhi := l.domain(l.Y, func(p XY) float64 { return p.Y }, left)
	yt, ystep := niceTicks(ylo, yhi, 5)
	if l.Y.Fixed {
		yt, ystep = fixedTicks(ylo, yhi)
	}
	a := plotArea{x0: pad + labelSize + 8 + fr.tickLabelWidth(yt, ystep) + 8, y0: fr.top + 8, x1: chartWidth - pad - 8}
	var y2t []float64
	var y2step float64
	if l.Y2 != nil {
		lo, hi := l.domain(*l.Y2, func(p XY) float64 { return p.Y }, right)
		y2t, y2step = niceTicks(lo, hi, 5)
		if l.Y2.Fixed {
			y2t, y2step = fixedTicks(lo, hi)
		}
		a.x1 = chartWidth - pad - labelSize - 8 - fr.tickLabelWidth(y2t, y2step) - 8
	}
	xs := linear{xlo, xhi, a.x0, a.x1}
	if l.X.Time {
		xs = linear{xlo, math.Max(xhi, xlo+1), a.x0, a.x1}
	}
	xt := xTicks(l.X, xs)
	rows := 1
	for _, t := range xt {
		rows = max(rows, len(t.lines))
	}
	a.y1 = fr.bottom - float64(rows)*14 - 22
	ys := linear{yt[0], yt[len(yt)-1], a.y1, a.y0}
	plot := Group{Meta: plotMeta(a, [2]float64{xs.d0, xs.d1}, [2]float64{ys.d0, ys.d1})}
	plot.Shapes = append(plot.Shapes, fr.yAxis(a, ys, yt, ystep, l.Y.Label, pad+labelSize, false), xAxis(l.X, xt, rows, a))
	var ys2 linear
	if l.Y2 != nil {
		ys2 = linear{y2t[0], y2t[len(y2t)-1], a.y1, a.y0}
		plot.Attrs = append(plot.Attrs, Attr{"data-y2-domain", gfmt(ys2.d0) + " " + gfmt(ys2.d1)})
		plot.Shapes = append(plot.Shapes, fr.yAxis(a, ys2, y2t, y2step, l.Y2.Label, chartWidth-pad-3, true))
	}
	for _, s := range l.Series {
		sy := ys
		axis := "left"
		if s.Right && l.Y2 != nil {
			sy, axis = ys2, "right"
		}
		plot.Shapes = append(plot.Shapes, fr.series(s, xs, sy, axis))
	}
	fr.add(plot)
	return fr.d
}

// fixedTicks puts about five ticks on a fixed domain.
func fixedTicks(lo, hi float64) ([]float64, float64) {
	t, step := niceTicks(lo, hi, 5)
	var in []float64
	for _, v := range t {
		if v >= lo-1e-9 && v <= hi+1e-9 {
			in = append(in, v)
		}
	}
	if len(in) == 0 || in[0] != lo {
		in = append([]float64{lo}, in...)
	}
	if in[len(in)-1] != hi {
		in = append(in, hi)
	}
	return in, step
}

// series draws one line, broken at gaps, and its markers.
func (fr *frame) series(s Line, xs, ys linear, axis string) Group {
	g := Group{Meta: Meta{Class: "series", Attrs: []Attr{{"data-series", s.Name}, {"data-axis", axis}}}}
	st := Style{Stroke: s.Color, Width: 2}
	if s.Dash {
		st.Dash = []float64{6, 4}
	}
	var run []Pt
	flush := func() {
		switch len(run) {
		case 0:
		case 1:
			g.Shapes = append(g.Shapes, Circle{
				X: run[0].X, Y: run[0].Y, R: 2, Style: Style{Fill: s.Color},
				Meta: Meta{Class: "line", Tip: s.Name},
			})
		default:
			g.Shapes = append(g.Shapes, Poly{Points: run, Style: st, Meta: Meta{Class: "line", Tip: s.Name}})
		}
		fr.d.Points += len(run)
		run = nil
	}
	for i, p := range s.Points {
		if i > 0 && s.Gap > 0 && p.X-s.Points[i-1].X > s.Gap {
			flush()
		}
		run = append(run, Pt{xs.at(p.X), ys.at(p.Y)})
	}
	flush()
	for _, m := range s.Markers {
		g.Shapes = append(g.Shapes, Circle{
			X: xs.at(m.X), Y: ys.at(m.Y), R: 4.5,
			Style: Style{Fill: white, Stroke: s.Color, Width: 2},
			Meta:  Meta{Class: "mark marker", Tip: m.Label, Attrs: []Attr{{"data-x", gfmt(m.X)}, {"data-y", gfmt(m.Y)}}},
		})
		fr.d.Points++
	}
	return g
}

// xTick is a tick of the x axis: its position, the lines of its label, its value.
type xTick struct {
	x     float64
	lines []string
	value string
}

// xTicks places the x axis' ticks: on round UTC times for a time axis.
func xTicks(ax Axis, xs linear) []xTick {
	var out []xTick
	if ax.Time {
		from, to := time.Unix(int64(xs.d0), 0).UTC(), time.Unix(int64(math.Ceil(xs.d1)), 0).UTC()
		ticks, step := timeTicks(from, to, 8)
		for i, t := range ticks {
			out = append(out, xTick{xs.at(float64(t.Unix())), timeLabel(t, step, i == 0), t.Format(time.RFC3339)})
		}
		return out
	}
	ticks, step := niceTicks(xs.d0, xs.d1, 10)
	for _, t := range ticks {
		if t >= xs.d0-1e-9 && t <= xs.d1+1e-9 {
			out = append(out, xTick{xs.at(t), []string{formatTick(t, step)}, gfmt(t)})
		}
	}
	return out
}

// xAxis draws the x axis below the plot: its line, the ticks, their labels (rows lines
// deep) and the axis label.
func xAxis(ax Axis, ticks []xTick, rows int, a plotArea) Group {
	g := Group{Meta: Meta{Class: "x-axis"}}
	for _, t := range ticks {
		g.Shapes = append(g.Shapes, Poly{Points: []Pt{{t.x, a.y1}, {t.x, a.y1 + 4}}, Style: Style{Stroke: grey, Width: 1}})
		for i, s := range t.lines {
			g.Shapes = append(g.Shapes, Text{
				X: t.x, Y: a.y1 + 16 + float64(i)*13, S: s, Size: tickSize, Anchor: Middle, Color: grey,
				Meta: Meta{Class: "tick", Attrs: []Attr{{"data-value", t.value}}},
			})
		}
	}
	g.Shapes = append(g.Shapes, Poly{Points: []Pt{{a.x0, a.y1}, {a.x1, a.y1}}, Style: Style{Stroke: grey, Width: 1}})
	if ax.Label != "" {
		g.Shapes = append(g.Shapes, Text{
			X: (a.x0 + a.x1) / 2, Y: a.y1 + 16 + float64(rows)*13 + 6, S: ax.Label,
			Size: labelSize, Anchor: Middle, Color: black, Meta: Meta{Class: "axis-label"},
		})
	}
	return g
}
