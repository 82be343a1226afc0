package plan

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
)

// hangzhou carries the figures of research/efficiency.md's worked example (East China grid
// 0.5617 kg/kWh, US$0.09/kWh, PUE 1.3), which are also the shipped cn-hangzhou row; written
// out so that a change to regions.csv cannot move the hand calculations.
var hangzhou = regions.Factors{
	Region: "cn-hangzhou", Name: "Hangzhou",
	PriceUSDPerKWh: 0.09, PriceYear: 2024, PriceSource: "China average industrial tariff [estimate]",
	GridGCO2ePerKWh: 561.7, GridYear: 2022, GridSource: "MEE regional grid factor, East China grid",
	PUE: 1.3, PUESource: "new large DCs < 1.3 [estimate]",
}

// Pools from ../shared/data/specpower_summary.csv and simulator_profiles.csv. CoresPerHost is
// logical CPUs; ops per busy logical-CPU-second is the summary's est. ssj_ops at 100 % per
// physical core × physical cores ÷ logical CPUs.
var (
	// Xeon 8380 2S: 80 cores, 160 threads; 113.9 k × 80 ÷ 160 = 56,950.
	xeon8380 = Pool{
		Region: "cn-hangzhou", Arch: "amd64", CPUModel: "Intel Xeon Platinum 8380 2S", Scope: "wall",
		Hosts: 100, CoresPerHost: 160, AvgUtil: 0.40, IdleW: 121, PeakW: 620, OpsPerCoreSecond: 56950,
	}
	// EPYC 9754 2S: 256 cores, 512 threads; 105.5 k × 256 ÷ 512 = 52,750.
	epyc9754 = Pool{
		Region: "cn-hangzhou", Arch: "amd64", CPUModel: "AMD EPYC 9754 2S", Scope: "wall",
		CoresPerHost: 512, IdleW: 117.5, PeakW: 674, OpsPerCoreSecond: 52750,
	}
	// EPYC 7763 1S, 64 cores, 128 threads, 54–254 W (simulator profile).
	epyc7763 = Pool{
		Region: "cn-hangzhou", Arch: "amd64", CPUModel: "AMD EPYC 7763", Scope: "wall",
		Hosts: 40, CoresPerHost: 128, AvgUtil: 0.35, IdleW: 54, PeakW: 254,
	}
	// Altra Q80-30 1S, 80 cores, no SMT, 54–140 W (the fleet spec).
	altraQ80 = Pool{
		Region: "cn-hangzhou", Arch: "arm64", CPUModel: "Ampere Altra Q80-30", Scope: "wall",
		Hosts: 40, CoresPerHost: 80, AvgUtil: 0.35, IdleW: 54, PeakW: 140,
	}
)

// near fails unless got is within a relative 1e-9 of want.
func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %.12g, want %.12g", what, got, want)
	}
}

func TestPowerAt(t *testing.T) {
	t.Parallel()
	p := Pool{IdleW: 121, PeakW: 620}
	for u, want := range map[float64]float64{0: 121, 0.4: 320.6, 1: 620} {
		near(t, "PowerAt", p.PowerAt(u), want)
	}
}

