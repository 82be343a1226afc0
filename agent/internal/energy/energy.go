// Package energy turns sensor readings into energy per interval: exact joules from hardware
// energy counters (wrap-around at the counter's range handled), and integrated joules from
// sensors that only give power. It keeps, per series, the last reading and the energy counted
// since the agent started, so a gap in delivery never loses energy: the next interval simply
// covers the gap.
//
// Readings outside physical bounds (negative, NaN, the ACPI 0xFFFFFFFF sentinel, a counter
// jump implying more power than the component can draw) are rejected and counted by reason,
// never turned into energy: the 1 MW and 160 kW spikes other agents have shipped come from
// exactly such readings.
package energy

import (
	"math"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
)

// Delta is the energy of one series over one interval.
type Delta struct {
	// Reading is the latest reading, with the series' labels.
	Reading sensor.Reading
	// Start and End bound the interval: the previous reading's time and this one's.
	Start, End time.Time
	// Joules is the energy over the interval, in J.
	Joules float64
	// TotalJ is the energy since the series' first reading, in J.
	TotalJ float64
	// Since is the time of the series' first reading, the start of TotalJ.
	Since time.Time
}

// Watts is the average power over the interval, in W.
func (d Delta) Watts() float64 {
	s := d.End.Sub(d.Start).Seconds()
	if s <= 0 {
		return 0
	}
	return d.Joules / s
}

// Bounds returns the most power, in W, that the component a reading covers can plausibly
// draw; 0 means no bound.
type Bounds func(r sensor.Reading) float64

// Reasons a reading is rejected.
const (
	RejectNaN      = "not-a-number"
	RejectNegative = "negative"
	RejectAbove    = "above-bound"   // power above the component's plausible maximum
	RejectJump     = "counter-jump"  // a counter increase implying power above the maximum
	RejectReset    = "counter-reset" // a counter went backwards and has no known range
)

// Meter keeps the per-series state. It is not safe for concurrent use.
type Meter struct {
	series map[string]*series
	bound  Bounds
	// Rejected counts rejected readings by source and reason since the Meter started.
	Rejected map[Rejection]uint64
}

// Rejection is a source and a reason.
type Rejection struct{ Source, Reason string }

type series struct {
	at     time.Time
	raw    uint64  // last counter value, µJ
	watts  float64 // last power, W
	totalJ float64
	since  time.Time
}

// NewMeter returns an empty Meter that rejects readings above bound (nil: no bounds).
func NewMeter(bound Bounds) *Meter {
	return &Meter{series: make(map[string]*series), bound: bound, Rejected: make(map[Rejection]uint64)}
}

// maxW is the plausibility bound of r: the sensor's own, else the Meter's.
func (m *Meter) maxW(r sensor.Reading) float64 {
	if r.MaxW > 0 {
		return r.MaxW
	}
	if m.bound != nil {
		return m.bound(r)
	}
	return 0
}

func (m *Meter) reject(r sensor.Reading, reason string) { m.Rejected[Rejection{r.Source, reason}]++ }

// checkPower says why a power reading is implausible, or "".
func (m *Meter) checkPower(r sensor.Reading) string {
	switch {
	case math.IsNaN(r.PowerW) || math.IsInf(r.PowerW, 0):
		return RejectNaN
	case r.PowerW < 0:
		return RejectNegative
	case m.maxW(r) > 0 && r.PowerW > m.maxW(r):
		return RejectAbove
	}
	return ""
}

// Update records readings taken at at and returns the energy of every series since its
// previous reading. A series' first reading only sets its baseline.
func (m *Meter) Update(at time.Time, readings []sensor.Reading) []Delta {
	deltas := make([]Delta, 0, len(readings))
	for _, r := range readings {
		if !r.Counter {
			if why := m.checkPower(r); why != "" {
				m.reject(r, why)
				continue
			}
		}
		key := r.Key()
		s, ok := m.series[key]
		if !ok {
			m.series[key] = &series{at: at, raw: r.EnergyUJ, watts: r.PowerW, since: at}
			continue
		}
		dt := at.Sub(s.at).Seconds()
		if dt <= 0 {
			continue
		}
		var joules float64
		switch {
		case r.Counter:
			uj, ok := counterDelta(s.raw, r.EnergyUJ, r.MaxUJ)
			if !ok {
				m.reject(r, RejectReset)
				s.at, s.raw = at, r.EnergyUJ
				continue
			}
			joules = float64(uj) / 1e6
			if maxW := m.maxW(r); maxW > 0 && joules/dt > maxW {
				// A driver reload or a firmware glitch, not energy: start again from here.
				m.reject(r, RejectJump)
				s.at, s.raw = at, r.EnergyUJ
				continue
			}
		case r.Averaged.Seconds() >= dt/2:
			// The sensor's value is already the average over (most of) the interval, so it
			// stands for the whole interval; a trapezoid would mix in the previous window.
			joules = r.PowerW * dt
		default:
			// Trapezoid rule between two instantaneous samples: exact for a linear ramp, and
			// P·Δt for a steady load.
			joules = (s.watts + r.PowerW) / 2 * dt
		}
		s.totalJ += joules
		deltas = append(deltas, Delta{
			Reading: r,
			Start:   s.at,
			End:     at,
			Joules:  joules,
			TotalJ:  s.totalJ,
			Since:   s.since,
		})
		s.at, s.raw, s.watts = at, r.EnergyUJ, r.PowerW
	}
	return deltas
}

// counterDelta is the increase of a counter from prev to cur in µJ. A counter that went
// backwards wrapped at maxUJ (the kernel's max_energy_range_uj: values run from 0 to max);
// without a known range the decrease is a reset, and ok is false.
func counterDelta(prev, cur, maxUJ uint64) (delta uint64, ok bool) {
	if cur >= prev {
		return cur - prev, true
	}
	if maxUJ == 0 || prev > maxUJ {
		return 0, false
	}
	return maxUJ - prev + cur, true
}
