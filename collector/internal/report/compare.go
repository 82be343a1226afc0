package report

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// DefaultResamples is the bootstrap's resample count.
const DefaultResamples = 2000

// DefaultSeed seeds the bootstrap when Options.Seed is 0, so that a report is reproducible.
const DefaultSeed = 20260901

// Architecture families, from the arch tag (OpenTelemetry's host.arch values).
func family(arch string) string {
	switch arch {
	case "arm64", "arm32", "arm", "aarch64":
		return "arm"
	case "amd64", "x86", "386", "x86_64":
		return "x86"
	}
	return ""
}

// compare compares ARM and x86 per region. hs holds every host at every scope it has.
func compare(hs []host, opts Options) []Comparison {
	byRegion := map[string][]host{}
	for _, h := range hs {
		if family(h.Arch) != "" {
			byRegion[h.Region] = append(byRegion[h.Region], h)
		}
	}
	regionNames := make([]string, 0, len(byRegion))
	for r := range byRegion {
		regionNames = append(regionNames, r)
	}
	slices.Sort(regionNames)
	var out []Comparison
	for _, r := range regionNames {
		if c, ok := compareRegion(r, byRegion[r], opts); ok {
			out = append(out, c)
		}
	}
	if out == nil {
		out = []Comparison{}
	}
	return out
}

// scopesOf returns the scopes that the hosts of one family have fitted curves on, in
// preference order.
func scopesOf(hs []host, fam string) []string {
	var s []string
	for _, h := range hs {
		if family(h.Arch) == fam && h.curve.Valid() && !slices.Contains(s, h.Scope) {
			s = append(s, h.Scope)
		}
	}
	slices.SortFunc(s, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(ScopePreference, a), rank(ScopePreference, b)), strings.Compare(a, b))
	})
	return s
}

func models(hs []host) []string {
	var m []string
	for _, h := range hs {
		if !slices.Contains(m, h.CPUModel) {
			m = append(m, h.CPUModel)
		}
	}
	slices.Sort(m)
	return m
}

