package chart

import (
	"bytes"
	"flag"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/collector/internal/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func allCharts(rep *report.Report) []*Drawing {
	from := rep.From
	hs := HostSeries{
		Step: time.Hour, Util: TimeSeries{Points: []TimePoint{{from, 0.2}, {from.Add(time.Hour), 0.4}}},
		Power: []TimeSeries{{Name: "wall · ipmi", Points: []TimePoint{{from, 300}, {from.Add(time.Hour), 350}}}},
	}
	return []*Drawing{
		Comparison(rep), Cost(rep), Curves(rep), Footprint(rep),
		Power([]TimeSeries{{Name: "cn-hangzhou", Points: []TimePoint{{from, 1200}, {from.Add(time.Hour), 1500}}}}, time.Hour, from, rep.To, ""),
		Host("hz-a1", hs, from, rep.To),
	}
}

// TestHostileNames: names with markup, quotes, non-Latin scripts, invalid UTF-8 and control
// characters come out escaped in SVG (which still parses) and in the HTML page.
func TestHostileNames(t *testing.T) {
	t.Parallel()
	const (
		region = `<script>alert("x")</script>`
		model  = `Ampère "Altra" & 'Q80' ✓ 电脑 Ампер`
	)
	rep := testReport()
	for i := range rep.Groups {
		rep.Groups[i].Region = region
		rep.Groups[i].CPUModel = model + "\x01\xff"
	}
	for i := range rep.Comparisons {
		rep.Comparisons[i].Region = region + string(rune('0'+i))
		rep.Comparisons[i].ARMModels = []string{model}
	}
	for _, d := range allCharts(rep) {
		root, raw := render(t, d)
		if strings.Contains(raw, "<script") || strings.Contains(raw, "\x01") || strings.Contains(raw, "\xff") {
			t.Errorf("%s: unescaped name in\n%s", d.Name, raw)
		}
		found := false
		for _, n := range root.all(func(node) bool { return true }) {
			for _, a := range n.Attrs {
				if strings.HasPrefix(a.Value, region) {
					found = true
				}
			}
			if strings.HasPrefix(n.title(), region) || strings.HasPrefix(n.Text, `<script>`) {
				found = true
			}
		}
		if (d.Name == NameComparison || d.Name == NameCost || d.Name == NameFootprint) && !found {
			t.Errorf("%s: the hostile region does not read back as itself", d.Name)
		}
	}
	root, _ := render(t, Curves(rep))
	names := root.class("series")
	if len(names) == 0 || !strings.HasPrefix(names[0].attr("data-series"), model+"\uFFFD\uFFFD") {
		t.Errorf("curve series named %q, want the model with its invalid bytes replaced", names[0].attr("data-series"))
	}

	var page bytes.Buffer
	if err := WriteHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	if strings.Contains(strings.ToLower(html), "<script") {
		t.Error("the page has a <script>")
	}
	for _, want := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", "Ampère &#34;Altra&#34; &amp; &#39;Q80&#39; ✓ 电脑 Ампер"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks the escaped %q", want)
		}
	}
}

func TestPNG(t *testing.T) {
	t.Parallel()
	d := Comparison(testReport())
	var buf bytes.Buffer
	if err := WritePNG(&buf, d); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b != image.Rect(0, 0, 960, 480) {
		t.Fatalf("size %v, want 960×480", b)
	}
	// Every bar is filled with its series' colour, where the SVG puts it.
	root, _ := render(t, d)
	for _, bar := range root.class("bar") {
		x := int(bar.num(t, "x") + bar.num(t, "width")/2)
		y := int(bar.num(t, "y") + bar.num(t, "height")/2)
		want := armColour
		if bar.attr("data-series") == "x86" {
			want = x86Colour
		}
		if got := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA); got != want {
			t.Errorf("%s/%s at (%d, %d): %v, want %v", bar.attr("data-category"), bar.attr("data-series"), x, y, got, want)
		}
	}
	// Text and lines: the plot area and the title are not blank.
	p := plotOf(t, root.class("plot")[0])
	if n := inked(img, image.Rect(int(p.x0), int(p.y0), int(p.x1), int(p.y1))); n < 10000 {
		t.Errorf("%d inked pixels in the plot", n)
	}
	if n := inked(img, image.Rect(0, 0, 480, 40)); n < 300 {
		t.Errorf("%d inked pixels in the title", n)
	}
	if n := inked(img, image.Rect(0, int(p.y0), 40, int(p.y1))); n < 100 {
		t.Errorf("%d inked pixels where the vertical axis label is", n)
	}
}

func inked(img image.Image, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA); c != white {
				n++
			}
		}
	}
	return n
}

func TestPNGLines(t *testing.T) {
	t.Parallel()
	d := Curves(testReport())
	img, err := Raster(d)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := render(t, d)
	// The middle of the first curve's first segment has the curve's colour.
	s := root.class("series")[0]
	vs := pts(t, s.class("line")[0])
	mid := Pt{(vs[3].X + vs[4].X) / 2, (vs[3].Y + vs[4].Y) / 2}
	got := color.NRGBAModel.Convert(img.At(int(mid.X), int(mid.Y))).(color.NRGBA)
	if got.A != 0xff || got.R > 0x40 || got.B < 0x80 {
		t.Errorf("curve pixel at %v: %v, want the ARM blue", mid, got)
	}
}

// TestDeterministic: the same input gives the same bytes, SVG and PNG, and the SVG of the
// comparison chart is the golden file's.
func TestDeterministic(t *testing.T) {
	t.Parallel()
	a, b := allCharts(testReport()), allCharts(testReport())
	for i := range a {
		var s1, s2, p1, p2 bytes.Buffer
		for _, err := range []error{WriteSVG(&s1, a[i]), WriteSVG(&s2, b[i]), WritePNG(&p1, a[i]), WritePNG(&p2, b[i])} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(s1.Bytes(), s2.Bytes()) || !bytes.Equal(p1.Bytes(), p2.Bytes()) {
			t.Errorf("%s: two renderings differ", a[i].Name)
		}
	}
	for _, d := range a[:4] {
		var buf bytes.Buffer
		if err := WriteSVG(&buf, d); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", d.Name+".svg.golden")
		if *update {
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if diff := cmp.Diff(string(want), buf.String()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", path, diff)
		}
	}
}
