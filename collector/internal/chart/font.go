package chart

import (
	"fmt"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
)

// fonts measures and draws text in the Go fonts, the PNG's typeface and the SVG's first
// choice, so that layout fits in both. A fonts is used by one goroutine: font faces keep
// buffers.
type fonts struct {
	regular, bold *opentype.Font
	faces         map[faceKey]font.Face
	err           error
}

type faceKey struct {
	size float64
	bold bool
}

func newFonts() *fonts {
	f := &fonts{faces: map[faceKey]font.Face{}}
	var err1, err2 error
	f.regular, err1 = opentype.Parse(goregular.TTF)
	f.bold, err2 = opentype.Parse(gobold.TTF)
	if err := firstErr(err1, err2); err != nil {
		f.err = fmt.Errorf("parse the Go font: %w", err)
	}
	return f
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// face returns the face of a size (user units, at 72 DPI one unit is one point).
func (f *fonts) face(size float64, bold bool) (font.Face, error) {
	if f.err != nil {
		return nil, f.err
	}
	k := faceKey{size, bold}
	if fc, ok := f.faces[k]; ok {
		return fc, nil
	}
	src := f.regular
	if bold {
		src = f.bold
	}
	fc, err := opentype.NewFace(src, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		return nil, fmt.Errorf("font face %g: %w", size, err)
	}
	f.faces[k] = fc
	return fc, nil
}

// width is the advance of s, user units. Should the font fail, it estimates.
func (f *fonts) width(s string, size float64, bold bool) float64 {
	fc, err := f.face(size, bold)
	if err != nil {
		return 0.55 * size * float64(len([]rune(s)))
	}
	return float64(font.MeasureString(fc, s)) / 64
}

// slack is how much wider than the Go font a browser may set the SVG's text (without the Go
// font, in a wider sans-serif): layout leaves that much room.
const slack = 1.15

// fit shortens s with an ellipsis until it is at most w wide, with slack to spare.
func (f *fonts) fit(s string, w, size float64, bold bool) string {
	w /= slack
	if f.width(s, size, bold) <= w {
		return s
	}
	r := []rune(s)
	for len(r) > 0 {
		r = r[:len(r)-1]
		if t := string(r) + "…"; f.width(t, size, bold) <= w {
			return t
		}
	}
	return "…"
}
