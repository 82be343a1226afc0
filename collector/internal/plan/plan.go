// Package plan answers the capacity planner's question: in one region, if a share of one pool's
// load moves to another CPU model at a target utilization, how many hosts go and come, and how
// many kWh, US dollars and tonnes of CO2e a year does that save?
//
// It is pure computation on what the report measures (per-pool hosts, logical CPUs, average
// utilization, the idle and peak watts of the fitted power curve, ops per busy core-second) and
// on a region's factors (price, grid intensity, PUE); it reads no database. docs/plan.md gives
// the formulas and the JSON contract.
package plan

import (
	"errors"
	"fmt"
	"math"

	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
)

// HoursPerYear is the length of the planning year, h: 365.25 days, so that leap years average out.
const HoursPerYear = 8766.0

// The bases a load can be measured on.
const (
	// BasisCores moves busy logical CPUs (busy core-seconds per second): a busy logical CPU on
	// the target pool is taken to do the work of a busy logical CPU on the source pool.
	BasisCores = "cores"
	// BasisWork moves operations per second, converted to busy logical CPUs with each pool's
	// measured ops per busy core-second; it needs both pools to report work.
	BasisWork = "work"
)

// maxHosts bounds the hosts a plan may add, so that absurd inputs (a pool of 10⁻⁹ logical CPUs
// per host) get an error rather than an integer overflow.
const maxHosts = 10_000_000

// Upper bounds on a pool's per-host figures: beyond them a number is a typo, and the sums could
// overflow to infinity.
const (
	maxCoresPerHost = 1e6  // logical CPUs
	maxWatts        = 1e6  // W per host
	maxOpsPerCore   = 1e12 // ops per busy core-second
)

// hostEpsilon keeps ceil from adding a host for floating-point noise: 20.000000000004 hosts'
// worth of load needs 20 hosts.
const hostEpsilon = 1e-9

// Pool is one group of identical hosts in a region, as the report summarizes it over a time range.
type Pool struct {
	Region   string `json:"region"`
	Arch     string `json:"arch"`
	CPUModel string `json:"cpu_model"`
	// Scope is the power boundary the watts were measured at (wall, cpu-package, ...; see
	// docs/schema.md). Two pools are only compared on the same scope.
	Scope string `json:"scope"`
	// Hosts is the number of hosts in the pool.
	Hosts int `json:"hosts"`
	// CoresPerHost is logical CPUs per host (what /proc/stat counts, SMT threads included).
	CoresPerHost float64 `json:"cores_per_host"`
	// AvgUtil is the pool's average CPU utilization, 0..1 (busy logical CPUs ÷ logical CPUs).
	AvgUtil float64 `json:"avg_util"`
	// IdleW and PeakW are per-host power at 0 % and 100 % utilization, W, the endpoints of the
	// power curve the report fits.
	IdleW float64 `json:"idle_w"`
	PeakW float64 `json:"peak_w"`
	// OpsPerCoreSecond is the work done per busy logical-CPU-second, ops/s; 0 when the pool
	// reports no work.
	OpsPerCoreSecond float64 `json:"ops_per_core_second"`
}

// PowerAt is one host's power at utilization u (0..1), W: idle + (peak − idle)·u.
//
// The report fits each pool's power curve and hands over its endpoints; the plan uses them as
// a straight line. That is exact for linear hosts and the CCF model. For a concave curve (the
// Teads shape) the line reads low in mid-range, by up to about a fifth of peak − idle near
// 50 %; but the plan compares the same kind of estimate on both sides, and most of a saving
// comes from the idle power of the hosts that go, which the endpoints carry exactly. Between
// idle and peak the line is therefore a fair basis for a decision, and it is what the report's
// JSON contract (idle_w, peak_w) can carry.
func (p Pool) PowerAt(u float64) float64 { return p.IdleW + (p.PeakW-p.IdleW)*u }

// busyCores is the pool's load in busy logical CPUs on the given number of hosts.
func (p Pool) busyCores(hosts int) float64 { return float64(hosts) * p.CoresPerHost * p.AvgUtil }

// name is how the text formats call the pool.
func (p Pool) name() string {
	switch {
	case p.CPUModel != "":
		return p.CPUModel
	case p.Arch != "":
		return p.Arch
	}
	return "(unnamed pool)"
}

// Request is one planning question.
type Request struct {
	// Region is where both pools are; a plan never moves load between regions.
	Region string `json:"region"`
	// From is the pool that gives up load, To the pool that takes it.
	From Pool `json:"from"`
	To   Pool `json:"to"`
	// Share is the part of From's load moved, 0..1; it moves with whole hosts (see Compute).
	Share float64 `json:"share"`
	// TargetUtil is the utilization the moved load is planned at on To's new hosts, (0, 1].
	TargetUtil float64 `json:"target_util"`
	// Basis is BasisCores or BasisWork; "" means BasisCores.
	Basis string `json:"basis"`
}

