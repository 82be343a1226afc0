package chart

import (
	"image/color"
	"math"
	"strconv"
)

// Bars is a grouped bar chart: per category one bar per series, each bar with an optional
// interval drawn as a whisker; several panels, each with its own y axis, side by side.
type Bars struct {
	Name, Title, Subtitle, Desc string
	Series                      []Series
	Panels                      []BarPanel
	Footnote                    string
}

// Series is a series' name and colour, as the legend shows it.
type Series struct {
	Name  string
	Color color.NRGBA
}

// BarPanel is one plot of a bar chart.
type BarPanel struct {
	// Title names the panel when there are several.
	Title string
	// YLabel names the axis, with its unit; Unit follows values in labels and tooltips.
	YLabel, Unit string
	Categories   []Category
	// Values holds per category a bar per series; nil is no bar.
	Values [][]*Bar
}

// Category is one group of bars: its name under the axis, and more lines in small print.
type Category struct {
	Name  string
	Lines []string
}

// Bar is one bar: its value, and an interval (absolute bounds) or nil.
type Bar struct {
	Value float64
	CI    *[2]float64
	// Tip adds words to the bar's tooltip.
	Tip string
}

func (b Bars) bars() int {
	n := 0
	for _, p := range b.Panels {
		for _, row := range p.Values {
			for _, v := range row {
				if v != nil {
					n++
				}
			}
		}
	}
	return n
}

// Drawing lays the chart out.
func (b Bars) Drawing() *Drawing {
	fr := newFrame(b.Name, b.Title, b.Subtitle, b.Desc)
	if b.bars() == 0 {
		return fr.noData()
	}
	entries := make([]legendEntry, len(b.Series))
	for i, s := range b.Series {
		entries[i] = legendEntry{name: s.Name, color: s.Color}
	}
	fr.legend(entries)
	fr.footnote(b.Footnote)
	const panelGap = 40.0
	pw := (chartWidth - 2*pad - panelGap*float64(len(b.Panels)-1)) / float64(len(b.Panels))
	for i, p := range b.Panels {
		x0 := pad + float64(i)*(pw+panelGap)
		fr.barPanel(p, b.Series, x0, x0+pw, len(b.Panels) > 1)
	}
	return fr.d
}

func (fr *frame) barPanel(p BarPanel, series []Series, left, right float64, titled bool) {
	lo, hi := 0.0, 0.0
	for _, row := range p.Values {
		for _, v := range row {
			if v == nil {
				continue
			}
			lo, hi = math.Min(lo, v.Value), math.Max(hi, v.Value)
			if v.CI != nil {
				lo, hi = math.Min(lo, v.CI[0]), math.Max(hi, v.CI[1])
			}
		}
	}
	ticks, step := niceTicks(lo, hi, 5)
	top := fr.top
	if titled {
		fr.text(left, top+13, fr.f.fit(p.Title, right-left, 13, true), 13, Start, black, true, "panel-title")
		top += 20
	}
	lines := 1
	for _, c := range p.Categories {
		lines = max(lines, 1+len(c.Lines))
	}
	a := plotArea{
		x0: left + labelSize + 8 + fr.tickLabelWidth(ticks, step) + 8,
		y0: top + 18, // room for the value labels above the highest bar
		x1: right,
		y1: fr.bottom - float64(lines)*14 - 6,
	}
	ys := linear{ticks[0], ticks[len(ticks)-1], a.y1, a.y0}
	plot := Group{Meta: plotMeta(a, [2]float64{0, float64(len(p.Categories))}, [2]float64{ys.d0, ys.d1})}
	plot.Shapes = append(plot.Shapes, fr.yAxis(a, ys, ticks, step, p.YLabel, left+labelSize, false))

	band := a.w() / float64(max(len(p.Categories), 1))
	groupW := band * 0.72
	barW := groupW / float64(max(len(series), 1))
	for ci, c := range p.Categories {
		bx := a.x0 + float64(ci)*band
		cat := Group{Meta: Meta{Class: "category", Attrs: []Attr{{"data-category", c.Name}}}}
		for si, s := range series {
			if ci >= len(p.Values) || si >= len(p.Values[ci]) || p.Values[ci][si] == nil {
				continue
			}
			cat.Shapes = append(cat.Shapes, fr.bar(*p.Values[ci][si], p, c, s, bx+(band-groupW)/2+float64(si)*barW, barW, ys)...)
			fr.d.Points++
		}
		name := fr.f.fit(c.Name, band-4, labelSize, false)
		cat.Shapes = append(cat.Shapes, Text{
			X: bx + band/2, Y: a.y1 + 16, S: name, Size: labelSize, Anchor: Middle,
			Color: black, Meta: Meta{Class: "category-label", Tip: tipIfCut(name, c.Name)},
		})
		for li, l := range c.Lines {
			cat.Shapes = append(cat.Shapes, Text{
				X: bx + band/2, Y: a.y1 + 16 + float64(li+1)*14,
				S: fr.f.fit(l, band-4, tickSize, false), Size: tickSize, Anchor: Middle, Color: grey, Meta: Meta{Class: "category-note"},
			})
		}
		plot.Shapes = append(plot.Shapes, cat)
	}
	fr.add(plot)
}

