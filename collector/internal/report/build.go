package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is the efficiency report over a range. Its JSON form is documented in docs/report.md.
type Report struct {
	// From and To are the range covered, UTC: [From, To), whole hours, or whole days for a
	// range of 28 days or more (Range).
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Hours is the number of hours in the range.
	Hours int `json:"hours"`
	// By lists the grouping keys.
	By          []string     `json:"by"`
	Groups      []Group      `json:"groups"`
	Comparisons []Comparison `json:"comparisons"`
	// Notes say what the numbers leave out or assume: hosts dropped, regions without factors,
	// comparisons impossible.
	Notes []string `json:"notes"`
}

// Group is one group of hosts: the per-group numbers of the report, and what the capacity
// plan reads. Every host counts with one power scope (Scope) and one source per scope.
// Fields that cannot be computed are nil (null in JSON).
type Group struct {
	// Region, Zone, Arch, CPUModel and Scope are the group's keys. A key the report is not
	// grouped by holds the value its hosts share, or "" when they differ. Scope is always set:
	// a group never mixes scopes.
	Region   string `json:"region"`
	Zone     string `json:"zone"`
	Arch     string `json:"arch"`
	CPUModel string `json:"cpu_model"`
	Scope    string `json:"scope"`

	// Hosts is the number of hosts; HostsFitted those whose power curve could be fitted (the
	// hosts behind IdleW, P50W and PeakW); HostsWithWork those that reported work.
	Hosts         int `json:"hosts"`
	HostsFitted   int `json:"hosts_fitted"`
	HostsWithWork int `json:"hosts_with_work"`
	// CoresPerHost is the mean number of logical CPUs per host (Σ total_s / Σ cpu_interval_s
	// per host).
	CoresPerHost float64 `json:"cores_per_host"`
	// AvgUtil is Σ busy CPU-seconds / Σ CPU-seconds over the group's hosts, 0..1.
	AvgUtil float64 `json:"avg_util"`
	// BusyCores is the group's average number of busy logical CPUs, all hosts together.
	BusyCores float64 `json:"busy_cores"`
	// AvgPowerW is the mean over hosts of each host's average power (Σ energy / Σ interval), W.
	AvgPowerW float64 `json:"avg_power_w"`
	// EnergyKWh is the energy the group's hosts used over the range, kWh (IT energy, before PUE).
	EnergyKWh float64 `json:"energy_kwh"`
	// WPerBusyCore is the group's average power divided by its average busy logical CPUs,
	// Σ_hosts avg power / Σ_hosts avg busy CPUs, W per busy logical CPU; idle power included.
	// Nil when no CPU was busy.
	WPerBusyCore *float64 `json:"w_per_busy_core"`
	// IdleW, P50W and PeakW are the fitted power at 0 %, 50 % and 100 % utilization, the
	// mean over the fitted hosts, W. Nil when no host could be fitted.
	IdleW *float64 `json:"idle_w"`
	P50W  *float64 `json:"p50_w"`
	PeakW *float64 `json:"peak_w"`
	// IdleToPeak is IdleW / PeakW: 0 is perfectly energy proportional, 1 not at all.
	IdleToPeak *float64 `json:"idle_to_peak"`
	// OpsPerJoule is Σ ops / Σ energy over the hosts that report work, operations per J. Nil
	// when none does.
	OpsPerJoule *float64 `json:"ops_per_joule"`
	// OpsPerSecond is the group's work rate, Σ over those hosts of ops / cpu_interval_s.
	OpsPerSecond *float64 `json:"ops_per_second"`
	// USDPerCoreYear and KgCO2ePerCoreYear are the electricity cost and carbon of one logical
	// CPU for a year at the group's observed utilization: Σ_hosts avg power × 8766 h ×
	// the region's USD/kWh (or kg CO2e/kWh), PUE included, / Σ_hosts logical CPUs. Nil when a
	// host's region has no factors.
	USDPerCoreYear    *float64 `json:"usd_per_core_year"`
	KgCO2ePerCoreYear *float64 `json:"kgco2_per_core_year"`
	// CostUSD and CarbonKgCO2e are the electricity cost and carbon of the group's energy over
	// the range: Σ_hosts energy (kWh) × the region's USD/kWh (or kg CO2e/kWh), PUE included.
	// Nil when a host's region has no factors.
	CostUSD      *float64 `json:"cost_usd"`
	CarbonKgCO2e *float64 `json:"carbon_kgco2e"`
}

