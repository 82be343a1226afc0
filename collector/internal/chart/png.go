package chart

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// WritePNG writes d as a PNG of d.Width × d.Height pixels: shapes filled and stroked with
// golang.org/x/image/vector, text set in the Go font.
func WritePNG(w io.Writer, d *Drawing) error {
	img, err := Raster(d)
	if err != nil {
		return err
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("write png %s: %w", d.Name, err)
	}
	return nil
}

// Raster renders d into an image of d.Width × d.Height pixels on white.
func Raster(d *Drawing) (*image.RGBA, error) {
	c := &canvas{
		img:   image.NewRGBA(image.Rect(0, 0, int(math.Ceil(d.Width)), int(math.Ceil(d.Height)))),
		fonts: newFonts(),
		z:     &vector.Rasterizer{},
	}
	if c.fonts.err != nil {
		return nil, c.fonts.err
	}
	draw.Draw(c.img, c.img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	for _, s := range d.Shapes {
		if err := c.shape(s); err != nil {
			return nil, fmt.Errorf("render %s: %w", d.Name, err)
		}
	}
	return c.img, nil
}

type canvas struct {
	img   *image.RGBA
	fonts *fonts
	z     *vector.Rasterizer
}

func (c *canvas) shape(s Shape) error {
	switch s := s.(type) {
	case Rect:
		pts := []Pt{{s.X, s.Y}, {s.X + s.W, s.Y}, {s.X + s.W, s.Y + s.H}, {s.X, s.Y + s.H}}
		c.fill(pts, s.Fill)
		c.stroke(pts, true, s.Style)
	case Poly:
		if s.Closed {
			c.fill(s.Points, s.Fill)
		}
		c.stroke(s.Points, s.Closed, s.Style)
	case Circle:
		pts := circle(s.X, s.Y, s.R, 32)
		c.fill(pts, s.Fill)
		c.stroke(pts, true, s.Style)
	case Text:
		return c.text(s)
	case Group:
		for _, k := range s.Shapes {
			if err := c.shape(k); err != nil {
				return err
			}
		}
	}
	return nil
}

func circle(x, y, r float64, n int) []Pt {
	pts := make([]Pt, n)
	for i := range pts {
		a := 2 * math.Pi * float64(i) / float64(n)
		pts[i] = Pt{x + r*math.Cos(a), y + r*math.Sin(a)}
	}
	return pts
}

// fill fills a polygon, rasterizing only its bounding box.
func (c *canvas) fill(pts []Pt, col color.NRGBA) {
	if col.A == 0 || len(pts) < 3 {
		return
	}
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range pts {
		minX, minY = math.Min(minX, p.X), math.Min(minY, p.Y)
		maxX, maxY = math.Max(maxX, p.X), math.Max(maxY, p.Y)
	}
	r := image.Rect(int(math.Floor(minX)), int(math.Floor(minY)), int(math.Ceil(maxX)), int(math.Ceil(maxY))).
		Intersect(c.img.Bounds())
	if r.Empty() {
		return
	}
	c.z.Reset(r.Dx(), r.Dy())
	ox, oy := float64(r.Min.X), float64(r.Min.Y)
	c.z.MoveTo(float32(pts[0].X-ox), float32(pts[0].Y-oy))
	for _, p := range pts[1:] {
		c.z.LineTo(float32(p.X-ox), float32(p.Y-oy))
	}
	c.z.ClosePath()
	c.z.Draw(c.img, r, image.NewUniform(col), image.Point{})
}

// stroke draws a path's segments as quadrilaterals of the stroke's width, with round joins.
func (c *canvas) stroke(pts []Pt, closed bool, st Style) {
	if st.Stroke.A == 0 || st.Width <= 0 || len(pts) < 2 {
		return
	}
	if closed {
		pts = append(pts[:len(pts):len(pts)], pts[0])
	}
	for _, seg := range dashes(pts, st.Dash) {
		for i := 1; i < len(seg); i++ {
			a, b := seg[i-1], seg[i]
			dx, dy := b.X-a.X, b.Y-a.Y
			l := math.Hypot(dx, dy)
			if l == 0 {
				continue
			}
			nx, ny := -dy/l*st.Width/2, dx/l*st.Width/2
			c.fill([]Pt{{a.X + nx, a.Y + ny}, {b.X + nx, b.Y + ny}, {b.X - nx, b.Y - ny}, {a.X - nx, a.Y - ny}}, st.Stroke)
			if i < len(seg)-1 && st.Width > 1.2 {
				c.fill(circle(b.X, b.Y, st.Width/2, 8), st.Stroke)
			}
		}
	}
}

// dashes cuts a path into the pieces a dash pattern draws; no pattern is one piece.
func dashes(pts []Pt, pattern []float64) [][]Pt {
	total := 0.0
	for _, v := range pattern {
		total += v
	}
	if len(pattern) == 0 || total <= 0 {
		return [][]Pt{pts}
	}
	var out [][]Pt
	var cur []Pt
	idx, left := 0, pattern[0] // position in the pattern
	on := true
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		l := math.Hypot(b.X-a.X, b.Y-a.Y)
		done := 0.0
		for done < l {
			step := math.Min(left, l-done)
			p0 := lerp(a, b, done/l)
			p1 := lerp(a, b, (done+step)/l)
			if on {
				if len(cur) == 0 {
					cur = append(cur, p0)
				}
				cur = append(cur, p1)
			}
			done += step
			left -= step
			if left <= 1e-9 {
				if on && len(cur) > 1 {
					out = append(out, cur)
				}
				cur = nil
				on = !on
				idx = (idx + 1) % len(pattern)
				left = pattern[idx]
			}
		}
	}
	if on && len(cur) > 1 {
		out = append(out, cur)
	}
	return out
}

