package energy

import (
	"math"
	"testing"
	"time"

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
	m := NewMeter()
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
	if m.Resets != 0 {
		t.Errorf("resets = %d, want 0", m.Resets)
	}
}

// TestMeterPowerIntegration integrates a power sensor following a ramp and expects the exact
// area under it.
func TestMeterPowerIntegration(t *testing.T) {
	t.Parallel()
	m := NewMeter()
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
	m := NewMeter()
	t0 := time.Unix(1_700_000_000, 0)
	m.Update(t0, []sensor.Reading{counter("energy1", 5_000_000, 0)})
	if d := m.Update(t0.Add(time.Second), []sensor.Reading{counter("energy1", 1_000_000, 0)}); len(d) != 0 {
		t.Fatalf("reset gave %v, want no delta", d)
	}
	d := m.Update(t0.Add(2*time.Second), []sensor.Reading{counter("energy1", 4_000_000, 0)})
	if len(d) != 1 || d[0].Joules != 3 {
		t.Fatalf("after reset got %v, want 3 J", d)
	}
	if m.Resets != 1 {
		t.Errorf("resets = %d, want 1", m.Resets)
	}
}

// TestMeterGap: a series missing from a cycle keeps its state; its next delta covers the gap.
func TestMeterGap(t *testing.T) {
	t.Parallel()
	m := NewMeter()
	t0 := time.Unix(1_700_000_000, 0)
	m.Update(t0, []sensor.Reading{counter("package-0", 0, 1<<40)})
	m.Update(t0.Add(time.Second), nil)
	d := m.Update(t0.Add(3*time.Second), []sensor.Reading{counter("package-0", 300_000_000, 1<<40)})
	if len(d) != 1 || d[0].Watts() != 100 || !d[0].Start.Equal(t0) {
		t.Fatalf("got %+v, want 100 W from t0", d)
	}
}
