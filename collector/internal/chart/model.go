package chart

import "image/color"

// Drawing is a chart laid out in user units (pixels of the PNG): the one model both
// backends, WriteSVG and WritePNG, render.
type Drawing struct {
	// Name is the chart's name (comparison, cost, ...), its SVG root's data-chart.
	Name string
	// Title and Desc are the accessible name and description (the SVG's <title>, <desc>).
	Title, Desc   string
	Width, Height float64
	// Points is the number of data marks drawn: bars, vertices of lines, markers (the SVG
	// root's data-points).
	Points int
	Shapes []Shape
}

// Shape is one of Rect, Poly, Circle, Text and Group.
type Shape interface{ shape() }

// Style is how a shape is filled and stroked; a zero colour (alpha 0) is none.
type Style struct {
	Fill, Stroke color.NRGBA
	// Width is the stroke width, user units.
	Width float64
	// Dash is the stroke's dash pattern, user units; nil is solid.
	Dash []float64
}

// Attr is an SVG attribute (data-value="3.2"); the PNG backend ignores them.
type Attr struct{ Key, Value string }

// Meta is what a shape says about itself in SVG: a class, data attributes, and a tooltip
// (<title> child) for the data marks.
type Meta struct {
	Class string
	Attrs []Attr
	Tip   string
}

// Rect is an axis-aligned rectangle: a bar, a swatch, the background.
type Rect struct {
	X, Y, W, H float64
	Style
	Meta
}

// Poly is a polyline, or a polygon when Closed.
type Poly struct {
	Points []Pt
	Closed bool
	Style
	Meta
}

// Pt is a point in user units.
type Pt struct{ X, Y float64 }

// Circle is a marker.
type Circle struct {
	X, Y, R float64
	Style
	Meta
}

// Anchor is a text's horizontal alignment to its X.
type Anchor string

// Anchors, as SVG's text-anchor names them.
const (
	Start  Anchor = "start"
	Middle Anchor = "middle"
	End    Anchor = "end"
)

// Text is one line of text, its baseline at Y.
type Text struct {
	X, Y   float64
	S      string
	Size   float64 // font size, user units
	Anchor Anchor
	Bold   bool
	Color  color.NRGBA
	// Vertical turns the text a quarter counter-clockwise about (X, Y): a y-axis label.
	Vertical bool
	Meta
}

// Group groups shapes: a series, an axis (SVG <g>).
type Group struct {
	Shapes []Shape
	Meta
}

func (Rect) shape()   {}
func (Poly) shape()   {}
func (Circle) shape() {}
func (Text) shape()   {}
func (Group) shape()  {}

// Colours. The series palette is Okabe and Ito's, distinguishable with colour-blindness.
var (
	black      = color.NRGBA{0x1f, 0x1f, 0x1f, 0xff}
	grey       = color.NRGBA{0x5f, 0x5f, 0x5f, 0xff}
	lightGrey  = color.NRGBA{0xe3, 0xe3, 0xe3, 0xff}
	white      = color.NRGBA{0xff, 0xff, 0xff, 0xff}
	armColour  = color.NRGBA{0x00, 0x72, 0xb2, 0xff} // blue
	x86Colour  = color.NRGBA{0xd5, 0x5e, 0x00, 0xff} // vermillion
	otherColor = color.NRGBA{0x99, 0x99, 0x99, 0xff}
)

// palette colours the series of a chart in turn.
var palette = []color.NRGBA{
	armColour, x86Colour,
	{0x00, 0x9e, 0x73, 0xff}, // bluish green
	{0xcc, 0x79, 0xa7, 0xff}, // reddish purple
	{0xe6, 0x9f, 0x00, 0xff}, // orange
	{0x56, 0xb4, 0xe9, 0xff}, // sky blue
	{0x1f, 0x1f, 0x1f, 0xff}, // black
	{0xb8, 0xa3, 0x00, 0xff}, // dark yellow
}

func paletteColor(i int) color.NRGBA { return palette[i%len(palette)] }
