package report

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// spec describes a synthetic host: a linear power curve and a sinusoidal utilization, turned
// into the sums one row of Fetch holds.
type spec struct {
	host, region, zone, arch, model, scope, source string
	cores, idle, peak, meanU, ampU, opsPerBusyS    float64
}

const specSamples = 720 // two hours at 10 s

func (s spec) row() HostRow {
	const iv = 10.0
	r := HostRow{
		Host: s.host, Region: s.region, Zone: s.zone, Arch: s.arch, CPUModel: s.model,
		Scope: s.scope, Source: s.source,
	}
	var us, ps []float64
	for k := range specSamples {
		u := s.meanU + s.ampU*math.Sin(2*math.Pi*float64(k)/360)
		p := s.idle + (s.peak-s.idle)*u
		us, ps = append(us, u), append(ps, p)
		r.Energy += p * iv
		r.Interval += iv
		r.Busy += u * s.cores * iv
		r.Total += s.cores * iv
		r.CPUInterval += iv
	}
	r.Curve = sumsOf(us, ps)
	if s.opsPerBusyS > 0 {
		r.Ops, r.HasOps = s.opsPerBusyS*r.Busy, true
	}
	return r
}

func goldenRows() []HostRow {
	specs := []spec{
		{"hz-a1", "cn-hangzhou", "cn-hangzhou-h", "arm64", "Ampere Altra Q80-30", "wall", "simulator", 80, 54, 140, 0.35, 0.2, 1200},
		{"hz-a2", "cn-hangzhou", "cn-hangzhou-h", "arm64", "Ampere Altra Q80-30", "wall", "simulator", 80, 56, 144, 0.30, 0.2, 1200},
		{"hz-x1", "cn-hangzhou", "cn-hangzhou-i", "amd64", "AMD EPYC 9754", "wall", "simulator", 256, 117, 674, 0.45, 0.2, 900},
		{"hz-x2", "cn-hangzhou", "cn-hangzhou-i", "amd64", "AMD EPYC 9754", "wall", "ipmi", 256, 121, 660, 0.50, 0.2, 900},
		// A second source of the same scope is never added: ipmi wins over rapl.
		{"hz-x2", "cn-hangzhou", "cn-hangzhou-i", "amd64", "AMD EPYC 9754", "wall", "rapl", 256, 1, 2, 0.50, 0.2, 900},
		{"bj-a1", "cn-beijing", "cn-beijing-a", "arm64", "Ampere Altra Q80-30", "cpu-package", "hwmon", 80, 30, 100, 0.3, 0.1, 0},
		{"bj-x1", "cn-beijing", "cn-beijing-a", "amd64", "Intel Xeon Platinum 8592+", "wall", "ipmi", 256, 250, 900, 0.3, 0.1, 0},
		{"bj-x1", "cn-beijing", "cn-beijing-a", "amd64", "Intel Xeon Platinum 8592+", "cpu-package", "rapl", 256, 150, 700, 0.3, 0.1, 0},
		// A region without factors, and a host whose utilization never moves.
		{"mars-1", "mars-north-1", "mars-north-1a", "arm64", "Ampere One A192-32X", "wall", "ipmi", 192, 100, 300, 0.5, 0.0005, 0},
	}
	var rows []HostRow
	for _, s := range specs {
		rows = append(rows, s.row())
	}
	return rows
}

func goldenOptions(t testing.TB, by []string) Options {
	t.Helper()
	table, err := regions.Load("")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	return Options{From: from, To: from.Add(2 * time.Hour), By: by, Regions: table}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		by   []string
	}{
		{"default", nil},
		{"by_region_scope", []string{"region", "scope"}},
	} {
		rep, err := Build(goldenRows(), goldenOptions(t, tt.by))
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range Formats {
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				t.Parallel()
				var buf bytes.Buffer
				if err := Write(&buf, rep, format); err != nil {
					t.Fatal(err)
				}
				ext := map[string]string{"table": "txt", "csv": "csv", "json": "json", "markdown": "md"}[format]
				path := filepath.Join("testdata", "report_"+tt.name+"."+ext+".golden")
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
			})
		}
	}
}