// Comparison is ARM against x86 in one region, on one power scope, at matched utilization.
type Comparison struct {
	Region string `json:"region"`
	// Scope is the power scope both pools are measured on; "" when they have none in common,
	// and then Note says why and the metrics are nil.
	Scope string `json:"scope"`
	// ARMHosts and X86Hosts are the hosts compared (fitted, on Scope).
	ARMHosts  int      `json:"arm_hosts"`
	X86Hosts  int      `json:"x86_hosts"`
	ARMModels []string `json:"arm_models"`
	X86Models []string `json:"x86_models"`
	// AtUtil is the utilization both pools' fitted curves are evaluated at: the x86 pool's
	// average utilization (Σ busy / Σ total), 0..1.
	AtUtil *float64 `json:"at_util"`
	// WPerBusyCore compares watts per busy logical CPU at AtUtil: lower is better.
	WPerBusyCore *Delta `json:"w_per_busy_core"`
	// OpsPerJoule compares operations per joule at AtUtil: higher is better. Nil unless
	// both pools report work.
	OpsPerJoule *Delta `json:"ops_per_joule"`
	// USDPerBusyCoreYear and KgCO2ePerBusyCoreYear compare the electricity cost and carbon
	// of keeping one logical CPU busy for a year at AtUtil: WPerBusyCore × 8766 h / 1000 ×
	// the region's USD/kWh (kg CO2e/kWh), PUE included. Both pools pay the region's price, so
	// RelDiff and CI95 are those of WPerBusyCore. Nil when the region has no factors.
	USDPerBusyCoreYear    *Delta `json:"usd_per_busy_core_year"`
	KgCO2ePerBusyCoreYear *Delta `json:"kgco2e_per_busy_core_year"`
	Note                  string `json:"note,omitempty"`
}

// Delta is one metric of a comparison.
type Delta struct {
	ARM float64 `json:"arm"`
	X86 float64 `json:"x86"`
	// RelDiff is ARM / X86 − 1.
	RelDiff float64 `json:"rel_diff"`
	// CI95 is the 95 % percentile bootstrap interval of RelDiff, hosts resampled within each
	// pool; nil when a pool has fewer than two hosts.
	CI95      *[2]float64 `json:"ci95"`
	Resamples int         `json:"resamples"`
}

// Build computes the report from the rows Fetch returned. It does no I/O.
func Build(rows []HostRow, opts Options) (*Report, error) {
	by := opts.By
	if by == nil {
		by = slices.Clone(DefaultBy)
	}
	for _, k := range by {
		if !slices.Contains(Keys, k) {
			return nil, fmt.Errorf("%w: group by %q: want any of %s", ErrBadOptions, k, strings.Join(Keys, ", "))
		}
	}
	rep := &Report{
		From: opts.From.UTC(), To: opts.To.UTC(), By: by,
		Hours:       int(opts.To.Sub(opts.From) / time.Hour),
		Groups:      []Group{},
		Comparisons: []Comparison{},
		Notes:       []string{},
	}
	all, notes := hosts(rows)
	rep.Notes = append(rep.Notes, notes...)
	members := all
	if !slices.Contains(by, KeyScope) {
		members = preferred(all)
		if len(members) < len(all) {
			rep.Notes = append(rep.Notes, "hosts with several power scopes count once, with their widest ("+
				strings.Join(ScopePreference[:4], " > ")+"); group by scope to see every scope")
		}
	}
	rep.Groups, notes = groups(members, by, opts)
	rep.Notes = append(rep.Notes, notes...)
	rep.Comparisons = compare(all, opts)
	for i := range rep.Groups {
		rep.Groups[i].round()
	}
	for i := range rep.Comparisons {
		rep.Comparisons[i].round()
	}
	if len(rows) == 0 {
		rep.Notes = append(rep.Notes, "no rollups in the range: has the collector's rollup run (fleetwatt-collector rollup --from --to after a backfill)?")
	}
	return rep, nil
}

// Significant digits the report's numbers keep: far more than the measurements' accuracy,
// and few enough that the output is the same on every platform (arm64 fuses multiply-adds).
const significant = 6

func round(v float64) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', significant, 64), 64)
	return r
}

func roundPtr(v *float64) {
	if v != nil {
		*v = round(*v)
	}
}

func (g *Group) round() {
	for _, v := range []*float64{&g.CoresPerHost, &g.AvgUtil, &g.BusyCores, &g.AvgPowerW, &g.EnergyKWh} {
		*v = round(*v)
	}
	for _, v := range []*float64{
		g.WPerBusyCore, g.IdleW, g.P50W, g.PeakW, g.IdleToPeak, g.OpsPerJoule,
		g.OpsPerSecond, g.USDPerCoreYear, g.KgCO2ePerCoreYear, g.CostUSD, g.CarbonKgCO2e,
	} {
		roundPtr(v)
	}
}

func (c *Comparison) round() {
	roundPtr(c.AtUtil)
	for _, d := range []*Delta{c.WPerBusyCore, c.OpsPerJoule, c.USDPerBusyCoreYear, c.KgCO2ePerBusyCoreYear} {
		if d == nil {
			continue
		}
		d.ARM, d.X86, d.RelDiff = round(d.ARM), round(d.X86), round(d.RelDiff)
		if d.CI95 != nil {
			d.CI95[0], d.CI95[1] = round(d.CI95[0]), round(d.CI95[1])
		}
	}
}

