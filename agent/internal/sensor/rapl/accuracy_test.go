package rapl

import (
	"strconv"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
)

// TestAccuracyCountersWrap models the 2-socket Ice Lake server of the fixture under a steady
// load for an hour, read every 10 s: each RAPL zone's energy_uj advances at a constant power
// from just below its max_energy_range_uj, so every counter wraps in the third interval and
// again whenever its range fills (two to six times in the hour). The counters go through the
// real sysfs files and the real energy.Meter, and the joules must come back exactly: every
// increment is a whole number of µJ, so watts × seconds is exact in float64.
func TestAccuracyCountersWrap(t *testing.T) {
	t.Parallel()
	const (
		step  = 10 * time.Second
		steps = 360 // one hour
		// Below the top of the range by this many intervals of energy: the counters wrap
		// in the third interval, and again whenever their range fills.
		headroom = 2
	)
	watts := map[string]uint64{ // W, typical of a Gold 6338 pair under load
		"package-0": 180,
		"package-1": 165,
		"dram-0":    23,
		"dram-1":    21,
		"psys":      420,
	}
	root := fixture.Copy(t, "intel-xeon-2s")
	r, err := Open(sysfs.New(root))
	if err != nil {
		t.Fatal(err)
	}
	zones := r.Zones()
	if len(zones) != len(watts) {
		t.Fatalf("Open found %d zones, want %d: %+v", len(zones), len(watts), zones)
	}
	perStep := func(id string) uint64 { return watts[id] * uint64(step/time.Microsecond) } // µJ
	raw := make(map[string]uint64, len(zones))
	for _, z := range zones {
		if _, ok := watts[z.ID]; !ok || z.MaxUJ == 0 {
			t.Fatalf("zone %+v: no power planned or no max_energy_range_uj", z)
		}
		raw[z.ID] = z.MaxUJ - headroom*perStep(z.ID) - 12_345
	}
	advance := func() {
		t.Helper()
		for _, z := range zones {
			if err := fixture.WriteFile(z.Path, "energy_uj", []byte(strconv.FormatUint(raw[z.ID], 10)+"\n")); err != nil {
				t.Fatal(err)
			}
		}
	}

	m := energy.NewMeter(energy.DefaultBounds(energy.Host{Sockets: 2}))
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	total := make(map[string]float64)
	wraps := make(map[string]int)
	for i := 0; i <= steps; i++ {
		if i > 0 {
			for _, z := range zones {
				next := (raw[z.ID] + perStep(z.ID)) % z.MaxUJ // the counter runs from 0 to max
				if next < raw[z.ID] {
					wraps[z.ID]++
				}
				raw[z.ID] = next
			}
		}
		advance()
		readings, err := r.Read(t.Context())
		if err != nil {
			t.Fatalf("step %d: Read: %v", i, err)
		}
		deltas := m.Update(t0.Add(time.Duration(i)*step), readings)
		if i > 0 && len(deltas) != len(zones) {
			t.Fatalf("step %d: %d deltas, want %d", i, len(deltas), len(zones))
		}
		for _, d := range deltas {
			want := float64(watts[d.Reading.ID]) * step.Seconds()
			if d.Joules != want {
				t.Fatalf("step %d, %s: %v J, want exactly %v J", i, d.Reading.ID, d.Joules, want)
			}
			total[d.Reading.ID] += d.Joules
		}
	}
	hour := float64(steps) * step.Seconds()
	for _, z := range zones {
		want := float64(watts[z.ID]) * hour
		t.Logf("%s: %d W for %v s through %d wraps: %v J, want %v J", z.ID, watts[z.ID], hour, wraps[z.ID], total[z.ID], want)
		if total[z.ID] != want {
			t.Errorf("%s: %v J over the hour, want exactly %v J", z.ID, total[z.ID], want)
		}
		if wraps[z.ID] == 0 {
			t.Errorf("%s: the counter never wrapped; the test does not cover wrap-around", z.ID)
		}
	}
	if len(m.Rejected) != 0 {
		t.Errorf("rejected %v, want none", m.Rejected)
	}
}
