package chart

import (
	"bytes"
	"encoding/xml"
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/fleetwatt/fleetwatt/collector/internal/report"
)

func TestHeadline(t *testing.T) {
	t.Parallel()
	d := func(arm, x86, lo, hi float64) *report.Delta {
		return &report.Delta{ARM: arm, X86: x86, RelDiff: arm/x86 - 1, CI95: &[2]float64{lo, hi}, Resamples: 2000}
	}
	for _, tt := range []struct {
		name string
		c    report.Comparison
		want string
	}{
		{
			"cheaper",
			report.Comparison{
				Region: "cn-shenzhen", Scope: "wall", AtUtil: ptr(0.45),
				WPerBusyCore: d(1.91, 3.25, -0.44, -0.38), USDPerBusyCoreYear: d(6.12, 10.4122, -0.44, -0.38),
				KgCO2ePerBusyCoreYear: d(40.1, 68.2258, -0.44, -0.38),
			},
			"cn-shenzhen: ARM costs 41 % less per busy core (95 % CI 38–44 %): $6.12 vs $10.41 per busy core-year, 40.1 vs 68.2 kg CO2e, both at 45.0 % utilization",
		},
		{
			"dearer",
			report.Comparison{Region: "eu", Scope: "wall", WPerBusyCore: d(3.3, 3, 0.05, 0.15), USDPerBusyCoreYear: d(11, 10, 0.05, 0.15)},
			"eu: ARM costs 10.0 % more per busy core (95 % CI 5.0–15.0 %): $11.00 vs $10.00 per busy core-year",
		},
		{
			"unclear",
			report.Comparison{Region: "us", Scope: "cpu-package", WPerBusyCore: d(0.97, 1, -0.08, 0.02), USDPerBusyCoreYear: d(0.97, 1, -0.08, 0.02)},
			"us: no clear difference: ARM costs 3.0 % less per busy core, but the 95 % CI runs from 8.0 % less to 2.0 % more: $0.970 vs $1.00 per busy core-year",
		},
		{
			"no interval",
			report.Comparison{
				Region: "cn-beijing", Scope: "cpu-package",
				WPerBusyCore:       &report.Delta{ARM: 2.12, X86: 4.1, RelDiff: -0.482},
				USDPerBusyCoreYear: &report.Delta{ARM: 1.989, X86: 3.83906, RelDiff: -0.481905},
			},
			"cn-beijing: ARM costs 48 % less per busy core (no confidence interval: fewer than two hosts in a pool): $1.99 vs $3.84 per busy core-year",
		},
		{
			"no price",
			report.Comparison{Region: "mars", Scope: "wall", WPerBusyCore: d(2, 4, -0.55, -0.45)},
			"mars: ARM draws 50 % less power per busy core (95 % CI 45–55 %): 2.00 vs 4.00 W per busy core (no electricity price for this region)",
		},
		{
			"no scope",
			report.Comparison{Region: "cn-beijing", Note: "no common power scope: ARM hosts have cpu-package, x86 hosts have wall"},
			"cn-beijing: no comparison: no common power scope: ARM hosts have cpu-package, x86 hosts have wall",
		},
	} {
		if got := Headline(tt.c); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

var (
	headlineRE = regexp.MustCompile(`<p class="headline (\w+)" data-region="([^"]*)"><strong>[^<]*</strong>: ([^<]*)</p>`)
	svgRE      = regexp.MustCompile(`(?s)<svg .*?</svg>`)
	linkRE     = regexp.MustCompile(`(?i)\b(src|href|action|poster|data)\s*=|url\(|@import|<script|<link|<iframe|<object|<embed|https?://`)
)

// TestHTML: the page is one self-contained file with a headline per comparison, the charts
// inline, and the report's groups.
func TestHTML(t *testing.T) {
	t.Parallel()
	rep := testReport()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if m := linkRE.FindAllString(page, -1); len(m) > 0 {
		t.Errorf("the page is not self-contained: %q", m)
	}
	heads := headlineRE.FindAllStringSubmatch(page, -1)
	if len(heads) != len(rep.Comparisons) {
		t.Fatalf("%d headlines, want one per comparison (%d)", len(heads), len(rep.Comparisons))
	}
	for i, h := range heads {
		c := rep.Comparisons[i]
		if h[2] != c.Region || html.UnescapeString(h[3]) != strings.TrimPrefix(Headline(c), c.Region+": ") {
			t.Errorf("headline %d: %q, want %q", i, h[0], Headline(c))
		}
		if d := c.USDPerBusyCoreYear; d != nil {
			for _, n := range []string{money(d.ARM), money(d.X86), "$" + num(d.ARM, 2)} {
				if !strings.Contains(h[3], n) {
					t.Errorf("%s headline %q lacks %s", c.Region, h[3], n)
				}
			}
			if h[1] != "cheaper" {
				t.Errorf("%s: class %q", c.Region, h[1])
			}
		}
	}
	svgs := svgRE.FindAllString(page, -1)
	var names []string
	for _, s := range svgs {
		var root node
		if err := xml.Unmarshal([]byte(s), &root); err != nil {
			t.Fatalf("inline svg does not parse: %v", err)
		}
		names = append(names, root.attr("data-chart"))
		if root.attr("data-points") == "0" || root.attr("viewBox") == "" {
			t.Errorf("chart %s: data-points %s viewBox %q", root.attr("data-chart"), root.attr("data-points"), root.attr("viewBox"))
		}
	}
	if strings.Join(names, ",") != "comparison,cost,curves,footprint" {
		t.Errorf("inline charts %v", names)
	}
	_, rows, _ := report.GroupTable(rep)
	for _, row := range rows {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = html.EscapeString(c)
		}
		if !strings.Contains(page, `<td>`+cells[0]+`</td>`) || !strings.Contains(page, strings.Join(cells[len(cells)-3:], `</td><td class="num">`)) {
			t.Errorf("the groups table lacks the row %q", row)
		}
	}
	for _, want := range []string{"How the numbers are defined", "docs/report.md", rep.Notes[0], report.RangeLine(rep)} {
		if !strings.Contains(page, html.EscapeString(want)) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
