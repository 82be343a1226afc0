package chart

import (
	"cmp"
	"fmt"
	"image/color"
	"slices"
	"strings"
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/report"
)

// The charts, by name: the {name} of /api/v1/charts/{name}.svg and of --chart.
const (
	NameComparison = "comparison" // W per busy core, ARM vs x86 per region
	NameCost       = "cost"       // USD per busy core-year, ARM vs x86 per region
	NameCurves     = "curves"     // fitted power curves per CPU model
	NameFootprint  = "footprint"  // electricity cost and carbon per region over the range
	NamePower      = "power"      // fleet power over time, per region
	NameHost       = "host"       // one host's power per scope and source, and its utilization
)

// Names lists the charts; ReportNames those drawn from the report alone.
var (
	Names       = []string{NameComparison, NameCost, NameCurves, NameFootprint, NamePower, NameHost}
	ReportNames = []string{NameComparison, NameCost, NameCurves, NameFootprint}
)

// FromReport draws one of ReportNames from a report.
func FromReport(name string, rep *report.Report) (*Drawing, error) {
	switch name {
	case NameComparison:
		return Comparison(rep), nil
	case NameCost:
		return Cost(rep), nil
	case NameCurves:
		return Curves(rep), nil
	case NameFootprint:
		return Footprint(rep), nil
	}
	return nil, fmt.Errorf("%w: chart %q is not drawn from the report alone: want one of %s", ErrNotFound, name, strings.Join(ReportNames, ", "))
}

// rangeText is a report's range for a subtitle.
func rangeText(from, to time.Time) string {
	h := to.Sub(from).Hours()
	return fmt.Sprintf("%s to %s UTC (%s h)", from.UTC().Format("2006-01-02 15:04"), to.UTC().Format("2006-01-02 15:04"), num(h, decimals(h)))
}

// Percent writes a relative difference as a signed percentage: one decimal under 10 %.
func Percent(v float64) string {
	p := 100 * v
	prec := 0
	if p > -9.95 && p < 9.95 {
		prec = 1
	}
	s := num(p, prec)
	if !strings.HasPrefix(s, "-") && s != "0" && s != "0.0" {
		s = "+" + s
	}
	return strings.Replace(s, "-", "−", 1) + " %"
}

// Comparison draws watts per busy core of ARM and x86 per region, at matched utilization,
// the ARM bar's whisker the 95 % interval of the difference.
func Comparison(rep *report.Report) *Drawing {
	return deltaBars(rep, deltaChart{
		name:  NameComparison,
		title: "ARM vs x86: watts per busy core, per region",
		label: "W per busy core", unit: "W",
		pick: func(c report.Comparison) *report.Delta { return c.WPerBusyCore },
	})
}

// Cost draws the electricity cost of a busy core for a year, ARM and x86 per region.
func Cost(rep *report.Report) *Drawing {
	return deltaBars(rep, deltaChart{
		name:  NameCost,
		title: "ARM vs x86: electricity cost per busy core-year, per region",
		label: "USD per busy core-year", unit: "USD",
		pick: func(c report.Comparison) *report.Delta { return c.USDPerBusyCoreYear },
	})
}

type deltaChart struct {
	name, title, label, unit string
	pick                     func(report.Comparison) *report.Delta
}

