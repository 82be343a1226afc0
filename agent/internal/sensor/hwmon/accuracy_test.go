package hwmon

import (
	"math"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	// Imported under another name: this package's tests already have a helper called energy.
	energymeter "github.com/fleetwatt/fleetwatt/agent/internal/energy"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// accuracyStep is the agent's interval in the accuracy tests.
const accuracyStep = 10 * time.Second

func newAccuracyMeter() *energymeter.Meter {
	return energymeter.NewMeter(energymeter.DefaultBounds(energymeter.Host{Sockets: 2}))
}

// TestAccuracyPower models the Ampere Altra of the fixture running a periodic batch load for
// an hour, read every 10 s: xgene-hwmon's "CPU power" (power1_input, µW, an instantaneous
// value) follows P(t) = 90 + 70·sin(2πt/1500 s) W, between the SoC's 20 W near idle and 160 W
// under load, while "IO power" stays at the fixture's 31.9 W. The Meter integrates
// instantaneous samples with the trapezoid rule; the CPU rail's energy must be within 1% of
// the sine's integral, and the steady IO rail's exact to rounding.
func TestAccuracyPower(t *testing.T) {
	t.Parallel()
	const (
		steps  = 360 // one hour
		meanW  = 90.0
		swingW = 70.0
		period = 1500.0 // s: 2.4 periods in the hour, so the sine does not cancel out
		ioW    = 31.9   // the fixture's power2_input
	)
	power := func(s float64) float64 { return meanW + swingW*math.Sin(2*math.Pi*s/period) }
	// ∫₀ᵀ P dt, in J.
	integral := func(s float64) float64 {
		return meanW*s + swingW*period/(2*math.Pi)*(1-math.Cos(2*math.Pi*s/period))
	}

	root := fixture.Copy(t, "ampere-altra")
	r, err := Open(sysfs.New(root))
	if err != nil {
		t.Fatal(err)
	}
	var cpuPath string
	for _, c := range r.Channels() {
		if c.ID == "cpu-0" {
			cpuPath = c.Path
		}
	}
	if cpuPath == "" {
		t.Fatalf("no cpu-0 channel in %+v", r.Channels())
	}

	m := newAccuracyMeter()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	got := make(map[string]float64)
	for i := 0; i <= steps; i++ {
		s := float64(i) * accuracyStep.Seconds()
		uw := strconv.FormatInt(int64(math.Round(power(s)*1e6)), 10)
		if err := fixture.WriteFile(filepath.Dir(cpuPath), filepath.Base(cpuPath), []byte(uw+"\n")); err != nil {
			t.Fatal(err)
		}
		readings, err := r.Read(t.Context())
		if err != nil {
			t.Fatalf("step %d: Read: %v", i, err)
		}
		for _, d := range m.Update(t0.Add(time.Duration(i)*accuracyStep), readings) {
			got[d.Reading.ID] += d.Joules
		}
	}
	hour := float64(steps) * accuracyStep.Seconds()
	want := integral(hour)
	t.Logf("cpu-0: sine %g ± %g W over %g s: %.1f J, want %.1f J (%+.4f%%)", meanW, swingW, hour, got["cpu-0"], want, 100*(got["cpu-0"]-want)/want)
	if rel := math.Abs(got["cpu-0"]-want) / want; rel > 0.01 {
		t.Errorf("cpu-0: %v J over the hour, want %v J ± 1%% (off by %.3f%%)", got["cpu-0"], want, 100*rel)
	}
	if wantIO := ioW * hour; math.Abs(got["io-0"]-wantIO) > 1e-9*wantIO {
		t.Errorf("io-0: %v J at a steady %g W, want %v J", got["io-0"], ioW, wantIO)
	}
	if len(m.Rejected) != 0 {
		t.Errorf("rejected %v, want none", m.Rejected)
	}
}

// TestAccuracyEnergyCounter models a CPU rail with an energy channel (energy1_input, µJ)
// drawing a steady 95 W for an hour, read every 10 s, whose driver is reloaded half-way:
// the counter starts again from zero. hwmon gives an energy counter no range (the ABI has no
// energy<i>_max; the kernel keeps it in 64 bits of µJ, which no machine fills), so no wrap is
// possible and a counter that goes backwards can only be a reset: the Meter counts it as
// energy.RejectReset and skips that one interval rather than invent its energy. Every other
// interval's joules must come back exactly.
func TestAccuracyEnergyCounter(t *testing.T) {
	t.Parallel()
	const (
		steps   = 360 // one hour
		watts   = 95
		reload  = 180                                           // the step whose interval holds the reload
		perStep = watts * uint64(accuracyStep/time.Microsecond) // µJ
	)
	h := newTree(t, "")
	h.chip("hwmon0", xgene, map[string]string{
		"name": "apm_xgene\n", "energy1_input": "0\n", "energy1_label": "CPU power\n",
	}, nil)
	r, err := Open(h.fs())
	if err != nil {
		t.Fatal(err)
	}
	if chs := r.Channels(); len(chs) != 1 || !chs[0].Counter {
		t.Fatalf("Channels = %+v, want one energy channel", chs)
	}
	path := r.Channels()[0].Path

	m := newAccuracyMeter()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var got float64
	intervals := 0
	uj := uint64(7_200_000_000_000) // 7.2 MJ counted since boot
	for i := 0; i <= steps; i++ {
		switch {
		case i == reload:
			uj = 4 * watts * 1_000_000 // reloaded 4 s before this reading
		case i > 0:
			uj += perStep
		}
		if err := fixture.WriteFile(filepath.Dir(path), filepath.Base(path), []byte(strconv.FormatUint(uj, 10)+"\n")); err != nil {
			t.Fatal(err)
		}
		readings, err := r.Read(t.Context())
		if err != nil {
			t.Fatalf("step %d: Read: %v", i, err)
		}
		deltas := m.Update(t0.Add(time.Duration(i)*accuracyStep), readings)
		if i == reload && len(deltas) != 0 {
			t.Fatalf("step %d: the reset interval gave %+v, want it skipped", i, deltas)
		}
		for _, d := range deltas {
			if want := watts * accuracyStep.Seconds(); d.Joules != want {
				t.Fatalf("step %d: %v J, want exactly %v J", i, d.Joules, want)
			}
			got += d.Joules
			intervals++
		}
	}
	// Every interval but the one holding the reload.
	want := watts * float64(steps-1) * accuracyStep.Seconds()
	t.Logf("cpu-0 energy: %d W over %d counted intervals: %v J, want %v J", watts, intervals, got, want)
	if got != want || intervals != steps-1 {
		t.Errorf("%v J over %d intervals, want exactly %v J over %d", got, intervals, want, steps-1)
	}
	wantRejected := map[energymeter.Rejection]uint64{{Source: semconv.SourceHwmon, Reason: energymeter.RejectReset}: 1}
	if diff := cmp.Diff(wantRejected, m.Rejected); diff != "" {
		t.Errorf("rejections (-want +got):\n%s", diff)
	}
}
