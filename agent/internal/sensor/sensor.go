// Package sensor defines what a power source gives the agent: readings of energy counters
// (µJ, with their wrap-around range) or of power (W), each labelled with the source, the scope
// it covers and whether it is measured or estimated. One package per source lives below this
// one (rapl, hwmon, cpustat, ...); the registry package lists them.
//
// Sources are stateless readers of their hardware interface. Turning counters into energy per
// interval (wrap-around, integration of power-only sensors) is the energy package's job, so a
// source only has to parse what the kernel or the BMC shows.
package sensor

import (
	"context"
	"errors"
	"time"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// ErrNotFound means the source does not exist on this host (no RAPL in a VM, no hwmon power
// channel on a desktop board). It is not a failure: the agent reports it once, with the reason.
var ErrNotFound = errors.New("not found")

// Source is one kind of power sensor on a host.
type Source interface {
	// Name is the source's name, the value of fleetwatt.power.source ("rapl").
	Name() string
	// Read takes one reading of every zone or channel of the source. A zone that fails does
	// not hide the others: Read returns the readings it took and the errors of the rest,
	// joined.
	Read(ctx context.Context) ([]Reading, error)
}

// Reading is one zone's or channel's value at the time of reading. It is either an energy
// counter (Counter true: EnergyUJ and MaxUJ) or a power sample (PowerW).
type Reading struct {
	// ID identifies the zone within its source on this host and is stable across reboots when
	// the hardware is ("package-0", "dram-1", "psys", "ACPI000D:00"). It becomes hw.id.
	ID string
	// Name is the driver's own label ("package-0", "CPU power"); it becomes hw.name.
	Name string
	// Source is the source's name (semconv.SourceRAPL, ...).
	Source string
	// Scope says what the reading covers.
	Scope semconv.Scope
	// Estimated is true for model estimates, false for measurements.
	Estimated bool

	// Counter is true when the reading is a monotonic energy counter.
	Counter bool
	// EnergyUJ is the counter's value in µJ.
	EnergyUJ uint64
	// MaxUJ is the value at which the counter wraps to zero, in µJ; 0 when unknown.
	MaxUJ uint64
	// PowerW is the power in W, for sources that give power rather than energy.
	PowerW float64
	// Averaged is the window over which the sensor averaged PowerW (ACPI
	// power1_average_interval, a BMC's averaging interval); 0 for an instantaneous value.
	// The agent integrates averaged values as constant over the interval they cover and
	// instantaneous ones with the trapezoid rule.
	Averaged time.Duration
	// MaxW is a plausibility bound the sensor knows itself (a PSU's rated capacity, a power
	// cap), in W; 0 when it knows none. Readings above the bound are rejected and counted.
	MaxW float64
}

// Info describes a source for `fleetwatt-agent doctor`.
type Info struct {
	// Detail says where the source reads: "/sys/class/powercap", "ipmitool dcmi power
	// reading", "https://10.0.0.5/redfish/v1".
	Detail string
	// Cadence is how often the hardware updates its values (RAPL ≈1 ms, a BMC ≈1 s to 1 min);
	// 0 when unknown. A value older than a few cadences is stale.
	Cadence time.Duration
	// Needs says what reading the source requires ("root: energy_uj is 0400"), empty when
	// anyone can read it.
	Needs string
}

// Describer is implemented by sources that can describe themselves.
type Describer interface {
	Info() Info
}

// Key identifies the series a reading belongs to.
func (r Reading) Key() string { return r.Source + "/" + r.ID }

// Method is the value of fleetwatt.power.method.
func (r Reading) Method() string {
	if r.Estimated {
		return semconv.MethodEstimated
	}
	return semconv.MethodMeasured
}