func lerp(a, b Pt, t float64) Pt { return Pt{a.X + (b.X-a.X)*t, a.Y + (b.Y-a.Y)*t} }

func (c *canvas) text(t Text) error {
	face, err := c.fonts.face(t.Size, t.Bold)
	if err != nil {
		return err
	}
	w := c.fonts.width(t.S, t.Size, t.Bold)
	shift := map[Anchor]float64{Middle: w / 2, End: w}[t.Anchor]
	if !t.Vertical {
		dr := font.Drawer{
			Dst: c.img, Src: image.NewUniform(t.Color), Face: face,
			Dot: fixed.Point26_6{X: fixed.Int26_6(math.Round((t.X - shift) * 64)), Y: fixed.Int26_6(math.Round(t.Y * 64))},
		}
		dr.DrawString(t.S)
		return nil
	}
	// Vertical: set the line in a mask, then turn it a quarter counter-clockwise about
	// (X, Y): a mask pixel (dx, dy) from the pen lands on (X + dy, Y − dx).
	m := face.Metrics()
	asc, desc := m.Ascent.Ceil()+1, m.Descent.Ceil()+1
	mask := image.NewAlpha(image.Rect(0, 0, int(math.Ceil(w))+2, asc+desc))
	dr := font.Drawer{Dst: mask, Src: image.Opaque, Face: face, Dot: fixed.P(1, asc)}
	dr.DrawString(t.S)
	x0, y0 := int(math.Round(t.X)), int(math.Round(t.Y+shift))
	b := mask.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if a := mask.AlphaAt(x, y).A; a > 0 {
				blend(c.img, x0+(y-asc), y0-(x-1), t.Color, a)
			}
		}
	}
	return nil
}

// blend paints one pixel with col at coverage a (0..255), over what is there.
func blend(img *image.RGBA, x, y int, col color.NRGBA, a uint8) {
	if !(image.Point{x, y}).In(img.Bounds()) {
		return
	}
	alpha := uint32(a) * uint32(col.A) / 255
	i := img.PixOffset(x, y)
	p := img.Pix[i : i+4 : i+4]
	mix := func(dst uint8, src uint8) uint8 {
		return uint8((uint32(src)*alpha + uint32(dst)*(255-alpha)) / 255)
	}
	p[0], p[1], p[2] = mix(p[0], col.R), mix(p[1], col.G), mix(p[2], col.B)
	p[3] = uint8(alpha + uint32(p[3])*(255-alpha)/255)
}