// basis is the effective basis.
func (r Request) basis() string {
	if r.Basis == "" {
		return BasisCores
	}
	return r.Basis
}

// hostsRemoved is round(Share × From.Hosts).
func (r Request) hostsRemoved() int { return int(math.Round(r.Share * float64(r.From.Hosts))) }

// Validate returns every problem with the request, each naming its field, joined with
// errors.Join; nil when the request can be computed.
func (r Request) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if r.Region == "" {
		add("region: required")
	}
	if r.From.Region != r.To.Region {
		add("from.region %q, to.region %q: the pools are in different regions; a plan moves load within one region", r.From.Region, r.To.Region)
	} else if r.Region != "" && r.From.Region != r.Region {
		add("from.region and to.region %q: the plan is for region %q", r.From.Region, r.Region)
	}
	if r.From.Scope != r.To.Scope {
		add("from.scope %q, to.scope %q: the scopes differ; power measured at different boundaries is never compared (nor is it in the report), so plan between pools of one scope", r.From.Scope, r.To.Scope)
	}
	// !(x > 0) and !(x <= 1) also refuse NaN.
	if !(r.Share > 0 && r.Share <= 1) {
		add("share %v: out of range, want a fraction of the load in (0, 1]", r.Share)
	} else if r.From.Hosts > 0 && r.hostsRemoved() == 0 {
		add("share %v of %d hosts: rounds to no host; load moves with whole hosts", r.Share, r.From.Hosts)
	}
	if !(r.TargetUtil > 0 && r.TargetUtil <= 1) {
		add("target_util %v: out of range, want a utilization in (0, 1]", r.TargetUtil)
	}
	switch r.basis() {
	case BasisCores:
	case BasisWork:
		if !(r.From.OpsPerCoreSecond > 0) {
			add("basis work: from (%s) reports no work (ops_per_core_second %v); use basis cores", r.From.name(), r.From.OpsPerCoreSecond)
		}
		if !(r.To.OpsPerCoreSecond > 0) {
			add("basis work: to (%s) reports no work (ops_per_core_second %v); use basis cores", r.To.name(), r.To.OpsPerCoreSecond)
		}
	default:
		add("basis %q: want %q or %q", r.Basis, BasisCores, BasisWork)
	}
	errs = append(errs, r.From.validate("from", true), r.To.validate("to", false))
	return errors.Join(errs...)
}

// validate checks the pool's own numbers; source pools need hosts and a utilization, target
// pools may be empty (a model the region does not run yet).
func (p Pool) validate(path string, source bool) error {
	var errs []error
	add := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf(path+"."+format, a...))
	}
	if source && p.Hosts < 1 {
		add("hosts %d: want at least 1", p.Hosts)
	} else if p.Hosts < 0 || p.Hosts > maxHosts {
		add("hosts %d: want 0..%d", p.Hosts, maxHosts)
	}
	if !(p.CoresPerHost > 0 && p.CoresPerHost <= maxCoresPerHost) {
		add("cores_per_host %v: want a positive number of logical CPUs, at most %v", p.CoresPerHost, maxCoresPerHost)
	}
	if source && !(p.AvgUtil >= 0 && p.AvgUtil <= 1) {
		add("avg_util %v: out of range, want 0..1", p.AvgUtil)
	}
	if !(p.IdleW >= 0 && p.IdleW <= maxWatts) {
		add("idle_w %v: want a power of 0..%v W", p.IdleW, maxWatts)
	}
	if !(p.PeakW > 0 && p.PeakW <= maxWatts) || p.PeakW < p.IdleW {
		add("peak_w %v: want a positive power of at most %v W, at least idle_w (%v W)", p.PeakW, maxWatts, p.IdleW)
	}
	if !(p.OpsPerCoreSecond >= 0 && p.OpsPerCoreSecond <= maxOpsPerCore) {
		add("ops_per_core_second %v: want 0..%v (0: no work reported)", p.OpsPerCoreSecond, maxOpsPerCore)
	}
	return errors.Join(errs...)
}