// bar draws one bar, its whisker and its value label.
func (fr *frame) bar(v Bar, p BarPanel, c Category, s Series, x, w float64, ys linear) []Shape {
	inner := math.Max(w-4, 1)
	x += (w - inner) / 2
	y0, y1 := ys.at(0), ys.at(v.Value)
	tip := c.Name + " · " + s.Name + ": " + sig(v.Value) + unitSuffix(p.Unit)
	if v.CI != nil {
		tip += " (95 % CI " + sig(v.CI[0]) + "–" + sig(v.CI[1]) + unitSuffix(p.Unit) + ")"
	}
	if v.Tip != "" {
		tip += "; " + v.Tip
	}
	out := []Shape{Rect{
		X: x, Y: math.Min(y0, y1), W: inner, H: math.Abs(y1 - y0), Style: Style{Fill: s.Color},
		Meta: Meta{Class: "mark bar", Tip: tip, Attrs: []Attr{
			{"data-series", s.Name}, {"data-category", c.Name}, {"data-value", gfmt(v.Value)},
		}},
	}}
	labelY := math.Min(y0, y1) - 4
	if v.CI != nil {
		cx, lo, hi := x+inner/2, ys.at(v.CI[0]), ys.at(v.CI[1])
		cap := math.Min(inner*0.35, 8)
		st := Style{Stroke: black, Width: 1.5}
		out = append(out, Group{Meta: Meta{Class: "ci", Attrs: []Attr{
			{"data-series", s.Name}, {"data-category", c.Name}, {"data-lo", gfmt(v.CI[0])}, {"data-hi", gfmt(v.CI[1])},
		}}, Shapes: []Shape{
			Poly{Points: []Pt{{cx, lo}, {cx, hi}}, Style: st, Meta: Meta{Class: "whisker"}},
			Poly{Points: []Pt{{cx - cap, lo}, {cx + cap, lo}}, Style: st, Meta: Meta{Class: "cap lo"}},
			Poly{Points: []Pt{{cx - cap, hi}, {cx + cap, hi}}, Style: st, Meta: Meta{Class: "cap hi"}},
		}})
		labelY = math.Min(labelY, math.Min(lo, hi)-4)
	}
	out = append(out, Text{
		X: x + inner/2, Y: labelY, S: sig(v.Value), Size: tickSize, Anchor: Middle, Color: black,
		Meta: Meta{Class: "value"},
	})
	return out
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " " + u
}

// gfmt writes a number exactly (shortest representation), for data attributes.
func gfmt(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
