package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fleetwatt/fleetwatt/agent/internal/identity"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

const eps = 1e-9

func TestCurves(t *testing.T) {
	t.Parallel()
	linear, err := curveFunc(CurveLinear)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []float64{0, 0.1, 0.25, 0.5, 0.8, 1} {
		if got := linear(u); got != u {
			t.Errorf("linear(%g) = %g, want %g", u, got, u)
		}
	}

	tc, err := curveFunc(CurveTeads)
	if err != nil {
		t.Fatal(err)
	}
	// The published points (share of TDP 0.12, 0.32, 0.75, 1.02 at 0, 10, 50, 100 %),
	// rebased between idle and peak, plus points between them.
	for _, c := range []struct{ u, want float64 }{
		{0, 0},
		{0.1, (0.32 - 0.12) / 0.9}, // 0.2222…
		{0.5, (0.75 - 0.12) / 0.9}, // 0.70
		{1, 1},
		{0.05, (0.22 - 0.12) / 0.9},  // halfway between 0.12 and 0.32
		{0.3, (0.535 - 0.12) / 0.9},  // halfway between 0.32 and 0.75
		{0.75, (0.885 - 0.12) / 0.9}, // halfway between 0.75 and 1.02
		{-1, 0},
		{2, 1},
	} {
		if got := tc(c.u); math.Abs(got-c.want) > eps {
			t.Errorf("teads(%g) = %.12f, want %.12f", c.u, got, c.want)
		}
	}
	// Concave and monotonic: never below linear, never falling.
	prev := -1.0
	for i := 0; i <= 100; i++ {
		u := float64(i) / 100
		got := tc(u)
		if got < u-eps || got < prev {
			t.Errorf("teads(%g) = %g: below linear or falling (previous %g)", u, got, prev)
		}
		prev = got
	}

	if _, err := curveFunc("cubic"); err == nil {
		t.Error(`curveFunc("cubic") = nil error`)
	}
}

