package energy

import (
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Host is what the plausibility bounds are derived from.
type Host struct {
	// Sockets is the number of CPU packages.
	Sockets int
	// TDPPerSocketW is the CPU's thermal design power per socket, W; 0 when unknown.
	TDPPerSocketW float64
	// PeakW is the whole server's peak power at the wall, W; 0 when unknown.
	PeakW float64
}

// Defaults when the CPU is unknown. They are loose on purpose: they exist to catch readings
// that are wrong by orders of magnitude (the 4.29 MW ACPI sentinel, a counter read as the
// wrong unit), not to second-guess a busy server. No server CPU socket draws 1 kW today (the
// largest TDPs are about 500 W), and 15 kW covers an 8-GPU server at the wall.
const (
	defaultSocketW = 1000.0
	defaultHostW   = 15000.0
	dramSocketW    = 500.0
	ioW            = 500.0
	gpuW           = 2000.0
)

// DefaultBounds returns the plausibility bound of each scope for host h: a reading of a
// CPU-level scope covers one socket, one of a host-level scope the whole server.
func DefaultBounds(h Host) Bounds {
	socketW := defaultSocketW
	if h.TDPPerSocketW > 0 {
		// Turbo and power limit 2 let a package exceed its TDP for a while; 2.5× is above
		// any PL2 in use.
		socketW = 2.5 * h.TDPPerSocketW
	}
	hostW := defaultHostW
	if h.PeakW > 0 {
		// A GPU server can draw far more than its CPUs' SPECpower peak: keep the generous
		// default unless the CPU-only peak is larger still.
		hostW = max(hostW, 3*h.PeakW)
	}
	return func(r sensor.Reading) float64 {
		switch r.Scope {
		case semconv.ScopeCPUPackage, semconv.ScopeCPUCore:
			return socketW
		case semconv.ScopeDRAM:
			return dramSocketW
		case semconv.ScopeIO:
			return ioW
		case semconv.ScopeGPU:
			return gpuW
		default: // wall, node-dc, platform, estimated-host
			return hostW
		}
	}
}
