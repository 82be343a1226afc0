package acpi

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
)

// TestAccuracySquareWave models the Supermicro Ice Lake server of the fixture running a batch
// job that starts every 20 minutes and runs for 727 s, for an hour, with the agent reading
// every 10 s: the platform draws 210 W idle and 520 W while the job runs, and the job's edges
// fall between readings. The ACPI meter reports, in power1_average, the mean power over its
// averaging window (power1_average_interval, 1 s on this machine): a value flat over each
// window, and a mix of both levels when an edge falls inside one.
//
// A 1 s window is much shorter than the 10 s interval, so the Meter integrates the readings
// with the trapezoid rule; each edge between readings costs it part of an interval's step,
// and the hour's energy must still be within 1% of the square wave's integral.
func TestAccuracySquareWave(t *testing.T) {
	t.Parallel()
	const (
		step   = 10 * time.Second
		steps  = 360 // one hour
		idleW  = 210.0
		busyW  = 520.0
		period = 1200.0 // s between job starts
		start  = 95.5   // s: the first start, between two readings
		runs   = 727.0  // s the job runs: its end falls between readings too
	)
	// onTime is how long the job has run in [0, s].
	onTime := func(s float64) float64 {
		var on float64
		for k := 0.0; start+k*period < s; k++ {
			from := start + k*period
			on += min(s, from+runs) - from
		}
		return on
	}
	// integral is ∫₀ˢ P dt in J, the square wave's energy (for s < 0, the idle before it).
	integral := func(s float64) float64 { return idleW*s + (busyW-idleW)*onTime(s) }

	root := fixture.Copy(t, "intel-xeon-2s")
	r, err := Open(sysfs.New(root))
	if err != nil {
		t.Fatal(err)
	}
	meters := r.Meters()
	if len(meters) != 1 {
		t.Fatalf("Meters = %+v, want the one platform meter", meters)
	}
	window := meters[0].Interval
	if window != time.Second {
		t.Fatalf("averaging interval %v, want the fixture's 1 s", window)
	}
	id, dir := meters[0].ID, meters[0].Dir

	m := energy.NewMeter(energy.DefaultBounds(energy.Host{Sockets: 2}))
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var got float64
	for i := 0; i <= steps; i++ {
		s := float64(i) * step.Seconds()
		// The firmware's average over the window that ends now, in µW as the driver prints it.
		avg := (integral(s) - integral(s-window.Seconds())) / window.Seconds()
		uw := strconv.FormatInt(int64(math.Round(avg*1e6)), 10)
		if err := fixture.WriteFile(dir, "power1_average", []byte(uw+"\n")); err != nil {
			t.Fatal(err)
		}
		readings, err := r.Read(t.Context())
		if err != nil {
			t.Fatalf("step %d: Read: %v", i, err)
		}
		for _, d := range m.Update(t0.Add(time.Duration(i)*step), readings) {
			got += d.Joules
		}
	}
	hour := float64(steps) * step.Seconds()
	want := integral(hour)
	t.Logf("%s: %g/%g W square wave over %g s: %.1f J, want %.1f J (%+.4f%%)",
		id, idleW, busyW, hour, got, want, 100*(got-want)/want)
	if rel := math.Abs(got-want) / want; rel > 0.01 {
		t.Errorf("%v J over the hour, want %v J ± 1%% (off by %.3f%%)", got, want, 100*rel)
	}
	if len(m.Rejected) != 0 {
		t.Errorf("rejected %v, want none", m.Rejected)
	}
}