// Result is a computed plan. Its JSON form is the contract of docs/plan.md: snake_case, units in
// the names, savings positive when the move saves (negative when it costs).
type Result struct {
	Region string `json:"region"`
	Scope  string `json:"scope"`
	// Basis is the effective basis, BasisCores or BasisWork.
	Basis string `json:"basis"`
	From  Pool   `json:"from"`
	To    Pool   `json:"to"`
	// Share is the share of From's load asked for; ShareMoved = HostsRemoved ÷ From.Hosts, what
	// moving whole hosts actually moves.
	Share      float64 `json:"share"`
	ShareMoved float64 `json:"share_moved"`
	// HostsRemoved leave From; HostsAdded join To.
	HostsRemoved int `json:"hosts_removed"`
	HostsAdded   int `json:"hosts_added"`
	// BusyCoresMoved is the moved load in busy logical CPUs on From; BusyCoresNeeded the same
	// load in busy logical CPUs on To (equal on basis cores).
	BusyCoresMoved  float64 `json:"busy_cores_moved"`
	BusyCoresNeeded float64 `json:"busy_cores_needed"`
	// OpsPerSecondMoved is the moved load in ops/s; nil (null) on basis cores.
	OpsPerSecondMoved *float64 `json:"ops_per_second_moved"`
	// ToUtilTarget is the requested utilization of the new hosts; ToUtilActual what they run at
	// once their count is rounded up (≤ target).
	ToUtilTarget float64 `json:"to_util_target"`
	ToUtilActual float64 `json:"to_util_actual"`
	// FromHostW and ToHostW are one removed and one added host's power, W.
	FromHostW float64 `json:"from_host_w"`
	ToHostW   float64 `json:"to_host_w"`
	// KWBefore is the removed hosts' IT power, KWAfter the added hosts', KWSaved the
	// difference, kW. The hosts that stay are unchanged and in neither.
	KWBefore float64 `json:"kw_before"`
	KWAfter  float64 `json:"kw_after"`
	KWSaved  float64 `json:"kw_saved"`
	// HoursPerYear is the year the yearly figures are for, h.
	HoursPerYear float64 `json:"hours_per_year"`
	// KWhPerYearSaved is IT energy (at the servers), kWh/year; FacilityKWhPerYearSaved the same
	// times PUE, what the meter at the data centre's door sees.
	KWhPerYearSaved         float64 `json:"kwh_per_year_saved"`
	FacilityKWhPerYearSaved float64 `json:"facility_kwh_per_year_saved"`
	// USDPerYearSaved is facility energy times the price, USD/year.
	USDPerYearSaved float64 `json:"usd_per_year_saved"`
	// TCO2ePerYearSaved is facility energy times the grid intensity, t CO2e/year (operational
	// only).
	TCO2ePerYearSaved float64 `json:"tco2e_per_year_saved"`
	// Factors are the region's figures used, with their sources.
	Factors regions.Factors `json:"factors"`
	// Assumptions say, in sentences, what the numbers rest on.
	Assumptions []string `json:"assumptions"`
}

// Compute works out the plan for req with the region's factors f. Every error is a problem with
// the input (an HTTP 400), never a failure of the computation.
//
// Load moves with whole hosts: HostsRemoved = round(Share × From.Hosts), and the load moved is
// exactly what those hosts carried, HostsRemoved × From.CoresPerHost × From.AvgUtil busy
// logical CPUs, so that the hosts that stay keep their utilization and power (they are left
// out of before and after alike). On basis work that load is converted to ops/s with
// From.OpsPerCoreSecond and back to To's busy logical CPUs with To.OpsPerCoreSecond. The new
// hosts are HostsAdded = ceil(busy logical CPUs needed ÷ (To.CoresPerHost × TargetUtil)), and
// run at the utilization that leaves them.
func Compute(req Request, f regions.Factors) (Result, error) {
	if err := req.Validate(); err != nil {
		return Result{}, fmt.Errorf("plan: %w", err)
	}
	if err := validFactors(req.Region, f); err != nil {
		return Result{}, fmt.Errorf("plan: %w", err)
	}
	from, to := req.From, req.To
	res := Result{
		Region:       req.Region,
		Scope:        from.Scope,
		Basis:        req.basis(),
		From:         from,
		To:           to,
		Share:        req.Share,
		HostsRemoved: req.hostsRemoved(),
		ToUtilTarget: req.TargetUtil,
		HoursPerYear: HoursPerYear,
		Factors:      f,
	}
	res.ShareMoved = float64(res.HostsRemoved) / float64(from.Hosts)
	res.BusyCoresMoved = from.busyCores(res.HostsRemoved)
	res.BusyCoresNeeded = res.BusyCoresMoved
	if res.Basis == BasisWork {
		ops := res.BusyCoresMoved * from.OpsPerCoreSecond
		res.OpsPerSecondMoved = &ops
		res.BusyCoresNeeded = ops / to.OpsPerCoreSecond
	}
	hosts := math.Ceil(res.BusyCoresNeeded/(to.CoresPerHost*req.TargetUtil) - hostEpsilon)
	if !(hosts <= maxHosts) {
		return Result{}, fmt.Errorf("plan: the moved load needs %v hosts of %s, more than %d; check the pools' numbers", hosts, to.name(), maxHosts)
	}
	res.HostsAdded = max(int(hosts), 0)
	if res.HostsAdded > 0 {
		res.ToUtilActual = res.BusyCoresNeeded / (float64(res.HostsAdded) * to.CoresPerHost)
	}
	res.FromHostW = from.PowerAt(from.AvgUtil)
	res.ToHostW = to.PowerAt(res.ToUtilActual)
	res.KWBefore = float64(res.HostsRemoved) * res.FromHostW / 1000
	res.KWAfter = float64(res.HostsAdded) * res.ToHostW / 1000
	res.KWSaved = res.KWBefore - res.KWAfter
	res.KWhPerYearSaved = res.KWSaved * HoursPerYear
	res.FacilityKWhPerYearSaved = res.KWhPerYearSaved * f.PUE
	res.USDPerYearSaved = res.KWhPerYearSaved * f.USDPerKWh()
	res.TCO2ePerYearSaved = res.KWhPerYearSaved * f.KgCO2ePerKWh() / 1000
	res.Assumptions = assumptions(res)
	return res, nil
}

