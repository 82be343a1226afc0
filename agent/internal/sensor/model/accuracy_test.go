package model

import (
	"math"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
	"github.com/fleetwatt/fleetwatt/agent/internal/identity"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
)

// TestAccuracyUtilization models the 1-socket EPYC 7763 server of the fixture (8 logical CPUs
// in the tree) running a periodic batch load for an hour, read every 10 s: its CPU utilization
// follows u(t) = 0.45 + 0.35·sin(2πt/1500 s), and /proc/stat's tick counters (USER_HZ 100)
// advance by the busy and idle ticks of that profile. The model's estimate with the linear
// curve is idle + (peak − idle)·u, with idle and peak from its own profile (the table's
// SPECpower row), so the expected energy is ∫ idle + (peak − idle)·u(t) dt. Each reading is the
// average over its interval (Averaged), which the Meter counts over the whole interval; only
// the ticks' rounding separates the two, and the energy must be within 1%.
func TestAccuracyUtilization(t *testing.T) {
	t.Parallel()
	const (
		step   = 10 * time.Second
		steps  = 360 // one hour
		meanU  = 0.45
		swingU = 0.35
		period = 1500.0 // s: 2.4 periods in the hour
		hz     = 100    // USER_HZ
	)
	// busySeconds is ∫₀ˢ u dt, the CPU-seconds one CPU spends busy in [0, s].
	busySeconds := func(s float64) float64 {
		return meanU*s + swingU*period/(2*math.Pi)*(1-math.Cos(2*math.Pi*s/period))
	}

	root := fixture.Copy(t, "amd-epyc")
	fs := sysfs.New(root)
	host, err := identity.Detect(t.Context(), fs)
	if err != nil {
		t.Fatal(err)
	}
	cpus := host.LogicalCPUs
	if cpus == 0 {
		t.Fatalf("identity found no CPUs: %+v", host)
	}
	r, err := Open(fs, host, Options{Curve: CurveLinear})
	if err != nil {
		t.Fatal(err)
	}
	p := r.Profile()
	if p.IdleW <= 0 || p.PeakW <= p.IdleW {
		t.Fatalf("profile %+v", p)
	}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	now := t0
	r.now = func() time.Time { return now } // the Reader times its intervals on the fake clock

	// Ticks since boot, 30 days ago, when the test starts: 2% busy so far.
	const boot = 30 * 24 * 3600
	user0 := uint64(0.02 * boot * hz * float64(cpus))
	idle0 := uint64(boot*hz*cpus) - user0
	m := energy.NewMeter(energy.DefaultBounds(energy.Host{Sockets: 2}))
	var got float64
	for i := 0; i <= steps; i++ {
		s := float64(i) * step.Seconds()
		now = t0.Add(time.Duration(i) * step)
		// Whole ticks, rounded from the exact busy time so the rounding does not add up.
		busy := uint64(math.Round(busySeconds(s) * hz * float64(cpus)))
		all := uint64(s) * hz * uint64(cpus)
		writeStat(t, root, user0+busy, 0, idle0+all-busy, 0, cpus)
		readings, err := r.Read(t.Context())
		if err != nil {
			t.Fatalf("step %d: Read: %v", i, err)
		}
		if len(readings) != 1 || (i > 0 && readings[0].Averaged != step) {
			t.Fatalf("step %d: Read = %+v, want one estimate averaged over %v", i, readings, step)
		}
		for _, d := range m.Update(now, readings) {
			got += d.Joules
		}
	}
	hour := float64(steps) * step.Seconds()
	want := p.IdleW*hour + (p.PeakW-p.IdleW)*busySeconds(hour)
	t.Logf("%s: u = %g ± %g, %g-%g W, over %g s: %.1f J, want %.1f J (%+.4f%%)",
		p.Name, meanU, swingU, p.IdleW, p.PeakW, hour, got, want, 100*(got-want)/want)
	if rel := math.Abs(got-want) / want; rel > 0.01 {
		t.Errorf("%v J over the hour, want %v J ± 1%% (off by %.3f%%)", got, want, 100*rel)
	}
	if len(m.Rejected) != 0 {
		t.Errorf("rejected %v, want none", m.Rejected)
	}
}