type groupKey [5]string // region, zone, arch, cpu_model, scope

func keyOf(h host, by []string) groupKey {
	var k groupKey
	vals := [5]string{h.Region, h.Zone, h.Arch, h.CPUModel, h.Scope}
	for i, name := range Keys {
		if name == KeyScope || slices.Contains(by, name) {
			k[i] = vals[i]
		}
	}
	return k
}

func groups(hs []host, by []string, opts Options) ([]Group, []string) {
	byKey := map[groupKey][]host{}
	var keys []groupKey
	for _, h := range hs {
		k := keyOf(h, by)
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], h)
	}
	slices.SortFunc(keys, func(a, b groupKey) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]), strings.Compare(a[2], b[2]),
			strings.Compare(a[3], b[3]), cmp.Compare(rank(ScopePreference, a[4]), rank(ScopePreference, b[4])),
			strings.Compare(a[4], b[4]))
	})
	out := make([]Group, 0, len(keys))
	unknown := map[string]bool{}
	unfitted := 0
	for _, k := range keys {
		g := group(byKey[k], opts, unknown)
		unfitted += g.Hosts - g.HostsFitted
		out = append(out, g)
	}
	var notes []string
	if len(unknown) > 0 {
		rs := make([]string, 0, len(unknown))
		for r := range unknown {
			rs = append(rs, cmp.Or(r, `""`))
		}
		slices.Sort(rs)
		notes = append(notes, fmt.Sprintf("no price or carbon factors for region %s: usd_per_core_year and kgco2_per_core_year are null for its groups (add the region with --regions FILE)",
			strings.Join(rs, ", ")))
	}
	if unfitted > 0 {
		notes = append(notes, fmt.Sprintf("%s too few samples or too little spread in utilization for a power curve: counted everywhere but in idle_w, p50_w, peak_w and the comparisons",
			plural(unfitted, "host has", "hosts have")))
	}
	return out, notes
}

func ptr(v float64) *float64 { return &v }

func group(hs []host, opts Options, unknownRegions map[string]bool) Group {
	g := Group{Hosts: len(hs)}
	shared := func(get func(host) string) string {
		v := get(hs[0])
		for _, h := range hs[1:] {
			if get(h) != v {
				return ""
			}
		}
		return v
	}
	g.Region = shared(func(h host) string { return h.Region })
	g.Zone = shared(func(h host) string { return h.Zone })
	g.Arch = shared(func(h host) string { return h.Arch })
	g.CPUModel = shared(func(h host) string { return h.CPUModel })
	g.Scope = shared(func(h host) string { return h.Scope })

	var busy, total, cores, busyCores, power, energy float64
	var idle, p50, peak float64
	var ops, opsEnergy, opsRate float64
	var usd, kg, usdRange, kgRange float64
	factorsKnown := true
	for _, h := range hs {
		busy += h.Busy
		total += h.Total
		cores += h.cores
		busyCores += h.busyCores
		power += h.power
		energy += h.Energy
		if h.curve.Valid() {
			g.HostsFitted++
			idle += h.curve.At(0)
			p50 += h.curve.At(0.5)
			peak += h.curve.At(1)
		}
		if h.HasOps {
			g.HostsWithWork++
			ops += h.Ops
			opsEnergy += h.Energy
			opsRate += h.Ops / h.CPUInterval
		}
		if f, ok := opts.Regions.Get(h.Region); ok {
			kwhYear := h.power * HoursPerYear / 1000
			usd += kwhYear * f.USDPerKWh()
			kg += kwhYear * f.KgCO2ePerKWh()
			usdRange += h.Energy / 3.6e6 * f.USDPerKWh()
			kgRange += h.Energy / 3.6e6 * f.KgCO2ePerKWh()
		} else {
			factorsKnown = false
			unknownRegions[h.Region] = true
		}
	}
	n := float64(len(hs))
	g.CoresPerHost = cores / n
	g.AvgUtil = busy / total
	g.BusyCores = busyCores
	g.AvgPowerW = power / n
	g.EnergyKWh = energy / 3.6e6
	if busyCores > 0 {
		g.WPerBusyCore = ptr(power / busyCores)
	}
	if g.HostsFitted > 0 {
		f := float64(g.HostsFitted)
		g.IdleW, g.P50W, g.PeakW = ptr(idle/f), ptr(p50/f), ptr(peak/f)
		if peak > 0 {
			g.IdleToPeak = ptr(idle / peak)
		}
	}
	if g.HostsWithWork > 0 && opsEnergy > 0 {
		g.OpsPerJoule = ptr(ops / opsEnergy)
		g.OpsPerSecond = ptr(opsRate)
	}
	if factorsKnown && cores > 0 {
		g.USDPerCoreYear = ptr(usd / cores)
		g.KgCO2ePerCoreYear = ptr(kg / cores)
	}
	if factorsKnown {
		g.CostUSD, g.CarbonKgCO2e = ptr(usdRange), ptr(kgRange)
	}
	return g
}