func compareRegion(region string, hs []host, opts Options) (Comparison, bool) {
	c := Comparison{Region: region, ARMModels: []string{}, X86Models: []string{}}
	hasFam := func(fam string) bool {
		return slices.ContainsFunc(hs, func(h host) bool { return family(h.Arch) == fam })
	}
	if !hasFam("arm") || !hasFam("x86") {
		return c, false // nothing to compare in a one-architecture region
	}
	armScopes, x86Scopes := scopesOf(hs, "arm"), scopesOf(hs, "x86")
	for _, s := range armScopes {
		if slices.Contains(x86Scopes, s) {
			c.Scope = s
			break
		}
	}
	if c.Scope == "" {
		list := func(s []string) string {
			if len(s) == 0 {
				return "no fitted power curve"
			}
			return strings.Join(s, ", ")
		}
		c.Note = fmt.Sprintf("no common power scope: ARM hosts have %s, x86 hosts have %s; "+
			"comparing different scopes would compare different measurement boundaries, so there is no comparison",
			list(armScopes), list(x86Scopes))
		return c, true
	}
	var arm, x86 []host
	for _, h := range hs {
		if h.Scope != c.Scope || !h.curve.Valid() {
			continue
		}
		switch family(h.Arch) {
		case "arm":
			arm = append(arm, h)
		case "x86":
			x86 = append(x86, h)
		}
	}
	c.ARMHosts, c.X86Hosts = len(arm), len(x86)
	c.ARMModels, c.X86Models = models(arm), models(x86)
	var busy, total float64
	for _, h := range x86 {
		busy += h.Busy
		total += h.Total
	}
	u := busy / total
	c.AtUtil = ptr(u)

	seed := cmp.Or(opts.Seed, DefaultSeed)
	resamples := cmp.Or(opts.Resamples, DefaultResamples)
	hash := fnv.New64a()
	hash.Write([]byte(region + "\x00" + c.Scope))
	stream := func() *rand.Rand {
		// The bootstrap needs a reproducible stream, not an unpredictable one.
		return rand.New(rand.NewPCG(seed, hash.Sum64())) //nolint:gosec // G404: reproducibility is the point
	}
	rng := stream()

	// Watts per busy CPU at u: Σ P_h(u) / Σ u·cores_h.
	wpb := func(hs []host) terms {
		t := terms{num: make([]float64, len(hs)), den: make([]float64, len(hs))}
		for i, h := range hs {
			t.num[i], t.den[i] = h.curve.At(u), u*h.cores
		}
		return t
	}
	c.WPerBusyCore = delta(wpb(arm), wpb(x86), rng, resamples)
	if f, ok := opts.Regions.Get(region); ok && c.WPerBusyCore != nil {
		// A watt drawn all year costs 8766 h / 1000 × USD/kWh. The same price for both pools
		// cancels in every ratio: the same resamples (a stream from the same seed) give
		// the interval of WPerBusyCore, in money and carbon.
		perYear := func(perKWh float64) *Delta {
			return delta(wpb(arm).scaled(HoursPerYear/1000.0*perKWh), wpb(x86).scaled(HoursPerYear/1000.0*perKWh), stream(), resamples)
		}
		c.USDPerBusyCoreYear = perYear(f.USDPerKWh())
		c.KgCO2ePerBusyCoreYear = perYear(f.KgCO2ePerKWh())
	}

	// Operations per joule at u: the host's work per busy CPU-second (ops / busy_s) times its
	// busy CPUs at u, over its fitted power at u.
	opj := func(hs []host) terms {
		var t terms
		for _, h := range hs {
			if h.HasOps && h.Busy > 0 {
				t.num = append(t.num, h.Ops/h.Busy*u*h.cores)
				t.den = append(t.den, h.curve.At(u))
			}
		}
		return t
	}
	if a, x := opj(arm), opj(x86); len(a.num) > 0 && len(x.num) > 0 {
		c.OpsPerJoule = delta(a, x, rng, resamples)
	}
	if c.ARMHosts < 2 || c.X86Hosts < 2 {
		c.Note = "fewer than two hosts in a pool: no confidence interval"
	}
	return c, true
}

// terms are per-host numerators and denominators of a ratio of sums.
type terms struct{ num, den []float64 }

// scaled multiplies the numerators by k: the ratio in other units.
func (t terms) scaled(k float64) terms {
	s := terms{num: make([]float64, len(t.num)), den: t.den}
	for i, v := range t.num {
		s.num[i] = v * k
	}
	return s
}

func (t terms) ratio() float64 {
	var n, d float64
	for i := range t.num {
		n += t.num[i]
		d += t.den[i]
	}
	return n / d
}

// resampled is the ratio of sums over a resample (with replacement) of the hosts.
func (t terms) resampled(rng *rand.Rand) float64 {
	var n, d float64
	for range t.num {
		i := rng.IntN(len(t.num))
		n += t.num[i]
		d += t.den[i]
	}
	return n / d
}

// delta compares a with x and bootstraps the relative difference's 95 % interval: hosts are
// the experimental unit, so each resample draws hosts with replacement within each pool.
func delta(a, x terms, rng *rand.Rand, resamples int) *Delta {
	d := &Delta{ARM: a.ratio(), X86: x.ratio()}
	d.RelDiff = d.ARM/d.X86 - 1
	if !finite(d.ARM, d.X86, d.RelDiff) {
		return nil
	}
	if len(a.num) < 2 || len(x.num) < 2 {
		return d
	}
	diffs := make([]float64, 0, resamples)
	for range resamples {
		v := a.resampled(rng)/x.resampled(rng) - 1
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			diffs = append(diffs, v)
		}
	}
	if len(diffs) == 0 {
		return d
	}
	slices.Sort(diffs)
	d.CI95 = &[2]float64{quantile(diffs, 0.025), quantile(diffs, 0.975)}
	d.Resamples = len(diffs)
	return d
}

// quantile is the q-quantile of sorted values, interpolated linearly (R's type 7).
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}