func deltaBars(rep *report.Report, dc deltaChart) *Drawing {
	b := Bars{
		Name: dc.name, Title: dc.title, Subtitle: rangeText(rep.From, rep.To) + "; at the x86 pool's average utilization",
		Series: []Series{{"ARM", armColour}, {"x86", x86Colour}},
		Footnote: "Core: logical CPU. Whisker on ARM: 95 % bootstrap interval of ARM relative to x86, hosts resampled. " +
			"Definitions: docs/report.md",
	}
	p := BarPanel{YLabel: dc.label, Unit: dc.unit}
	var desc []string
	for _, c := range rep.Comparisons {
		d := dc.pick(c)
		if d == nil {
			continue
		}
		arm := &Bar{Value: d.ARM, Tip: fmt.Sprintf("%d hosts: %s", c.ARMHosts, strings.Join(c.ARMModels, ", "))}
		diff := "ARM " + Percent(d.RelDiff)
		if d.CI95 != nil {
			arm.CI = &[2]float64{d.X86 * (1 + d.CI95[0]), d.X86 * (1 + d.CI95[1])}
			diff += " [" + strings.TrimSuffix(Percent(d.CI95[0]), " %") + ", " + Percent(d.CI95[1]) + "]"
		}
		x86 := &Bar{Value: d.X86, Tip: fmt.Sprintf("%d hosts: %s", c.X86Hosts, strings.Join(c.X86Models, ", "))}
		p.Categories = append(p.Categories, Category{Name: c.Region, Lines: []string{
			fmt.Sprintf("%s, %s busy", c.Scope, num(100*derefOr(c.AtUtil, 0), 1)+" %"), diff,
		}})
		p.Values = append(p.Values, []*Bar{arm, x86})
		desc = append(desc, fmt.Sprintf("%s: ARM %s, x86 %s %s (%s).", c.Region, sig(d.ARM), sig(d.X86), dc.label, diff))
	}
	b.Panels = []BarPanel{p}
	b.Desc = strings.Join(desc, " ")
	if b.Desc == "" {
		b.Desc = "No region has both ARM and x86 hosts with fitted power curves in this range."
	}
	return b.Drawing()
}

func derefOr(v *float64, def float64) float64 {
	if v == nil {
		return def
	}
	return *v
}

// family is an architecture's family name: ARM, x86 or the arch tag itself.
func family(arch string) string {
	switch arch {
	case "arm64", "arm32", "arm", "aarch64":
		return "ARM"
	case "amd64", "x86", "386", "x86_64":
		return "x86"
	}
	return cmp.Or(arch, "other")
}

// Quadratic returns the coefficients of P(u) = c0 + c1·u + c2·u² (W, u in 0..1) through a
// curve's values at 0, ½ and 1: a group's idle_w, p50_w and peak_w are its mean fitted
// curve's, so the curve is recovered exactly.
func Quadratic(idle, p50, peak float64) (c0, c1, c2 float64) {
	c0 = idle
	c2 = 2 * (peak - 2*p50 + idle)
	c1 = peak - idle - c2
	return c0, c1, c2
}

// curveSteps is how many segments a curve is drawn with, 0 to 100 %.
const curveSteps = 20

// Curves draws the mean fitted power curve of each CPU model and scope (the groups of that
// model, weighted by their fitted hosts), marking idle and peak.
func Curves(rep *report.Report) *Drawing {
	type key struct{ model, scope, family string }
	type acc struct {
		hosts           int
		idle, p50, peak float64
	}
	byKey := map[key]*acc{}
	var keys []key
	for _, g := range rep.Groups {
		if g.IdleW == nil || g.P50W == nil || g.PeakW == nil || g.HostsFitted == 0 {
			continue
		}
		k := key{cmp.Or(g.CPUModel, "(several models)"), g.Scope, family(g.Arch)}
		a, ok := byKey[k]
		if !ok {
			a = &acc{}
			byKey[k] = a
			keys = append(keys, k)
		}
		n := float64(g.HostsFitted)
		a.hosts += g.HostsFitted
		a.idle += n * *g.IdleW
		a.p50 += n * *g.P50W
		a.peak += n * *g.PeakW
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(strings.Compare(a.family, b.family), strings.Compare(a.model, b.model), strings.Compare(a.scope, b.scope))
	})
	l := Lines{
		Name: NameCurves, Title: "Power curves per CPU model",
		Subtitle: rangeText(rep.From, rep.To) + "; mean fitted curve of each model's hosts, ○ idle (0 %) and peak (100 %)",
		X:        Axis{Label: "CPU utilization (%)", Fixed: true, Min: 0, Max: 100},
		Y:        Axis{Label: "power (W)", FromZero: true},
		Footnote: "Least-squares fit of each host's power against its utilization (quadratic where the data allow); dashed: x86. Definitions: docs/report.md",
	}
	var desc []string
	for i, k := range keys {
		a := byKey[k]
		n := float64(a.hosts)
		idle, p50, peak := a.idle/n, a.p50/n, a.peak/n
		c0, c1, c2 := Quadratic(idle, p50, peak)
		line := Line{
			Name:  fmt.Sprintf("%s · %s (%s)", k.model, k.scope, hostsText(a.hosts)),
			Color: paletteColor(i), Dash: k.family == "x86",
		}
		for s := range curveSteps + 1 {
			u := float64(s) / curveSteps
			line.Points = append(line.Points, XY{100 * u, c0 + c1*u + c2*u*u})
		}
		line.Markers = []Marker{
			{X: 0, Y: idle, Label: fmt.Sprintf("%s idle: %s W", k.model, sig(idle))},
			{X: 100, Y: peak, Label: fmt.Sprintf("%s peak: %s W", k.model, sig(peak))},
		}
		l.Series = append(l.Series, line)
		desc = append(desc, fmt.Sprintf("%s (%s, %s): idle %s W, half load %s W, peak %s W.", k.model, k.family, k.scope, sig(idle), sig(p50), sig(peak)))
	}
	l.Desc = strings.Join(desc, " ")
	if l.Desc == "" {
		l.Desc = "No host has a fitted power curve in this range."
	}
	return l.Drawing()
}

