package chart

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"
	"strings"
)

// fontFamily is the SVG's typeface: the Go font the layout is measured in, then look-alikes.
const fontFamily = "Go, 'Helvetica Neue', Helvetica, Arial, sans-serif"

// WriteSVG writes d as a standalone SVG document. It scales to its container's width: the
// size is its viewBox.
func WriteSVG(w io.Writer, d *Drawing) error { return writeSVG(w, d, true) }

// InlineSVG is d as an <svg> element for an HTML page: no XML namespace, which HTML implies.
func InlineSVG(d *Drawing) string {
	var b bytes.Buffer
	_ = writeSVG(&b, d, false) // a bytes.Buffer does not fail
	return b.String()
}

func writeSVG(w io.Writer, d *Drawing, standalone bool) error {
	e := &svgEncoder{}
	id := "chart-" + d.Name
	e.s(`<svg`)
	if standalone {
		e.attr("xmlns", "http://www.w3.org/2000/svg")
	}
	e.attr("viewBox", "0 0 "+f2(d.Width)+" "+f2(d.Height))
	e.attr("width", "100%")
	e.attr("role", "img")
	e.attr("aria-labelledby", id+"-title "+id+"-desc")
	e.attr("data-chart", d.Name)
	e.attr("data-points", strconv.Itoa(d.Points))
	e.attr("font-family", fontFamily)
	e.s(">\n<title")
	e.attr("id", id+"-title")
	e.s(">")
	e.text(d.Title)
	e.s("</title>\n<desc")
	e.attr("id", id+"-desc")
	e.s(">")
	e.text(d.Desc)
	e.s("</desc>\n")
	for _, s := range d.Shapes {
		e.shape(s)
	}
	e.s("</svg>\n")
	_, err := w.Write(e.b.Bytes())
	if err != nil {
		return fmt.Errorf("write svg %s: %w", d.Name, err)
	}
	return nil
}

type svgEncoder struct{ b bytes.Buffer }

func (e *svgEncoder) s(s string) { e.b.WriteString(s) }

// text writes character data, escaped; invalid UTF-8 and characters XML forbids become U+FFFD.
func (e *svgEncoder) text(s string) { _ = xml.EscapeText(&e.b, []byte(s)) }

func (e *svgEncoder) attr(k, v string) {
	e.s(" " + k + `="`)
	e.text(v)
	e.s(`"`)
}

// f2 writes a coordinate to a hundredth of a unit, the same on every platform.
func f2(v float64) string {
	r := math.Round(v*100) / 100
	if r == 0 {
		r = 0
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

func hex(c color.NRGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

func (e *svgEncoder) paint(prefix string, c color.NRGBA) {
	if c.A == 0 {
		e.attr(prefix, "none")
		return
	}
	e.attr(prefix, hex(c))
	if c.A != 0xff {
		e.attr(prefix+"-opacity", strconv.FormatFloat(float64(c.A)/255, 'f', 3, 64))
	}
}

func (e *svgEncoder) style(st Style) {
	e.paint("fill", st.Fill)
	if st.Stroke.A != 0 && st.Width > 0 {
		e.paint("stroke", st.Stroke)
		e.attr("stroke-width", f2(st.Width))
		if len(st.Dash) > 0 {
			parts := make([]string, len(st.Dash))
			for i, v := range st.Dash {
				parts[i] = f2(v)
			}
			e.attr("stroke-dasharray", strings.Join(parts, " "))
		}
	}
}

func (e *svgEncoder) meta(m Meta) {
	if m.Class != "" {
		e.attr("class", m.Class)
	}
	for _, a := range m.Attrs {
		e.attr(a.Key, a.Value)
	}
}

// end closes an element, with the tooltip as its <title> child.
func (e *svgEncoder) end(tag string, m Meta) {
	if m.Tip == "" {
		e.s("/>\n")
		return
	}
	e.s("><title>")
	e.text(m.Tip)
	e.s("</title></" + tag + ">\n")
}

func (e *svgEncoder) shape(s Shape) {
	switch s := s.(type) {
	case Rect:
		e.s("<rect")
		e.meta(s.Meta)
		e.attr("x", f2(s.X))
		e.attr("y", f2(s.Y))
		e.attr("width", f2(s.W))
		e.attr("height", f2(s.H))
		e.style(s.Style)
		e.end("rect", s.Meta)
	case Poly:
		tag := "polyline"
		if s.Closed {
			tag = "polygon"
		}
		e.s("<" + tag)
		e.meta(s.Meta)
		pts := make([]string, len(s.Points))
		for i, p := range s.Points {
			pts[i] = f2(p.X) + "," + f2(p.Y)
		}
		e.attr("points", strings.Join(pts, " "))
		e.style(s.Style)
		if !s.Closed {
			e.attr("stroke-linejoin", "round")
		}
		e.end(tag, s.Meta)
	case Circle:
		e.s("<circle")
		e.meta(s.Meta)
		e.attr("cx", f2(s.X))
		e.attr("cy", f2(s.Y))
		e.attr("r", f2(s.R))
		e.style(s.Style)
		e.end("circle", s.Meta)
	case Text:
		e.s("<text")
		e.meta(s.Meta)
		e.attr("x", f2(s.X))
		e.attr("y", f2(s.Y))
		e.attr("font-size", f2(s.Size))
		if s.Anchor != "" && s.Anchor != Start {
			e.attr("text-anchor", string(s.Anchor))
		}
		if s.Bold {
			e.attr("font-weight", "bold")
		}
		e.paint("fill", s.Color)
		if s.Vertical {
			e.attr("transform", "rotate(-90 "+f2(s.X)+" "+f2(s.Y)+")")
		}
		e.s(">")
		e.text(s.S)
		if s.Tip != "" {
			e.s("<title>")
			e.text(s.Tip)
			e.s("</title>")
		}
		e.s("</text>\n")
	case Group:
		e.s("<g")
		e.meta(s.Meta)
		e.s(">\n")
		if s.Tip != "" {
			e.s("<title>")
			e.text(s.Tip)
			e.s("</title>\n")
		}
		for _, c := range s.Shapes {
			e.shape(c)
		}
		e.s("</g>\n")
	}
}
