// Package energy turns sensor readings into energy per interval: exact joules from hardware
// energy counters (wrap-around at the counter's range handled), and integrated joules from
// sensors that only give power. It keeps, per series, the last reading and the energy counted
// since the agent started, so a gap in delivery never loses energy: the next interval simply
// covers the gap.
package energy

import (
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

// Meter keeps the per-series state. It is not safe for concurrent use.
type Meter struct {
	series map[string]*series
	// Resets counts counters that went backwards without a known range (driver reload,
	// suspend): their interval is skipped rather than guessed.
	Resets uint64
}

type series struct {
	at     time.Time
	raw    uint64  // last counter value, µJ
	watts  float64 // last power, W
	totalJ float64
	since  time.Time
}

// NewMeter returns an empty Meter.
func NewMeter() *Meter { return &Meter{series: make(map[string]*series)} }

// Update records readings taken at at and returns the energy of every series since its
// previous reading. A series' first reading only sets its baseline.
func (m *Meter) Update(at time.Time, readings []sensor.Reading) []Delta {
	deltas := make([]Delta, 0, len(readings))
	for _, r := range readings {
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
		if r.Counter {
			uj, ok := counterDelta(s.raw, r.EnergyUJ, r.MaxUJ)
			if !ok {
				m.Resets++
				s.at, s.raw = at, r.EnergyUJ
				continue
			}
			joules = float64(uj) / 1e6
		} else {
			// Trapezoid rule between two power samples: exact for a linear ramp, and equal to
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
