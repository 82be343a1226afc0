package chart

import (
	"image/color"
	"strconv"
)

// The charts' size, user units (pixels of the PNG). The SVG scales to its container.
const (
	chartWidth  = 960
	chartHeight = 480
	pad         = 16 // outer margin
)

// Font sizes.
const (
	titleSize = 18
	subSize   = 12
	labelSize = 12
	tickSize  = 11
)

// frame lays out what every chart has: background, title, subtitle, legend, footnote; it
// leaves the area between for the plot.
type frame struct {
	d      *Drawing
	f      *fonts
	top    float64 // first free y below the header and legend
	bottom float64 // last free y above the footnote
}

func newFrame(name, title, subtitle, desc string) *frame {
	fr := &frame{
		d: &Drawing{Name: name, Title: title, Desc: desc, Width: chartWidth, Height: chartHeight},
		f: newFonts(),
	}
	fr.add(Rect{W: chartWidth, H: chartHeight, Style: Style{Fill: white}, Meta: Meta{Class: "background"}})
	fr.text(pad, pad+titleSize, fr.f.fit(title, chartWidth-2*pad, titleSize, true), titleSize, Start, black, true, "title")
	fr.top = pad + titleSize + 6
	if subtitle != "" {
		fr.text(pad, fr.top+subSize, fr.f.fit(subtitle, chartWidth-2*pad, subSize, false), subSize, Start, grey, false, "subtitle")
		fr.top += subSize + 6
	}
	fr.top += 6
	fr.bottom = chartHeight - pad
	return fr
}

func (fr *frame) add(s ...Shape) { fr.d.Shapes = append(fr.d.Shapes, s...) }

func (fr *frame) text(x, y float64, s string, size float64, a Anchor, c color.NRGBA, bold bool, class string) {
	fr.add(Text{X: x, Y: y, S: s, Size: size, Anchor: a, Color: c, Bold: bold, Meta: Meta{Class: class}})
}

// legendEntry is one key of the legend: a swatch (bars), a line (Line), dashed or not.
type legendEntry struct {
	name  string
	color color.NRGBA
	line  bool
	dash  bool
}

// legend lays the keys out in rows below the header.
func (fr *frame) legend(entries []legendEntry) {
	if len(entries) == 0 {
		return
	}
	const sw, gap, rowH = 22.0, 18.0, 18.0
	maxName := float64(chartWidth-2*pad) / 2
	x, y := float64(pad), fr.top+labelSize
	var keys []Shape
	for _, e := range entries {
		name := fr.f.fit(e.name, maxName, labelSize, false)
		w := sw + 6 + slack*fr.f.width(name, labelSize, false)
		if x > pad && x+w > chartWidth-pad {
			x, y = pad, y+rowH
		}
		if e.line {
			st := Style{Stroke: e.color, Width: 2.5}
			if e.dash {
				st.Dash = []float64{6, 4}
			}
			keys = append(keys, Poly{Points: []Pt{{x, y - 4}, {x + sw, y - 4}}, Style: st})
		} else {
			keys = append(keys, Rect{X: x, Y: y - 10, W: sw, H: 10, Style: Style{Fill: e.color}})
		}
		keys = append(keys, Text{X: x + sw + 6, Y: y, S: name, Size: labelSize, Color: black, Meta: Meta{Tip: tipIfCut(name, e.name)}})
		x += w + gap
	}
	fr.add(Group{Shapes: keys, Meta: Meta{Class: "legend"}})
	fr.top = y + 10
}

func tipIfCut(shown, full string) string {
	if shown != full {
		return full
	}
	return ""
}

// footnote writes a line of small print at the bottom.
func (fr *frame) footnote(s string) {
	if s == "" {
		return
	}
	fr.text(pad, chartHeight-pad+4, fr.f.fit(s, chartWidth-2*pad, tickSize, false), tickSize, Start, grey, false, "footnote")
	fr.bottom = chartHeight - pad - tickSize - 8
}

// noData finishes a chart that has nothing to draw.
func (fr *frame) noData() *Drawing {
	fr.text(chartWidth/2, (fr.top+fr.bottom)/2, "no data for this range", 16, Middle, grey, false, "no-data")
	fr.d.Points = 0
	return fr.d
}

// plotArea is where a plot's marks go, and its scales.
type plotArea struct {
	x0, y0, x1, y1 float64 // left, top, right, bottom
}

func (a plotArea) w() float64 { return a.x1 - a.x0 }

// plotMeta describes the plot's area and domains on its <g class="plot">, so that a reader
// (a test, a script) can map user units back to values.
func plotMeta(a plotArea, xd, yd [2]float64) Meta {
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return Meta{Class: "plot", Attrs: []Attr{
		{"data-area", f2(a.x0) + " " + f2(a.y0) + " " + f2(a.x1) + " " + f2(a.y1)},
		{"data-x-domain", g(xd[0]) + " " + g(xd[1])},
		{"data-y-domain", g(yd[0]) + " " + g(yd[1])},
	}}
}

// yAxis draws horizontal grid lines at the ticks, their labels, and the axis label (its
// baseline at labelX), on the left side or the right (right: labels only, the grid belongs to
// the left axis).
func (fr *frame) yAxis(a plotArea, s linear, ticks []float64, step float64, label string, labelX float64, right bool) Group {
	var g Group
	g.Class = "y-axis"
	if right {
		g.Class = "y-axis right"
	}
	for _, t := range ticks {
		y := s.at(t)
		if !right {
			st := Style{Stroke: lightGrey, Width: 1}
			if t == 0 {
				st.Stroke = grey
			}
			g.Shapes = append(g.Shapes, Poly{Points: []Pt{{a.x0, y}, {a.x1, y}}, Style: st, Meta: Meta{Class: "grid"}})
		}
		tx, anchor := a.x0-6, End
		if right {
			tx, anchor = a.x1+6, Start
		}
		g.Shapes = append(g.Shapes, Text{
			X: tx, Y: y + 4, S: formatTick(t, step), Size: tickSize, Anchor: anchor,
			Color: grey, Meta: Meta{Class: "tick", Attrs: []Attr{{"data-value", strconv.FormatFloat(t, 'g', -1, 64)}}},
		})
	}
	if label != "" {
		g.Shapes = append(g.Shapes, Text{
			X: labelX, Y: (a.y0 + a.y1) / 2, S: fr.f.fit(label, a.y1-a.y0, labelSize, false),
			Size: labelSize, Anchor: Middle, Color: black, Vertical: true, Meta: Meta{Class: "axis-label"},
		})
	}
	return g
}

// tickLabelWidth is the widest tick label's width.
func (fr *frame) tickLabelWidth(ticks []float64, step float64) float64 {
	w := 0.0
	for _, t := range ticks {
		w = max(w, fr.f.width(formatTick(t, step), tickSize, false))
	}
	return w
}