func TestLookupFixtures(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		machine string
		want    Profile
	}{
		{
			// Gold 6338 has no SPECpower result; its family has CCF's Ice Lake
			// coefficients, whole-server W per hardware thread, times 16 threads.
			machine: "intel-xeon-2s",
			want: Profile{
				Name: "intel_xeon_ice_lake × 16 vCPU", IdleW: 0.77 * 16, PeakW: 3.76 * 16, PerVCPU: true,
				Source: "CCF ccf-coefficients output/coefficients-aws-use.csv, Ice Lake, W per vCPU (research/efficiency.md §1.4)",
			},
		},
		{
			machine: "amd-epyc",
			want: Profile{
				Name: "amd_epyc_7763_1s", IdleW: 53.9, PeakW: 254, TDPPerSocketW: 280,
				Source: "SPECpower_ssj2008 median of 6 results 2021 (data/specpower_summary.csv)",
			},
		},
		{
			// Neoverse-N1 with 80 cores in one socket on a GIGABYTE board: Altra Q80-30.
			machine: "ampere-altra",
			want: Profile{
				Name: "ampere_altra_q80_30_1s", IdleW: 53.9, PeakW: 140, TDPPerSocketW: 210,
				Source: "SPECpower_ssj2008 FALINUX AnyStor-700EC-NM Jan-2024, 1 result (data/specpower_summary.csv)",
			},
		},
	} {
		t.Run(c.machine, func(t *testing.T) {
			t.Parallel()
			host, err := identity.Detect(context.Background(), sysfs.New(fixture.Root(t, c.machine)))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := Lookup(host)
			if !ok {
				t.Fatalf("Lookup(%+v): no profile", host)
			}
			if diff := cmp.Diff(c.want, got, cmpopts.EquateApprox(0, eps)); diff != "" {
				t.Errorf("Lookup (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		host identity.Host
		want Profile // Source is not compared
		ok   bool
	}{
		{
			name: "graviton2 instance",
			host: identity.Host{CPUModel: "Neoverse-N1", CPUCore: "Neoverse-N1", SysVendor: "Amazon EC2", Product: "m6g.xlarge", Sockets: 1, Cores: 4, LogicalCPUs: 4},
			want: Profile{Name: "aws_graviton2 × 4 vCPU", IdleW: 4 * 0.47, PeakW: 4 * 1.69, TDPPerSocketW: 150, PerVCPU: true},
			ok:   true,
		},
		{
			name: "graviton3 instance",
			host: identity.Host{CPUModel: "Neoverse-V1", CPUCore: "Neoverse-V1", SysVendor: "Amazon EC2", Product: "c7g.4xlarge", Sockets: 1, Cores: 16, LogicalCPUs: 16},
			want: Profile{Name: "aws_graviton3 × 16 vCPU", IdleW: 16 * 0.74, PeakW: 16 * 3.5, TDPPerSocketW: 220, PerVCPU: true},
			ok:   true,
		},
		{
			name: "graviton4 instance",
			host: identity.Host{CPUModel: "Neoverse-V2", CPUCore: "Neoverse-V2", SysVendor: "Amazon EC2", Product: "m8g.2xlarge", Sockets: 1, Cores: 8, LogicalCPUs: 8},
			want: Profile{Name: "aws_graviton4 × 8 vCPU", IdleW: 8 * 0.74, PeakW: 8 * 3.5, TDPPerSocketW: 300, PerVCPU: true},
			ok:   true,
		},
		{
			name: "grace superchip",
			host: identity.Host{CPUModel: "Neoverse-V2", CPUCore: "Neoverse-V2", SysVendor: "Supermicro", Sockets: 2, Cores: 144, LogicalCPUs: 144},
			want: Profile{Name: "nvidia_grace_superchip", IdleW: 298, PeakW: 619, TDPPerSocketW: 500},
			ok:   true,
		},
		{
			name: "neoverse-v2 elsewhere",
			host: identity.Host{CPUModel: "Neoverse-V2", CPUCore: "Neoverse-V2", SysVendor: "Google", Sockets: 1, Cores: 4, LogicalCPUs: 4},
			want: Profile{Name: "neoverse_v2_vcpu × 4 vCPU", IdleW: 4 * 0.74, PeakW: 4 * 3.5, PerVCPU: true},
			ok:   true,
		},
		{
			name: "altra from smbios, 2 sockets of 64 cores",
			host: identity.Host{CPUModel: "Ampere(R) Altra(R) Processor", CPUCore: "Neoverse-N1", Sockets: 2, Cores: 128, LogicalCPUs: 128},
			want: Profile{Name: "ampere_altra_q64_30_2s", IdleW: 125, PeakW: 250, TDPPerSocketW: 180},
			ok:   true,
		},
		{
			name: "altra max, 1 socket of 128 cores",
			host: identity.Host{CPUModel: "Neoverse-N1", CPUCore: "Neoverse-N1", Sockets: 1, Cores: 128, LogicalCPUs: 128},
			want: Profile{Name: "ampere_altra_max_m128_30_1s", IdleW: 78.6, PeakW: 209, TDPPerSocketW: 250},
			ok:   true,
		},
		{
			name: "altra vm on another cloud",
			host: identity.Host{CPUModel: "Neoverse-N1", CPUCore: "Neoverse-N1", SysVendor: "Microsoft Corporation", Sockets: 1, Cores: 8, LogicalCPUs: 8},
			want: Profile{Name: "neoverse_n1_per_core × 8 vCPU", IdleW: 8 * 53.9 / 80, PeakW: 8 * 140.0 / 80, PerVCPU: true},
			ok:   true,
		},
		{
			name: "epyc 7763 2 sockets",
			host: identity.Host{CPUModel: "AMD EPYC 7763 64-Core Processor", Sockets: 2, Cores: 128, LogicalCPUs: 256},
			want: Profile{Name: "amd_epyc_7763_2s", IdleW: 102, PeakW: 455, TDPPerSocketW: 280},
			ok:   true,
		},
		{
			name: "epyc 7763 4 sockets scaled from the 2-socket server",
			host: identity.Host{CPUModel: "AMD EPYC 7763 64-Core Processor", Sockets: 4, Cores: 256, LogicalCPUs: 512},
			want: Profile{Name: "amd_epyc_7763_2s × 4/2 sockets", IdleW: 204, PeakW: 910, TDPPerSocketW: 280},
			ok:   true,
		},
		{
			name: "epyc 7763 vm gets its share",
			host: identity.Host{CPUModel: "AMD EPYC 7763 64-Core Processor", Sockets: 1, Cores: 4, LogicalCPUs: 8, Virtual: true},
			want: Profile{Name: "amd_epyc_7763_1s × 8/128 threads", IdleW: 53.9 * 8 / 128, PeakW: 254.0 * 8 / 128, TDPPerSocketW: 280, PerVCPU: true},
			ok:   true,
		},
		{
			name: "aws milan instance by family",
			host: identity.Host{CPUModel: "AMD EPYC 7R13 Processor", Sockets: 1, Cores: 2, LogicalCPUs: 4, Virtual: true},
			want: Profile{Name: "amd_epyc_3rd_gen × 4 vCPU", IdleW: 4 * 0.46, PeakW: 4 * 1.96, PerVCPU: true},
			ok:   true,
		},
		{
			name: "xeon 8380 matches its SKU before its family",
			host: identity.Host{CPUModel: "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", Sockets: 2, Cores: 80, LogicalCPUs: 160},
			want: Profile{Name: "intel_xeon_8380_2s", IdleW: 121, PeakW: 620, TDPPerSocketW: 270},
			ok:   true,
		},
		{
			name: "sapphire rapids by family",
			host: identity.Host{CPUModel: "Intel(R) Xeon(R) Gold 6448Y", Sockets: 2, Cores: 64, LogicalCPUs: 128},
			want: Profile{Name: "intel_xeon_sapphire_rapids × 128 vCPU", IdleW: 128 * 1.04, PeakW: 128 * 4.16, PerVCPU: true},
			ok:   true,
		},
		{
			name: "qemu icelake model",
			host: identity.Host{CPUModel: "Intel Xeon Processor (Icelake)", Sockets: 1, Cores: 2, LogicalCPUs: 2, Virtual: true},
			want: Profile{Name: "intel_xeon_ice_lake × 2 vCPU", IdleW: 2 * 0.77, PeakW: 2 * 3.76, PerVCPU: true},
			ok:   true,
		},
		{
			name: "sandy bridge is in no row",
			host: identity.Host{CPUModel: "Intel(R) Xeon(R) CPU E5-2680 0 @ 2.70GHz", Sockets: 2, Cores: 16, LogicalCPUs: 32},
		},
		{
			name: "no cpu model",
			host: identity.Host{},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Lookup(c.host)
			if ok != c.ok {
				t.Fatalf("Lookup ok = %v, want %v (%+v)", ok, c.ok, got)
			}
			if ok && got.Source == "" {
				t.Error("profile without a source")
			}
			got.Source = ""
			if diff := cmp.Diff(c.want, got, cmpopts.EquateApprox(0, eps)); diff != "" {
				t.Errorf("Lookup (-want +got):\n%s", diff)
			}
		})
	}
}

// writeStat writes proc/stat below root with the aggregate line and one line per CPU.
func writeStat(t *testing.T, root string, user, system, idle, steal uint64, cpus int) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "cpu  %d 0 %d %d 0 0 0 %d 0 0\n", user, system, idle, steal)
	for i := range cpus {
		fmt.Fprintf(&b, "cpu%d %d 0 %d %d 0 0 0 %d 0 0\n", i, user/uint64(cpus), system/uint64(cpus), idle/uint64(cpus), steal/uint64(cpus))
	}
	b.WriteString("intr 0\nctxt 0\n")
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fixture.WriteFile(root, "proc/stat", []byte(b.String())); err != nil {
		t.Fatal(err)
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	host := identity.Host{CPUModel: "AMD EPYC 7763 64-Core Processor", Sockets: 1, Cores: 64, LogicalCPUs: 2}
	type step struct {
		user, system, idle, steal uint64 // ticks since boot (USER_HZ 100)
		after                     time.Duration
		want                      float64 // W; < 0: no reading
		averaged                  time.Duration
	}
	for _, c := range []struct {
		name  string
		opts  Options
		steps []step
	}{
		{
			name: "linear",
			opts: Options{IdleW: 100, PeakW: 300},
			steps: []step{
				// Since boot: 200 of 1000 ticks busy, 2 CPUs: 5 s of uptime.
				{user: 150, system: 50, idle: 800, want: 100 + 200*0.2, averaged: 5 * time.Second},
				// +600 busy, +400 idle ticks in 5 s on 2 CPUs: u = 0.6.
				{user: 650, system: 150, idle: 1200, after: 5 * time.Second, want: 100 + 200*0.6, averaged: 5 * time.Second},
				// All idle.
				{user: 650, system: 150, idle: 3200, after: 10 * time.Second, want: 100, averaged: 10 * time.Second},
				// No tick passed: no reading, the interval stays open.
				{user: 650, system: 150, idle: 3200, after: time.Millisecond, want: -1},
				// Fully busy, measured from the last reading that gave a value.
				{user: 1650, system: 150, idle: 3200, after: 5 * time.Second, want: 300, averaged: 5*time.Second + time.Millisecond},
			},
		},
		{
			name: "teads",
			opts: Options{IdleW: 100, PeakW: 300, Curve: CurveTeads},
			steps: []step{
				{user: 100, system: 0, idle: 900, want: 100 + 200*(0.32-0.12)/0.9, averaged: 5 * time.Second},
				{user: 400, system: 200, idle: 1400, after: 5 * time.Second, want: 100 + 200*(0.75-0.12)/0.9, averaged: 5 * time.Second},
				// u = 0.6: 0.75 + 0.27·0.2 = 0.804 of TDP.
				{user: 1000, system: 200, idle: 1800, after: 5 * time.Second, want: 100 + 200*(0.804-0.12)/0.9, averaged: 5 * time.Second},
			},
		},
		{
			name: "table profile, steal is not this host's power",
			opts: Options{},
			steps: []step{
				// 100 busy of which 50 steal, 1000 total: u = 0.05.
				{user: 50, steal: 50, idle: 900, want: 53.9 + (254-53.9)*0.05, averaged: 5 * time.Second},
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeStat(t, root, 0, 0, 1, 0, 2)
			r, err := Open(sysfs.New(root), host, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			r.now = func() time.Time { return now }
			for i, s := range c.steps {
				now = now.Add(s.after)
				writeStat(t, root, s.user, s.system, s.idle, s.steal, 2)
				got, err := r.Read(context.Background())
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if s.want < 0 {
					if len(got) != 0 {
						t.Errorf("step %d: got %+v, want no reading", i, got)
					}
					continue
				}
				want := []sensor.Reading{{
					ID: "model", Name: r.name, Source: semconv.SourceModel, Scope: semconv.ScopeEstimatedHost,
					Estimated: true, PowerW: s.want, Averaged: s.averaged,
				}}
				if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, eps)); diff != "" {
					t.Errorf("step %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeStat(t, root, 10, 10, 80, 0, 1)
	fs := sysfs.New(root)
	epyc := identity.Host{CPUModel: "AMD EPYC 7763 64-Core Processor", Sockets: 1, Cores: 64, LogicalCPUs: 128}
	unknown := identity.Host{CPUModel: "Intel(R) Xeon(R) CPU E5-2680 0 @ 2.70GHz", Sockets: 2}

	r, err := Open(fs, epyc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.name, "amd_epyc_7763_1s (linear)"; got != want {
		t.Errorf("name = %q, want %q", got, want)
	}
	if r.Name() != semconv.SourceModel {
		t.Errorf("Name() = %q", r.Name())
	}
	if info := r.Info(); !strings.Contains(info.Detail, "SPECpower") {
		t.Errorf("Info().Detail = %q, want the source", info.Detail)
	}

	// An override works without a table row, and keeps the table's TDP where there is one.
	r, err = Open(fs, unknown, Options{IdleW: 90, PeakW: 400, Curve: "teads"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Profile(), (Profile{Name: "configured", IdleW: 90, PeakW: 400, Source: "configuration (model.idle_w, model.peak_w)"}); got != want {
		t.Errorf("Profile() = %+v, want %+v", got, want)
	}
	if got, want := r.name, "configured (teads)"; got != want {
		t.Errorf("name = %q, want %q", got, want)
	}
	r, err = Open(fs, epyc, Options{IdleW: 90, PeakW: 400})
	if err != nil {
		t.Fatal(err)
	}
	if r.Profile().TDPPerSocketW != 280 {
		t.Errorf("override dropped the table's TDP: %+v", r.Profile())
	}

	for _, c := range []struct {
		name     string
		fs       sysfs.FS
		host     identity.Host
		opts     Options
		notFound bool
		msg      string
	}{
		{"no profile", fs, unknown, Options{}, true, `no power profile for CPU "Intel(R) Xeon(R) CPU E5-2680 0 @ 2.70GHz": set model.idle_w and model.peak_w`},
		{"only idle", fs, epyc, Options{IdleW: 50}, false, "must both be > 0"},
		{"idle above peak", fs, epyc, Options{IdleW: 500, PeakW: 400}, false, "is above model.peak_w"},
		{"unknown curve", fs, epyc, Options{Curve: "cubic"}, false, `curve "cubic"`},
		{"no /proc/stat", sysfs.New(t.TempDir()), epyc, Options{}, false, "stat"},
	} {
		_, err := Open(c.fs, c.host, c.opts)
		if err == nil {
			t.Errorf("%s: Open = nil error", c.name)
			continue
		}
		if got := errors.Is(err, sensor.ErrNotFound); got != c.notFound {
			t.Errorf("%s: errors.Is(%v, ErrNotFound) = %v, want %v", c.name, err, got, c.notFound)
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %q does not say %q", c.name, err, c.msg)
		}
	}
}

func TestReadConcurrent(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeStat(t, root, 10, 10, 80, 0, 1)
	r, err := Open(sysfs.New(root), identity.Host{}, Options{IdleW: 1, PeakW: 2})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for range 4 {
		go func() {
			_, err := r.Read(context.Background())
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestTable checks the shipped table: every row parses (parseProfiles fails on the first
// that does not) and names its sources.
func TestTable(t *testing.T) {
	t.Parallel()
	rows, err := parseProfiles(strings.NewReader(profilesCSV))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(strings.TrimSpace(profilesCSV), "\n")
	if len(rows) != lines {
		t.Errorf("%d rows parsed from %d data lines", len(rows), lines)
	}
	names := map[string]bool{}
	for _, rw := range rows {
		if names[rw.name] {
			t.Errorf("row %s twice", rw.name)
		}
		names[rw.name] = true
		if rw.source == "" || (rw.tdpW > 0 && rw.tdpSource == "") {
			t.Errorf("row %s: a figure without a source", rw.name)
		}
		if rw.basis == basisVCPU && (rw.peakW > 10 || rw.sockets != 0 || rw.threads != 0) {
			t.Errorf("row %s: per-vCPU row with server figures", rw.name)
		}
	}
}

func FuzzParseProfiles(f *testing.F) {
	f.Add(profilesCSV)
	lines := strings.SplitAfter(profilesCSV, "\n")
	for _, l := range lines[1:] {
		f.Add(lines[0] + l)
	}
	f.Add(lines[0])
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		rows, err := parseProfiles(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, rw := range rows {
			if rw.name == "" || rw.source == "" || rw.cpu == nil || rw.idleW <= 0 || rw.peakW < rw.idleW {
				t.Fatalf("accepted an invalid row %+v", rw)
			}
			if rw.basis == basisServer && rw.threads <= 0 {
				t.Fatalf("accepted a server row without threads %+v", rw)
			}
		}
		// Whatever the table, Lookup never panics and never returns a negative power.
		p, ok := lookup(rows, identity.Host{CPUModel: "AMD EPYC 7763 64-Core Processor", CPUCore: "Neoverse-N1", Sockets: 3, LogicalCPUs: 8, Virtual: len(s)%2 == 0})
		if ok && (p.IdleW < 0 || p.PeakW < p.IdleW) {
			t.Fatalf("lookup = %+v", p)
		}
	})
}

// TestPointsCurve: a points curve through the Teads points is the Teads curve, and the
// exported Curve is the model's own.
func TestPointsCurve(t *testing.T) {
	t.Parallel()
	pc := PointsCurve(teadsU, teadsTDP)
	named, err := Curve("TEADS")
	if err != nil {
		t.Fatal(err)
	}
	for u := -0.1; u <= 1.1; u += 0.01 {
		if got, want := pc(u), teads(u); got != want {
			t.Errorf("PointsCurve(teads)(%g) = %g, teads = %g", u, got, want)
		}
		if got, want := named(u), teads(u); got != want {
			t.Errorf(`Curve("TEADS")(%g) = %g, teads = %g`, u, got, want)
		}
	}
	if _, err := Curve("cubic"); err == nil {
		t.Error(`Curve("cubic") = nil error`)
	}
}
