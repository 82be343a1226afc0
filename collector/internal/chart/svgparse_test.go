package chart

import (
	"bytes"
	"encoding/xml"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// node is an element of a parsed SVG.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []node     `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n node) num(t *testing.T, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(n.attr(name), 64)
	if err != nil {
		t.Fatalf("<%s> %s=%q: %v", n.XMLName.Local, name, n.attr(name), err)
	}
	return v
}

// nums parses a space-separated attribute of numbers.
func (n node) nums(t *testing.T, name string) []float64 {
	t.Helper()
	var out []float64
	for f := range strings.FieldsSeq(n.attr(name)) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", name, n.attr(name), err)
		}
		out = append(out, v)
	}
	return out
}

func (n node) hasClass(c string) bool { return slices.Contains(strings.Fields(n.attr("class")), c) }

// all returns the descendants (n included) that match.
func (n node) all(match func(node) bool) []node {
	var out []node
	if match(n) {
		out = append(out, n)
	}
	for _, c := range n.Nodes {
		out = append(out, c.all(match)...)
	}
	return out
}

func (n node) class(c string) []node { return n.all(func(k node) bool { return k.hasClass(c) }) }

func (n node) tag(name string) []node {
	return n.all(func(k node) bool { return k.XMLName.Local == name })
}

// title is the element's <title> child's text.
func (n node) title() string {
	for _, c := range n.Nodes {
		if c.XMLName.Local == "title" {
			return c.Text
		}
	}
	return ""
}

// texts is every <text>'s content, in order.
func (n node) texts() []string {
	var out []string
	for _, t := range n.tag("text") {
		out = append(out, t.Text)
	}
	return out
}

// render writes d as SVG and parses it back, strictly.
func render(t *testing.T, d *Drawing) (node, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteSVG(&buf, d); err != nil {
		t.Fatal(err)
	}
	var root node
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	dec.Strict = true
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("svg does not parse: %v\n%s", err, buf.String())
	}
	if root.XMLName.Local != "svg" || root.XMLName.Space != "http://www.w3.org/2000/svg" {
		t.Fatalf("root %v", root.XMLName)
	}
	return root, buf.String()
}

// plot is a parsed <g class="plot">: its area and domains, to map user units to values.
type plot struct {
	x0, y0, x1, y1 float64
	xd, yd, y2d    []float64
}

func plotOf(t *testing.T, g node) plot {
	t.Helper()
	a := g.nums(t, "data-area")
	p := plot{x0: a[0], y0: a[1], x1: a[2], y1: a[3], xd: g.nums(t, "data-x-domain"), yd: g.nums(t, "data-y-domain")}
	if g.attr("data-y2-domain") != "" {
		p.y2d = g.nums(t, "data-y2-domain")
	}
	return p
}

// value maps a y coordinate back to a value of the left (or the given) domain.
func (p plot) value(y float64, d []float64) float64 {
	return d[0] + (p.y1-y)/(p.y1-p.y0)*(d[1]-d[0])
}

func (p plot) xValue(x float64) float64 {
	return p.xd[0] + (x-p.x0)/(p.x1-p.x0)*(p.xd[1]-p.xd[0])
}

// pts parses a polyline's points.
func pts(t *testing.T, n node) []Pt {
	t.Helper()
	var out []Pt
	for f := range strings.FieldsSeq(n.attr("points")) {
		x, y, ok := strings.Cut(f, ",")
		if !ok {
			t.Fatalf("points %q", n.attr("points"))
		}
		xv, err1 := strconv.ParseFloat(x, 64)
		yv, err2 := strconv.ParseFloat(y, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("points %q", n.attr("points"))
		}
		out = append(out, Pt{xv, yv})
	}
	return out
}

func near(a, b, tol float64) bool { return a-b <= tol && b-a <= tol }