func TestBuildChoices(t *testing.T) {
	t.Parallel()
	rep, err := Build(goldenRows(), goldenOptions(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	byHost := map[string]Group{}
	for _, g := range rep.Groups {
		byHost[g.Region+"/"+g.Arch] = g
	}
	// bj-x1 has wall and cpu-package: without grouping by scope it counts once, at the wall.
	if g := byHost["cn-beijing/amd64"]; g.Scope != "wall" || g.Hosts != 1 {
		t.Errorf("cn-beijing/amd64: %+v, want the wall scope only", g)
	}
	// hz-x2's wall power comes from ipmi, not from ipmi + rapl.
	if g := byHost["cn-hangzhou/amd64"]; g.PeakW == nil || math.Abs(*g.PeakW-667) > 1e-6 {
		t.Errorf("cn-hangzhou/amd64 peak %v, want 667 (mean of 674 and 660)", g.PeakW)
	}
	// The host with a flat utilization is counted but not fitted.
	if g := byHost["mars-north-1/arm64"]; g.Hosts != 1 || g.HostsFitted != 0 || g.IdleW != nil || g.USDPerCoreYear != nil {
		t.Errorf("mars-north-1: %+v", g)
	}
	// cn-beijing compares on cpu-package, which both have, rather than mixing scopes.
	for _, c := range rep.Comparisons {
		if c.Region == "cn-beijing" && (c.Scope != "cpu-package" || c.ARMHosts != 1 || c.X86Hosts != 1 || c.WPerBusyCore.CI95 != nil) {
			t.Errorf("cn-beijing comparison %+v", c)
		}
	}
	for _, want := range []string{"mars-north-1", "too little spread", "count once"} {
		if !strings.Contains(strings.Join(rep.Notes, "\n"), want) {
			t.Errorf("notes %q lack %q", rep.Notes, want)
		}
	}
}

func TestBuildHostWithoutCPU(t *testing.T) {
	t.Parallel()
	rows := goldenRows()[:2]
	rows[1].CPUInterval, rows[1].Total, rows[1].Busy = 0, 0, 0
	rep, err := Build(rows, goldenOptions(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Groups) != 1 || rep.Groups[0].Hosts != 1 || !strings.Contains(strings.Join(rep.Notes, ""), "hz-a2") {
		t.Errorf("groups %+v notes %q", rep.Groups, rep.Notes)
	}
}

// bootstrapFleet draws n hosts per pool with part-to-part variation around known means.
func bootstrapFleet(seed uint64, n int) []HostRow {
	rng := rand.New(rand.NewPCG(seed, 7))
	var rows []HostRow
	for i := range n {
		a := spec{
			host: "a" + string(rune('A'+i%26)) + string(rune('a'+i/26)), region: "r", arch: "arm64", model: "A", scope: "wall",
			source: "ipmi", cores: 80, idle: 54 + 5*rng.NormFloat64(), peak: 140 + 10*rng.NormFloat64(), meanU: 0.35, ampU: 0.2,
		}
		x := spec{
			host: "x" + string(rune('A'+i%26)) + string(rune('a'+i/26)), region: "r", arch: "amd64", model: "X", scope: "wall",
			source: "ipmi", cores: 256, idle: 117 + 10*rng.NormFloat64(), peak: 674 + 40*rng.NormFloat64(), meanU: 0.45, ampU: 0.2,
		}
		rows = append(rows, a.row(), x.row())
	}
	return rows
}

// TestBootstrap: the interval contains the population's ratio, and the same seed gives the
// same interval.
func TestBootstrap(t *testing.T) {
	t.Parallel()
	rows := bootstrapFleet(3, 30)
	opts := goldenOptions(t, nil)
	rep, err := Build(rows, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Comparisons) != 1 || rep.Comparisons[0].WPerBusyCore == nil {
		t.Fatalf("comparisons %+v", rep.Comparisons)
	}
	c := rep.Comparisons[0]
	u := *c.AtUtil
	truth := (54+(140-54)*u)/(80*u)/((117+(674-117)*u)/(256*u)) - 1
	d := c.WPerBusyCore
	if d.CI95 == nil || d.CI95[0] > truth || d.CI95[1] < truth || d.Resamples != DefaultResamples {
		t.Errorf("CI %v (%d resamples) does not contain the truth %.4f (estimate %.4f)", d.CI95, d.Resamples, truth, d.RelDiff)
	}
	if w := d.CI95[1] - d.CI95[0]; w <= 0 || w > 0.2 {
		t.Errorf("CI width %.4f", w)
	}
	again, _ := Build(rows, opts)
	if diff := cmp.Diff(rep, again); diff != "" {
		t.Errorf("not deterministic (-first +second):\n%s", diff)
	}
	opts.Seed = 99
	other, _ := Build(rows, opts)
	if *other.Comparisons[0].WPerBusyCore.CI95 == *d.CI95 {
		t.Errorf("another seed gave the same interval")
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 9, 8, 10, 30, 0, 0, time.UTC)
	for _, tt := range []struct {
		since, from, to string
		wantFrom        time.Time
		wantTo          time.Time
		bad             bool
	}{
		{"", "", "", now.Add(-DefaultSince), now, false},
		{"168h", "", "", now.Add(-168 * time.Hour), now, false},
		{"", "2026-09-01T00:00:00Z", "", time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), now, false},
		{"", "2026-09-01T00:00:00Z", "2026-09-02T00:00:00Z", time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 9, 2, 0, 0, 0, 0, time.UTC), false},
		{"-1h", "", "", time.Time{}, time.Time{}, true},
		{"1h", "2026-09-01T00:00:00Z", "", time.Time{}, time.Time{}, true},
		{"", "", "2026-09-01T00:00:00Z", time.Time{}, time.Time{}, true},
		{"", "2026-09-02T00:00:00Z", "2026-09-01T00:00:00Z", time.Time{}, time.Time{}, true},
		{"", "yesterday", "", time.Time{}, time.Time{}, true},
	} {
		f, to, err := ParseRange(tt.since, tt.from, tt.to, now)
		if tt.bad {
			if !errors.Is(err, ErrBadOptions) {
				t.Errorf("%q %q %q: err %v, want ErrBadOptions", tt.since, tt.from, tt.to, err)
			}
			continue
		}
		if err != nil || !f.Equal(tt.wantFrom) || !to.Equal(tt.wantTo) {
			t.Errorf("%q %q %q: %s %s %v", tt.since, tt.from, tt.to, f, to, err)
		}
	}
	f, to := WholeHours(now.Add(-time.Hour), now)
	if !f.Equal(time.Date(2026, 9, 8, 9, 0, 0, 0, time.UTC)) || !to.Equal(time.Date(2026, 9, 8, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("WholeHours: %s %s", f, to)
	}
	if by, err := ParseBy("zone, arch,zone"); err != nil || !cmp.Equal(by, []string{"zone", "arch"}) {
		t.Errorf("ParseBy: %v %v", by, err)
	}
	if _, err := ParseBy("host"); !errors.Is(err, ErrBadOptions) {
		t.Errorf("ParseBy(host): %v", err)
	}
}

// TestCostAndCarbon: the cost and carbon of a busy core-year are the watts per busy core
// priced at the region's factors, with W's relative difference and interval (one price for
// both pools); a group's cost and carbon over the range are its energy priced likewise.
func TestCostAndCarbon(t *testing.T) {
	t.Parallel()
	opts := goldenOptions(t, nil)
	rep, err := Build(goldenRows(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Both sides carry six significant digits.
	rel := func(a, b float64) bool { return math.Abs(a-b) <= 1e-5*math.Max(math.Abs(a), math.Abs(b)) }
	compared := 0
	for _, c := range rep.Comparisons {
		if c.WPerBusyCore == nil {
			continue
		}
		f, ok := opts.Regions.Get(c.Region)
		if !ok {
			t.Fatalf("fixture region %s without factors", c.Region)
		}
		w := c.WPerBusyCore
		for _, m := range []struct {
			name   string
			d      *Delta
			perKWh float64
		}{
			{"usd", c.USDPerBusyCoreYear, f.USDPerKWh()},
			{"kgco2e", c.KgCO2ePerBusyCoreYear, f.KgCO2ePerKWh()},
		} {
			if m.d == nil {
				t.Fatalf("%s %s: nil", c.Region, m.name)
			}
			k := HoursPerYear / 1000.0 * m.perKWh
			if !rel(m.d.ARM, w.ARM*k) || !rel(m.d.X86, w.X86*k) || !rel(m.d.RelDiff, w.RelDiff) || m.d.Resamples != w.Resamples {
				t.Errorf("%s %s: %+v, want W per busy core %+v × %v", c.Region, m.name, *m.d, *w, k)
			}
			if (m.d.CI95 == nil) != (w.CI95 == nil) || m.d.CI95 != nil && (!rel(m.d.CI95[0], w.CI95[0]) || !rel(m.d.CI95[1], w.CI95[1])) {
				t.Errorf("%s %s: interval %v, want W's %v", c.Region, m.name, m.d.CI95, w.CI95)
			}
		}
		compared++
	}
	if compared != 2 {
		t.Fatalf("%d comparisons with W per busy core, want 2", compared)
	}
	for _, g := range rep.Groups {
		f, ok := opts.Regions.Get(g.Region)
		if !ok {
			if g.CostUSD != nil || g.CarbonKgCO2e != nil {
				t.Errorf("%s: cost without factors", g.Region)
			}
			continue
		}
		// energy_kwh is rounded to six digits: compare at that precision.
		within := func(a, b float64) bool { return math.Abs(a-b) <= 1e-5*math.Abs(b) }
		if g.CostUSD == nil || !within(*g.CostUSD, g.EnergyKWh*f.USDPerKWh()) || !within(*g.CarbonKgCO2e, g.EnergyKWh*f.KgCO2ePerKWh()) {
			t.Errorf("%s/%s: cost %v carbon %v for %v kWh", g.Region, g.Arch, g.CostUSD, g.CarbonKgCO2e, g.EnergyKWh)
		}
	}
}