// TestWorkedExample reproduces the worked example of research/efficiency.md §1.7: replace 100 ×
// 2S Xeon 8380 at 40 % with 2S EPYC 9754 targeted at 60 %.
//
// The example sizes on throughput: N_A = ceil(N_B·T_B·u_B ÷ (T_A·u_A)), with T the est.
// ssj_ops at 100 % of specpower_summary.csv, per physical core × physical cores (Xeon 113.9 k
// × 80 = 9,112,000; EPYC 105.5 k × 256 = 27,008,000), and utilization read as the fraction of
// T. That is our basis work. Our pools count logical CPUs, so their ops per busy CPU-second are
// T ÷ threads (56,950 and 52,750): per host the same T, so cores vs threads does not move the
// answer. (Basis cores would count a busy Xeon thread as a busy EPYC thread: see
// TestWorkedExampleOnCores.)
func TestWorkedExample(t *testing.T) {
	t.Parallel()
	req := Request{Region: "cn-hangzhou", From: xeon8380, To: epyc9754, Share: 1, TargetUtil: 0.60, Basis: BasisWork}
	got, err := Compute(req, hangzhou)
	if err != nil {
		t.Fatal(err)
	}

	// Load: 100 hosts × 160 CPUs × 0.40 = 6,400 busy CPUs; × 56,950 = 364,480,000 ops/s
	// (= 100 × 0.40 × 9,112,000, the example's N_B·T_B·u_B).
	const ops = 100 * 160 * 0.40 * 56950
	near(t, "ops moved", ops, 364_480_000)
	near(t, "busy cores moved", got.BusyCoresMoved, 6400)
	if got.OpsPerSecondMoved == nil {
		t.Fatal("ops_per_second_moved is null on basis work")
	}
	near(t, "ops_per_second_moved", *got.OpsPerSecondMoved, ops)
	// On EPYC: 364,480,000 ÷ 52,750 = 6,909.573 busy CPUs.
	const busy = ops / 52750
	near(t, "busy cores needed", got.BusyCoresNeeded, busy)
	near(t, "busy cores needed", busy, 6909.57345971564)
	// Hosts: ceil(6,909.573 ÷ (512 × 0.60 = 307.2)) = ceil(22.49) = 23.   Example: 23 hosts.
	if got.HostsRemoved != 100 || got.HostsAdded != 23 {
		t.Errorf("hosts removed %d, added %d; want 100 and 23", got.HostsRemoved, got.HostsAdded)
	}
	// Their utilization: 6,909.573 ÷ (23 × 512 = 11,776) = 0.58675.      Example: 59 %.
	const util = busy / (23 * 512)
	near(t, "to_util_actual", got.ToUtilActual, util)
	if pct := math.Round(got.ToUtilActual * 100); pct != 59 {
		t.Errorf("to_util_actual %.4f rounds to %v %%, the example says 59 %%", got.ToUtilActual, pct)
	}
	// Before: 100 × (121 + 0.40 × (620 − 121)) = 100 × 320.6 = 32,060 W.  Example: 32.1 kW.
	near(t, "kw_before", got.KWBefore, 32.060)
	// After: 23 × (117.5 + 0.58675 × (674 − 117.5)) = 23 × 444.03 = 10,212.6 W. Example: 10.2 kW.
	const after = 23 * (117.5 + util*556.5) / 1000
	near(t, "kw_after", got.KWAfter, after)
	near(t, "kw_after", after, 10.212612559241707)
	// Saved: 32.060 − 10.2126 = 21.8474 kW.
	const saved = 32.060 - after
	near(t, "kw_saved", got.KWSaved, saved)
	// IT energy: 21.8474 kW × 8,766 h = 191,514 kWh/year.
	near(t, "kwh_per_year_saved", got.KWhPerYearSaved, saved*8766)
	// Facility: × PUE 1.3 = 248,968 kWh/year.                           Example: ≈249 MWh/yr.
	near(t, "facility_kwh_per_year_saved", got.FacilityKWhPerYearSaved, saved*8766*1.3)
	// Cost: 248,968 kWh × US$0.09 = US$22,407/year.                      Example: ≈US$22 k/yr.
	near(t, "usd_per_year_saved", got.USDPerYearSaved, saved*8766*1.3*0.09)
	// Carbon: 248,968 kWh × 0.5617 kg = 139.85 t CO2e/year.              Example: ≈140 t/yr.
	near(t, "tco2e_per_year_saved", got.TCO2ePerYearSaved, saved*8766*1.3*0.5617/1000)

	// And the example's own rounded figures.
	for _, c := range []struct {
		what      string
		got, want float64
		unit      float64
	}{
		{"before, kW to 0.1", got.KWBefore, 32.1, 0.1},
		{"after, kW to 0.1", got.KWAfter, 10.2, 0.1},
		{"facility MWh/yr", got.FacilityKWhPerYearSaved / 1000, 249, 1},
		{"US$ k/yr", got.USDPerYearSaved / 1000, 22, 1},
		{"t CO2e/yr to 10", got.TCO2ePerYearSaved, 140, 10},
	} {
		if r := math.Round(c.got/c.unit) * c.unit; math.Abs(r-c.want) > 1e-9 {
			t.Errorf("%s: %v rounds to %v, the example says %v", c.what, c.got, r, c.want)
		}
	}
}