func hostsText(n int) string {
	if n == 1 {
		return "1 host"
	}
	return fmt.Sprintf("%d hosts", n)
}

// Footprint draws the electricity cost and the carbon of each region's energy over the range,
// per architecture.
func Footprint(rep *report.Report) *Drawing {
	type key struct{ region, family string }
	cost, carbon := map[key]float64{}, map[key]float64{}
	missing := map[string]bool{}
	var regionNames, families []string
	for _, g := range rep.Groups {
		r := cmp.Or(g.Region, "(all regions)")
		if g.CostUSD == nil || g.CarbonKgCO2e == nil {
			missing[r] = true
			continue
		}
		k := key{r, family(g.Arch)}
		cost[k] += *g.CostUSD
		carbon[k] += *g.CarbonKgCO2e
		if !slices.Contains(regionNames, r) {
			regionNames = append(regionNames, r)
		}
		if !slices.Contains(families, k.family) {
			families = append(families, k.family)
		}
	}
	slices.Sort(regionNames)
	slices.SortFunc(families, func(a, b string) int {
		return cmp.Or(cmp.Compare(familyRank(a), familyRank(b)), strings.Compare(a, b))
	})
	b := Bars{
		Name: NameFootprint, Title: "Electricity cost and carbon per region",
		Subtitle: rangeText(rep.From, rep.To) + "; energy over the range × the region's price or grid intensity × PUE",
		Footnote: "Each host's energy at its widest measured scope; facility overhead (PUE) included, embodied carbon not.",
	}
	for _, f := range families {
		b.Series = append(b.Series, Series{f, familyColor(f)})
	}
	if len(missing) > 0 {
		names := make([]string, 0, len(missing))
		for r := range missing {
			names = append(names, r)
		}
		slices.Sort(names)
		b.Footnote += " No factors, left out: " + strings.Join(names, ", ") + "."
	}
	panel := func(title, label, unit string, m map[key]float64) BarPanel {
		p := BarPanel{Title: title, YLabel: label, Unit: unit}
		for _, r := range regionNames {
			p.Categories = append(p.Categories, Category{Name: r})
			row := make([]*Bar, len(families))
			for i, f := range families {
				if v, ok := m[key{r, f}]; ok {
					row[i] = &Bar{Value: v}
				}
			}
			p.Values = append(p.Values, row)
		}
		return p
	}
	b.Panels = []BarPanel{
		panel("Electricity cost", "cost over the range (USD)", "USD", cost),
		panel("Carbon", "carbon over the range (kg CO2e)", "kg CO2e", carbon),
	}
	var desc []string
	for _, r := range regionNames {
		for _, f := range families {
			k := key{r, f}
			if _, ok := cost[k]; ok {
				desc = append(desc, fmt.Sprintf("%s %s: %s USD, %s kg CO2e.", r, f, sig(cost[k]), sig(carbon[k])))
			}
		}
	}
	b.Desc = strings.Join(desc, " ")
	if b.Desc == "" {
		b.Desc = "No region with price and carbon factors has hosts in this range."
	}
	return b.Drawing()
}

func familyRank(f string) int {
	switch f {
	case "ARM":
		return 0
	case "x86":
		return 1
	}
	return 2
}

func familyColor(f string) color.NRGBA {
	switch f {
	case "ARM":
		return armColour
	case "x86":
		return x86Colour
	}
	return otherColor
}
