package energy

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

func counter(id string, uj, maxUJ uint64) sensor.Reading {
	return sensor.Reading{ID: id, Source: semconv.SourceRAPL, Scope: semconv.ScopeCPUPackage, Counter: true, EnergyUJ: uj, MaxUJ: maxUJ}
}

func power(id string, w float64) sensor.Reading {
	return sensor.Reading{ID: id, Source: semconv.SourceHwmon, Scope: semconv.ScopePlatform, PowerW: w}
}

func TestCounterDelta(t *testing.T) {
	t.Parallel()
	const maxUJ = 262143328850
	tests := []struct {
		name      string
		prev, cur uint64
		maxUJ     uint64
		want      uint64
		wantOK    bool
	}{
		{"steady", 1_000_000, 3_500_000, maxUJ, 2_500_000, true},
		{"unchanged", 42, 42, maxUJ, 0, true},
		{"wrap", maxUJ - 1_000_000, 2_000_000, maxUJ, 3_000_000, true},
		{"wrap to zero", maxUJ - 5, 0, maxUJ, 5, true},
		{"reset without range", 5_000_000, 1_000, 0, 0, false},
		{"previous above range is a reset", maxUJ + 10, 3, maxUJ, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := counterDelta(tt.prev, tt.cur, tt.maxUJ)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("counterDelta(%d, %d, %d) = %d, %v; want %d, %v", tt.prev, tt.cur, tt.maxUJ, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestMeterCounterWithWrap advances a 200 W counter for an hour in 10 s steps through two
// wraps of a small range and expects the exact energy back.
func TestMeterCounterWithWrap(t *testing.T) {
	t.Parallel()
	const (
		maxUJ = 100_000_000_000 // 100 kJ: wraps every 500 s at 200 W
		watts = 200
		step  = 10 * time.Second
	)
	m := NewMeter(nil)
	t0 := time.Unix(1_700_000_000, 0)
	var raw uint64 = 99_000_000_000 // near the top: the first interval already wraps
	if d := m.Update(t0, []sensor.Reading{counter("package-0", raw, maxUJ)}); len(d) != 0 {
		t.Fatalf("first reading gave deltas %v, want none", d)
	}
	var total float64
	for i := 1; i <= 360; i++ {
		raw = (raw + watts*uint64(step/time.Microsecond)) % maxUJ
		at := t0.Add(time.Duration(i) * step)
		d := m.Update(at, []sensor.Reading{counter("package-0", raw, maxUJ)})
		if len(d) != 1 {
			t.Fatalf("step %d: %d deltas, want 1", i, len(d))
		}
		if d[0].Joules != watts*step.Seconds() {
			t.Fatalf("step %d: %v J, want %v", i, d[0].Joules, watts*step.Seconds())
		}
		if got := d[0].Watts(); got != watts {
			t.Fatalf("step %d: %v W, want %v", i, got, watts)
		}
		total += d[0].Joules
		if d[0].TotalJ != total || !d[0].Since.Equal(t0) || !d[0].Start.Equal(at.Add(-step)) {
			t.Fatalf("step %d: total %v since %v start %v; want %v since %v start %v", i, d[0].TotalJ, d[0].Since, d[0].Start, total, t0, at.Add(-step))
		}
	}
	if want := float64(watts * 3600); total != want {
		t.Errorf("energy over an hour = %v J, want %v", total, want)
	}
	if len(m.Rejected) != 0 {
		t.Errorf("rejected %v, want none", m.Rejected)
	}
}

// TestMeterPowerIntegration integrates a power sensor following a ramp and expects the exact
// area under it.
func TestMeterPowerIntegration(t *testing.T) {
	t.Parallel()
	m := NewMeter(nil)
	t0 := time.Unix(1_700_000_000, 0)
	// Power ramps from 100 W to 300 W over 100 s, sampled every second.
	var got float64
	for i := 0; i <= 100; i++ {
		for _, d := range m.Update(t0.Add(time.Duration(i)*time.Second), []sensor.Reading{power("power1", 100+2*float64(i))}) {
			got += d.Joules
		}
	}
	if want := 20_000.0; math.Abs(got-want) > 1e-9 {
		t.Errorf("integrated energy = %v J, want %v", got, want)
	}
}

func TestMeterResetSkipsInterval(t *testing.T) {
	t.Parallel()
	m := NewMeter(nil)
	t0 := time.Unix(1_700_000_000, 0)
	m.Update(t0, []sensor.Reading{counter("energy1", 5_000_000, 0)})
	if d := m.Update(t0.Add(time.Second), []sensor.Reading{counter("energy1", 1_000_000, 0)}); len(d) != 0 {
		t.Fatalf("reset gave %v, want no delta", d)
	}
	d := m.Update(t0.Add(2*time.Second), []sensor.Reading{counter("energy1", 4_000_000, 0)})
	if len(d) != 1 || d[0].Joules != 3 {
		t.Fatalf("after reset got %v, want 3 J", d)
	}
	if n := m.Rejected[Rejection{semconv.SourceRAPL, RejectReset}]; n != 1 {
		t.Errorf("resets = %d, want 1", n)
	}
}

// TestMeterGap: a series missing from a cycle keeps its state; its next delta covers the gap.
func TestMeterGap(t *testing.T) {
	t.Parallel()
	m := NewMeter(nil)
	t0 := time.Unix(1_700_000_000, 0)
	m.Update(t0, []sensor.Reading{counter("package-0", 0, 1<<40)})
	m.Update(t0.Add(time.Second), nil)
	d := m.Update(t0.Add(3*time.Second), []sensor.Reading{counter("package-0", 300_000_000, 1<<40)})
	if len(d) != 1 || d[0].Watts() != 100 || !d[0].Start.Equal(t0) {
		t.Fatalf("got %+v, want 100 W from t0", d)
	}
}

// TestMeterRejectsImplausibleReadings: negative values, the ACPI error sentinel, NaN and a
// counter jump beyond the bound are counted and never become energy.
func TestMeterRejectsImplausibleReadings(t *testing.T) {
	t.Parallel()
	bound := func(sensor.Reading) float64 { return 1000 }
	m := NewMeter(bound)
	t0 := time.Unix(1_700_000_000, 0)
	steps := [][]sensor.Reading{
		{power("meter", 200), counter("package-0", 0, 1<<40)},
		{power("meter", -5), counter("package-0", 1_000_000_000, 1<<40)},                                 // 100 W
		{power("meter", 4294967295000.0/1e6), counter("package-0", 1_000_000_000+50_000_000_000, 1<<40)}, // 4.29 MW; a 5 kW jump
		{power("meter", math.NaN()), counter("package-0", 53_000_000_000, 1<<40)},                        // 200 W after the jump
		{power("meter", 200)},
	}
	joules := map[string]float64{}
	for i, rs := range steps {
		for _, d := range m.Update(t0.Add(time.Duration(i)*10*time.Second), rs) {
			joules[d.Reading.ID] += d.Joules
		}
	}
	// The meter's only good readings are 200 W at t0 and 200 W at t0+40s: 40 s × 200 W.
	if joules["meter"] != 8000 {
		t.Errorf("meter energy %v J, want 8000", joules["meter"])
	}
	// package-0: 100 W for 10 s, the jump interval rejected, then 200 W for 10 s.
	if joules["package-0"] != 3000 {
		t.Errorf("package-0 energy %v J, want 3000", joules["package-0"])
	}
	want := map[Rejection]uint64{
		{semconv.SourceHwmon, RejectNegative}: 1,
		{semconv.SourceHwmon, RejectAbove}:    1,
		{semconv.SourceHwmon, RejectNaN}:      1,
		{semconv.SourceRAPL, RejectJump}:      1,
	}
	if diff := cmp.Diff(want, m.Rejected); diff != "" {
		t.Errorf("rejections (-want +got):\n%s", diff)
	}
}

// TestMeterAveragedPower: a value the sensor averaged over the whole interval counts as
// constant over it.
func TestMeterAveragedPower(t *testing.T) {
	t.Parallel()
	m := NewMeter(nil)
	t0 := time.Unix(1_700_000_000, 0)
	avg := func(w float64) sensor.Reading {
		r := power("bmc", w)
		r.Averaged = 10 * time.Second
		return r
	}
	m.Update(t0, []sensor.Reading{avg(100)})
	d := m.Update(t0.Add(10*time.Second), []sensor.Reading{avg(300)})
	if len(d) != 1 || d[0].Joules != 3000 {
		t.Fatalf("got %+v, want 3000 J (300 W averaged over the 10 s)", d)
	}
}

// TestSensorBoundWins: a bound the sensor knows (a PSU's capacity) overrides the default.
func TestSensorBoundWins(t *testing.T) {
	t.Parallel()
	m := NewMeter(func(sensor.Reading) float64 { return 5000 })
	r := power("psu-1", 1200)
	r.MaxW = 1100
	m.Update(time.Unix(0, 0), []sensor.Reading{r})
	if n := m.Rejected[Rejection{semconv.SourceHwmon, RejectAbove}]; n != 1 {
		t.Errorf("rejected %d, want 1", n)
	}
}