// TestWorkedExampleOnCores: on basis cores the same move counts 6,400 busy Xeon threads as
// 6,400 busy EPYC threads: ceil(6,400 ÷ 307.2 = 20.83) = 21 hosts at 6,400 ÷ 10,752 = 59.52 %,
// 21 × (117.5 + 0.5952 × 556.5) = 9,423.75 W. The example's 23 comes from throughput, so it is
// basis work; this documents the gap.
func TestWorkedExampleOnCores(t *testing.T) {
	t.Parallel()
	got, err := Compute(Request{Region: "cn-hangzhou", From: xeon8380, To: epyc9754, Share: 1, TargetUtil: 0.6, Basis: BasisCores}, hangzhou)
	if err != nil {
		t.Fatal(err)
	}
	if got.HostsAdded != 21 || got.OpsPerSecondMoved != nil {
		t.Errorf("hosts added %d (want 21), ops moved %v (want nil)", got.HostsAdded, got.OpsPerSecondMoved)
	}
	near(t, "to_util_actual", got.ToUtilActual, 6400.0/(21*512))
	near(t, "kw_after", got.KWAfter, (21*117.5+556.5*6400.0/512)/1000)
	near(t, "kw_after", got.KWAfter, 9.42375)
}

// TestARMvsX86 moves half of an EPYC 7763 pool's load in cn-hangzhou to Altra Q80-30 at 60 %.
func TestARMvsX86(t *testing.T) {
	t.Parallel()
	req := Request{Region: "cn-hangzhou", From: epyc7763, To: altraQ80, Share: 0.5, TargetUtil: 0.6}
	got, err := Compute(req, hangzhou)
	if err != nil {
		t.Fatal(err)
	}
	// Basis cores ("" means cores). Removed: round(0.5 × 40) = 20 hosts carrying
	// 20 × 128 × 0.35 = 896 busy logical CPUs.
	// Added: ceil(896 ÷ (80 × 0.6 = 48)) = ceil(18.67) = 19 Altras at 896 ÷ 1,520 = 58.95 %.
	// Before: 20 × (54 + 0.35 × 200) = 20 × 124 = 2,480 W.
	// After, linear: 19 × 54 + (140 − 54) × 896 ÷ 80 = 1,026 + 963.2 = 1,989.2 W.
	// Saved 490.8 W; × 8,766 h = 4,302.35 kWh IT; × 1.3 = 5,593.06 kWh facility;
	// × US$0.09 = US$503.38; × 0.5617 kg = 3.1416 t CO2e a year.
	want := Result{
		Region: "cn-hangzhou", Scope: "wall", Basis: BasisCores, From: epyc7763, To: altraQ80,
		Share: 0.5, ShareMoved: 0.5, HostsRemoved: 20, HostsAdded: 19,
		BusyCoresMoved: 896, BusyCoresNeeded: 896,
		ToUtilTarget: 0.6, ToUtilActual: 896.0 / 1520,
		FromHostW: 124, ToHostW: 54 + 86*896.0/1520,
		KWBefore: 2.480, KWAfter: 1.9892, KWSaved: 0.4908,
		HoursPerYear:            8766,
		KWhPerYearSaved:         4302.3528,
		FacilityKWhPerYearSaved: 5593.05864,
		USDPerYearSaved:         503.3752776,
		TCO2ePerYearSaved:       3.141621038088,
		Factors:                 hangzhou,
	}
	if diff := cmp.Diff(want, got, approx(), ignoreAssumptions()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

// TestWorkBasis: the same move on work, with the Altra doing 1,100 ops per busy core-second
// against the EPYC thread's 1,000 (an Altra core ≈ 0.55 × an EPYC core's two threads, research
// §2.1).
func TestWorkBasis(t *testing.T) {
	t.Parallel()
	from, to := epyc7763, altraQ80
	from.OpsPerCoreSecond, to.OpsPerCoreSecond = 1000, 1100
	got, err := Compute(Request{Region: "cn-hangzhou", From: from, To: to, Share: 0.5, TargetUtil: 0.6, Basis: BasisWork}, hangzhou)
	if err != nil {
		t.Fatal(err)
	}
	// 896 busy EPYC CPUs × 1,000 = 896,000 ops/s; ÷ 1,100 = 814.545 busy Altra cores;
	// ceil(814.545 ÷ 48 = 16.97) = 17 hosts at 814.545 ÷ 1,360 = 59.89 %.
	// After: 17 × 54 + 86 × 814.545 ÷ 80 = 918 + 875.636 = 1,793.636 W; saved 686.364 W;
	// × 8,766 h × 1.3 = 7,821.66 kWh facility a year.
	const busy = 896000.0 / 1100
	if got.OpsPerSecondMoved == nil || *got.OpsPerSecondMoved != 896000 {
		t.Errorf("ops_per_second_moved = %v, want 896000", got.OpsPerSecondMoved)
	}
	if got.HostsAdded != 17 {
		t.Errorf("hosts added %d, want 17", got.HostsAdded)
	}
	near(t, "busy_cores_needed", got.BusyCoresNeeded, busy)
	near(t, "to_util_actual", got.ToUtilActual, busy/1360)
	near(t, "kw_after", got.KWAfter, (918+86*busy/80)/1000)
	near(t, "kw_saved", got.KWSaved, 0.6863636363636365)
	near(t, "facility_kwh_per_year_saved", got.FacilityKWhPerYearSaved, 7821.66272727273)
}

// TestWholeHosts: load moves with whole hosts, so the hosts that stay keep their utilization.
func TestWholeHosts(t *testing.T) {
	t.Parallel()
	from := epyc7763
	from.Hosts = 41
	got, err := Compute(Request{Region: "cn-hangzhou", From: from, To: altraQ80, Share: 0.5, TargetUtil: 0.6}, hangzhou)
	if err != nil {
		t.Fatal(err)
	}
	// round(20.5) = 21 hosts, 21 ÷ 41 of the load: 21 × 128 × 0.35 = 940.8 busy CPUs.
	if got.HostsRemoved != 21 {
		t.Errorf("hosts removed %d, want 21", got.HostsRemoved)
	}
	near(t, "share_moved", got.ShareMoved, 21.0/41)
	near(t, "busy_cores_moved", got.BusyCoresMoved, 940.8)
}

// TestExactFitAddsNoExtraHost: 6,400 busy CPUs at 512 × 0.625 = 320 per host is 20 hosts, not
// 21, whatever floating point makes of the division.
func TestExactFitAddsNoExtraHost(t *testing.T) {
	t.Parallel()
	got, err := Compute(Request{Region: "cn-hangzhou", From: xeon8380, To: epyc9754, Share: 1, TargetUtil: 0.625}, hangzhou)
	if err != nil {
		t.Fatal(err)
	}
	if got.HostsAdded != 20 || got.ToUtilActual != 0.625 {
		t.Errorf("hosts added %d at %v, want 20 at 0.625", got.HostsAdded, got.ToUtilActual)
	}
}

// TestNegativeSaving: a plan that costs energy says so with negative savings.
func TestNegativeSaving(t *testing.T) {
	t.Parallel()
	got, err := Compute(Request{Region: "cn-hangzhou", From: epyc7763, To: altraQ80, Share: 0.5, TargetUtil: 0.1}, hangzhou)
	if err != nil {
		t.Fatal(err)
	}
	// ceil(896 ÷ 8) = 112 Altras at 10 %: 112 × 54 + 86 × 11.2 = 7,011.2 W against 2,480 W.
	if got.HostsAdded != 112 {
		t.Errorf("hosts added %d, want 112", got.HostsAdded)
	}
	near(t, "kw_saved", got.KWSaved, 2.480-7.0112)
	if got.USDPerYearSaved >= 0 || got.TCO2ePerYearSaved >= 0 {
		t.Errorf("savings %v USD, %v t: want negative", got.USDPerYearSaved, got.TCO2ePerYearSaved)
	}
	var b strings.Builder
	if err := got.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "negative") {
		t.Errorf("table does not say the savings are negative:\n%s", b.String())
	}
}

// TestIdleSource: an idle pool's hosts can go with nothing to add.
func TestIdleSource(t *testing.T) {
	t.Parallel()
	from := epyc7763
	from.AvgUtil = 0
	got, err := Compute(Request{Region: "cn-hangzhou", From: from, To: altraQ80, Share: 0.5, TargetUtil: 0.6}, hangzhou)
	if err != nil {
		t.Fatal(err)
	}
	if got.HostsAdded != 0 || got.ToUtilActual != 0 || got.KWAfter != 0 {
		t.Errorf("added %d at %v, %v kW; want none", got.HostsAdded, got.ToUtilActual, got.KWAfter)
	}
	near(t, "kw_saved", got.KWSaved, 20*54.0/1000)
}

// TestAssumptions: the assumptions name every figure and its source.
func TestAssumptions(t *testing.T) {
	t.Parallel()
	got, err := Compute(Request{Region: "cn-hangzhou", From: xeon8380, To: epyc9754, Share: 1, TargetUtil: 0.6, Basis: BasisWork}, hangzhou)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(got.Assumptions, "\n")
	for _, want := range []string{
		"8,766 h", "linear", "Basis work", "364,480,000 ops/s", "56,950", "52,750",
		"PUE 1.3", hangzhou.PUESource, "US$0.09/kWh", hangzhou.PriceSource, "561.7 gCO2e/kWh",
		hangzhou.GridSource, "Embodied carbon is not included", "wall power", "keep their 40.0% utilization",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("assumptions lack %q:\n%s", want, all)
		}
	}
	got, err = Compute(Request{Region: "cn-hangzhou", From: withScope(epyc7763, "cpu-package"), To: withScope(altraQ80, "cpu-package"), Share: 0.5, TargetUtil: 0.6}, hangzhou)
	if err != nil {
		t.Fatal(err)
	}
	all = strings.Join(got.Assumptions, "\n")
	for _, want := range []string{"Basis cores", "cpu-package scope only"} {
		if !strings.Contains(all, want) {
			t.Errorf("assumptions lack %q:\n%s", want, all)
		}
	}
}