// validFactors refuses factors of another region or figures that would make nonsense.
func validFactors(region string, f regions.Factors) error {
	var errs []error
	if f.Region != region {
		errs = append(errs, fmt.Errorf("factors are for region %q, the plan is for %q", f.Region, region))
	}
	if !(f.PUE >= 1) {
		errs = append(errs, fmt.Errorf("factors: pue %v: want ≥ 1", f.PUE))
	}
	if !(f.PriceUSDPerKWh >= 0) {
		errs = append(errs, fmt.Errorf("factors: price_usd_per_kwh %v: want ≥ 0", f.PriceUSDPerKWh))
	}
	if !(f.GridGCO2ePerKWh >= 0) {
		errs = append(errs, fmt.Errorf("factors: grid_gco2e_per_kwh %v: want ≥ 0", f.GridGCO2ePerKWh))
	}
	return errors.Join(errs...)
}

// scopeNote says what a scope's watts leave out, for the assumptions.
func scopeNote(scope string) string {
	switch scope {
	case "wall":
		return "Power is wall power (PSU input), the whole server."
	case "node-dc":
		return "Power is PSU output: PSU losses are not counted."
	case "estimated-host":
		return "Power is modelled, not measured (the estimated-host scope)."
	case "":
		return "The pools name no power scope: make sure both were measured at the same boundary."
	}
	return fmt.Sprintf("Power is the %s scope only: energy elsewhere in the server is not counted.", scope)
}

// assumptions lists what the result rests on, in the order a reader checks them.
func assumptions(r Result) []string {
	f := r.Factors
	as := []string{
		fmt.Sprintf("A year is %s h (365.25 days) at today's average utilization; savings are a steady-state year.", group(HoursPerYear, 0)),
		"Power per host is linear between the idle and peak watts of the report's fitted curve: P(u) = idle_w + (peak_w - idle_w) × u.",
	}
	switch r.Basis {
	case BasisWork:
		as = append(as, fmt.Sprintf("Basis work: the load moved is %s ops/s; %s does %s ops per busy logical-CPU-second, %s does %s, at any utilization.",
			group(*r.OpsPerSecondMoved, 0), r.From.name(), group(r.From.OpsPerCoreSecond, 0), r.To.name(), group(r.To.OpsPerCoreSecond, 0)))
	default:
		as = append(as, "Basis cores: the load moved is busy logical CPUs (busy core-seconds per second); a busy logical CPU on the target does the work of one on the source, SMT threads and cores alike.")
	}
	as = append(as,
		fmt.Sprintf("Load moves with whole hosts: %d of %d hosts (%s of the load) leave with exactly the load they carried; the hosts that stay keep their %s utilization and power, and are left out of before and after.",
			r.HostsRemoved, r.From.Hosts, pct(r.ShareMoved), pct(r.From.AvgUtil)),
		fmt.Sprintf("New hosts are sized for %s utilization and rounded up to whole hosts.", pct(r.ToUtilTarget)),
		scopeNote(r.Scope),
		fmt.Sprintf("PUE %s (%s): facility energy = IT energy × PUE.", trim(f.PUE, 3), sourced(0, f.PUESource)),
		fmt.Sprintf("Electricity US$%s/kWh (%s).", trim(f.PriceUSDPerKWh, 4), sourced(f.PriceYear, f.PriceSource)),
		fmt.Sprintf("Grid %s gCO2e/kWh, location-based, operational (%s).", trim(f.GridGCO2ePerKWh, 1), sourced(f.GridYear, f.GridSource)),
		"Embodied carbon is not included (building the new servers, about 1,000 kg CO2e each in CCF's base figure, nor what retiring the old ones spares), and neither are hardware, migration or licence costs.",
	)
	return as
}

// sourced cites a figure: "2024; source", or what is missing.
func sourced(year int, source string) string {
	if source == "" {
		source = "no source given"
	}
	if year == 0 {
		return source
	}
	return fmt.Sprintf("%d; %s", year, source)
}
