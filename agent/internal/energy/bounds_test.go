package energy

import (
	"testing"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

func TestDefaultBounds(t *testing.T) {
	t.Parallel()
	known := DefaultBounds(Host{Sockets: 2, TDPPerSocketW: 280, PeakW: 455})
	unknown := DefaultBounds(Host{Sockets: 1})
	tests := []struct {
		scope          semconv.Scope
		known, unknown float64
	}{
		{semconv.ScopeCPUPackage, 700, 1000},
		{semconv.ScopeCPUCore, 700, 1000},
		{semconv.ScopeDRAM, 500, 500},
		{semconv.ScopeWall, 15000, 15000},
		{semconv.ScopePlatform, 15000, 15000},
		{semconv.ScopeGPU, 2000, 2000},
	}
	for _, tt := range tests {
		r := sensor.Reading{Scope: tt.scope}
		if got := known(r); got != tt.known {
			t.Errorf("%s with a known CPU: %v W, want %v", tt.scope, got, tt.known)
		}
		if got := unknown(r); got != tt.unknown {
			t.Errorf("%s with an unknown CPU: %v W, want %v", tt.scope, got, tt.unknown)
		}
	}
}