// TestShippedRegions: every shipped region's factors make a plan.
func TestShippedRegions(t *testing.T) {
	t.Parallel()
	tab, err := regions.Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range tab.Regions() {
		f, _ := tab.Get(region)
		got, err := Compute(Request{Region: region, From: withRegion(epyc7763, region), To: withRegion(altraQ80, region), Share: 0.5, TargetUtil: 0.6}, f)
		if err != nil {
			t.Errorf("%s: %v", region, err)
			continue
		}
		near(t, region+" usd_per_year_saved", got.USDPerYearSaved, got.KWhPerYearSaved*f.PriceUSDPerKWh*f.PUE)
		if !strings.Contains(strings.Join(got.Assumptions, "\n"), f.GridSource) {
			t.Errorf("%s: assumptions do not cite the grid source", region)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Request{Region: "cn-hangzhou", From: xeon8380, To: epyc9754, Share: 1, TargetUtil: 0.6, Basis: BasisWork}
	tests := []struct {
		name string
		edit func(*Request)
		want []string // substrings of the error; none: valid
	}{
		{"valid", func(*Request) {}, nil},
		{"empty basis means cores", func(r *Request) { r.Basis = "" }, nil},
		{"empty target pool", func(r *Request) { r.To.Hosts = 0 }, nil},
		{"idle source", func(r *Request) { r.From.AvgUtil = 0 }, nil},
		{"no region", func(r *Request) { r.Region = "" }, []string{"region: required"}},
		{"different regions", func(r *Request) { r.To.Region = "cn-beijing" }, []string{`from.region "cn-hangzhou", to.region "cn-beijing": the pools are in different regions`}},
		{"pools elsewhere", func(r *Request) { r.Region = "cn-beijing" }, []string{`from.region and to.region "cn-hangzhou": the plan is for region "cn-beijing"`}},
		{"scopes differ", func(r *Request) { r.To.Scope = "cpu-package" }, []string{`from.scope "wall", to.scope "cpu-package": the scopes differ`, "never compared"}},
		{"share zero", func(r *Request) { r.Share = 0 }, []string{"share 0: out of range"}},
		{"share negative", func(r *Request) { r.Share = -0.5 }, []string{"share -0.5: out of range"}},
		{"share above one", func(r *Request) { r.Share = 1.5 }, []string{"share 1.5: out of range"}},
		{"share NaN", func(r *Request) { r.Share = math.NaN() }, []string{"share NaN: out of range"}},
		{"share under a host", func(r *Request) { r.Share = 0.004 }, []string{"share 0.004 of 100 hosts: rounds to no host"}},
		{"target zero", func(r *Request) { r.TargetUtil = 0 }, []string{"target_util 0: out of range, want a utilization in (0, 1]"}},
		{"target above one", func(r *Request) { r.TargetUtil = 1.2 }, []string{"target_util 1.2: out of range"}},
		{"unknown basis", func(r *Request) { r.Basis = "watts" }, []string{`basis "watts": want "cores" or "work"`}},
		{"work without from work", func(r *Request) { r.From.OpsPerCoreSecond = 0 }, []string{"basis work: from (Intel Xeon Platinum 8380 2S) reports no work", "use basis cores"}},
		{"work without to work", func(r *Request) { r.To.OpsPerCoreSecond = 0 }, []string{"basis work: to (AMD EPYC 9754 2S) reports no work"}},
		{"no source hosts", func(r *Request) { r.From.Hosts = 0 }, []string{"from.hosts 0: want at least 1"}},
		{"negative target hosts", func(r *Request) { r.To.Hosts = -1 }, []string{"to.hosts -1: want 0..10000000"}},
		{"too many hosts", func(r *Request) { r.From.Hosts = 1e9 }, []string{"from.hosts 1000000000: want 0..10000000"}},
		{"no cores", func(r *Request) { r.To.CoresPerHost = 0 }, []string{"to.cores_per_host 0: want a positive number of logical CPUs, at most 1e+06"}},
		{"util above one", func(r *Request) { r.From.AvgUtil = 1.5 }, []string{"from.avg_util 1.5: out of range, want 0..1"}},
		{"negative idle", func(r *Request) { r.From.IdleW = -1 }, []string{"from.idle_w -1: want a power of 0..1e+06 W"}},
		{"peak below idle", func(r *Request) { r.To.PeakW = 100 }, []string{"to.peak_w 100: want a positive power of at most 1e+06 W, at least idle_w (117.5 W)"}},
		{"negative ops", func(r *Request) { r.From.OpsPerCoreSecond = -1 }, []string{"from.ops_per_core_second -1: want 0..1e+12 (0: no work reported)"}},
		{
			"every problem at once",
			func(r *Request) { r.Share, r.TargetUtil, r.To.Scope = 2, 0, "dram" },
			[]string{"share 2", "target_util 0", "the scopes differ"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := ok
			tt.edit(&req)
			err := req.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if _, cerr := Compute(req, hangzhou); cerr == nil || !strings.Contains(cerr.Error(), tt.want[0]) {
				t.Errorf("Compute() = %v, want the validation error", cerr)
			}
		})
	}
}

func TestComputeRefusesFactors(t *testing.T) {
	t.Parallel()
	req := Request{Region: "cn-hangzhou", From: epyc7763, To: altraQ80, Share: 0.5, TargetUtil: 0.6}
	beijing := hangzhou
	beijing.Region = "cn-beijing"
	badPUE := hangzhou
	badPUE.PUE = 0.9
	for name, c := range map[string]struct {
		f    regions.Factors
		want string
	}{
		"other region": {beijing, `factors are for region "cn-beijing", the plan is for "cn-hangzhou"`},
		"pue below 1":  {badPUE, "pue 0.9: want ≥ 1"},
	} {
		if _, err := Compute(req, c.f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Compute() = %v, want %q", name, err, c.want)
		}
	}
	tiny := altraQ80
	tiny.CoresPerHost = 1e-9
	if _, err := Compute(Request{Region: "cn-hangzhou", From: epyc7763, To: tiny, Share: 0.5, TargetUtil: 0.6}, hangzhou); err == nil || !strings.Contains(err.Error(), "more than 10000000") {
		t.Errorf("absurd pool: Compute() = %v, want a host-count error", err)
	}
}

// FuzzCompute: whatever a request holds, Compute either refuses it or returns finite numbers,
// never more utilization than the target and never a panic.
func FuzzCompute(f *testing.F) {
	f.Add(100, 160.0, 0.4, 121.0, 620.0, 56950.0, 0, 512.0, 117.5, 674.0, 52750.0, 1.0, 0.6, true)
	f.Add(40, 128.0, 0.35, 54.0, 254.0, 0.0, 0, 80.0, 54.0, 140.0, 0.0, 0.5, 0.6, false)
	f.Add(1, 1.0, 1.0, 0.0, 1.0, 1e-300, 3, 1e-300, 0.0, 1e300, 1e300, 1.0, 1e-300, true)
	f.Add(10_000_000, 1e6, 1.0, 1e6, 1e6, 1e12, 0, 1e6, 0.0, 1e6, 1e-300, 1.0, 1.0, true)
	f.Fuzz(func(t *testing.T, fh int, fc, fu, fi, fp, fo float64, th int, tc, ti, tp, to, share, target float64, work bool) {
		req := Request{
			Region:     "cn-hangzhou",
			From:       Pool{Region: "cn-hangzhou", Scope: "wall", Hosts: fh, CoresPerHost: fc, AvgUtil: fu, IdleW: fi, PeakW: fp, OpsPerCoreSecond: fo},
			To:         Pool{Region: "cn-hangzhou", Scope: "wall", Hosts: th, CoresPerHost: tc, IdleW: ti, PeakW: tp, OpsPerCoreSecond: to},
			Share:      share,
			TargetUtil: target,
		}
		if work {
			req.Basis = BasisWork
		}
		got, err := Compute(req, hangzhou)
		if err != nil {
			return
		}
		for name, v := range map[string]float64{"kw_saved": got.KWSaved, "to_util_actual": got.ToUtilActual, "tco2e": got.TCO2ePerYearSaved} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("%s = %v for %+v", name, v, req)
			}
		}
		if got.HostsAdded < 0 || got.HostsRemoved < 1 || got.HostsRemoved > fh {
			t.Errorf("hosts removed %d, added %d for %+v", got.HostsRemoved, got.HostsAdded, req)
		}
		if got.ToUtilActual > target*(1+1e-6) {
			t.Errorf("to_util_actual %v above target %v", got.ToUtilActual, target)
		}
	})
}

func withScope(p Pool, scope string) Pool {
	p.Scope = scope
	return p
}

func withRegion(p Pool, region string) Pool {
	p.Region = region
	return p
}

// approx compares floats to a relative 1e-9: the hand calculations round differently.
func approx() cmp.Option {
	return cmp.Comparer(func(a, b float64) bool {
		return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
	})
}

func ignoreAssumptions() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Assumptions" }, cmp.Ignore())
}
