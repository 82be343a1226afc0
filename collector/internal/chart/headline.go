package chart

import (
	"fmt"
	"math"

	"github.com/fleetwatt/fleetwatt/collector/internal/report"
)

// Headline answers, for one region's comparison, "is ARM cheaper per busy core here, and by
// how much?" in a sentence: "cn-shenzhen: ARM costs 41 % less per busy core (95 % CI 38–44 %):
// $6.12 vs $10.41 per busy core-year; ...". Without a price for the region it compares watts.
func Headline(c report.Comparison) string { return c.Region + ": " + headlineText(c) }

func headlineText(c report.Comparison) string {
	if c.Scope == "" || c.WPerBusyCore == nil {
		if c.Note != "" {
			return "no comparison: " + c.Note
		}
		return "no comparison: neither pool has hosts with a fitted power curve"
	}
	d, verb, what := c.USDPerBusyCoreYear, "costs", "per busy core"
	if d == nil {
		d, verb, what = c.WPerBusyCore, "draws", "power per busy core"
	}
	dir := "less"
	if d.RelDiff > 0 {
		dir = "more"
	}
	var s string
	switch {
	case d.CI95 == nil:
		s = fmt.Sprintf("ARM %s %s %s %s (no confidence interval: fewer than two hosts in a pool)",
			verb, magnitude(d.RelDiff, d.RelDiff), dir, what)
	case d.CI95[0] < 0 && d.CI95[1] > 0:
		s = fmt.Sprintf("no clear difference: ARM %s %s %s %s, but the 95 %% CI runs from %s to %s",
			verb, magnitude(d.RelDiff, d.RelDiff), dir, what, signedWords(d.CI95[0]), signedWords(d.CI95[1]))
	default:
		lo, hi := math.Abs(d.CI95[0]), math.Abs(d.CI95[1])
		lo, hi = math.Min(lo, hi), math.Max(lo, hi)
		s = fmt.Sprintf("ARM %s %s %s %s (95 %% CI %s–%s)",
			verb, magnitude(d.RelDiff, lo), dir, what, strip(magnitude(lo, lo)), magnitude(hi, lo))
	}
	if c.USDPerBusyCoreYear == nil {
		return s + fmt.Sprintf(": %s vs %s W per busy core (no electricity price for this region)", sig(d.ARM), sig(d.X86))
	}
	s += fmt.Sprintf(": %s vs %s per busy core-year", money(d.ARM), money(d.X86))
	if k := c.KgCO2ePerBusyCoreYear; k != nil {
		s += fmt.Sprintf(", %s vs %s kg CO2e", sig(k.ARM), sig(k.X86))
	}
	if c.AtUtil != nil {
		s += fmt.Sprintf(", both at %s %% utilization", num(100**c.AtUtil, 1))
	}
	return s
}

// magnitude writes |v| as a percentage: whole percents, or one decimal when ref is under 10 %.
func magnitude(v, ref float64) string {
	prec := 0
	if math.Abs(ref) < 0.0995 {
		prec = 1
	}
	return num(100*math.Abs(v), prec) + " %"
}

func strip(s string) string { return s[:len(s)-len(" %")] }

// signedWords writes a relative difference as "8 % less" or "2.5 % more".
func signedWords(v float64) string {
	if v < 0 {
		return magnitude(v, v) + " less"
	}
	return magnitude(v, v) + " more"
}

// money writes dollars: cents from a dollar up, else three significant digits.
func money(v float64) string {
	if math.Abs(v) >= 1 {
		return "$" + num(v, 2)
	}
	return "$" + sig(v)
}
