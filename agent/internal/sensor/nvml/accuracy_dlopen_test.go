//go:build linux && nvml_dlopen

package nvml

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
)

// TestAccuracyLibraryCounter reads the stub library's two GPUs every second for an hour
// through the purego binding and the energy meter. The stub's H100 counter
// (nvmlDeviceGetTotalEnergyConsumption, mJ) advances 350 J per call, so one call a second is
// the 350 W the stub's nvmlDeviceGetPowerUsage reports for it: a GPU under a steady training
// load. Its joules must come back exactly. The counter is 64 bits of mJ since the driver
// loaded and never wraps (a driver reload is a reset, which the energy package tests). The
// Tesla P4 beside it has no counter and reports a steady 72.5 W, integrated exactly too.
func TestAccuracyLibraryCounter(t *testing.T) {
	t.Parallel()
	const (
		step     = time.Second
		steps    = 3600 // one hour
		counterW = 350.0
		powerW   = 72.5
		h100     = "GPU-5b0c7e2a-0000-4000-8000-000000000000"
		p4       = "GPU-9d1f3a77-0000-4000-8000-000000000001"
	)
	r, err := Open(Options{Library: buildStub(t), SMICommand: filepath.Join(t.TempDir(), "no-nvidia-smi")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})

	m := energy.NewMeter(energy.DefaultBounds(energy.Host{Sockets: 2}))
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	got := make(map[string]float64)
	for i := 0; i <= steps; i++ {
		readings, err := r.Read(t.Context())
		if err != nil {
			t.Fatalf("step %d: Read: %v", i, err)
		}
		if len(readings) != 2 || !readings[0].Counter || readings[1].Counter {
			t.Fatalf("step %d: Read = %+v, want the H100's counter and the P4's power", i, readings)
		}
		for _, d := range m.Update(t0.Add(time.Duration(i)*step), readings) {
			if d.Reading.ID == h100 && d.Joules != counterW*step.Seconds() {
				t.Fatalf("step %d: %v J, want exactly %v J", i, d.Joules, counterW*step.Seconds())
			}
			got[d.Reading.ID] += d.Joules
		}
	}
	hour := float64(steps) * step.Seconds()
	for _, g := range []struct {
		id    string
		watts float64
	}{{h100, counterW}, {p4, powerW}} {
		want := g.watts * hour
		t.Logf("%s: %g W over %g s: %v J, want %v J", g.id, g.watts, hour, got[g.id], want)
		if got[g.id] != want {
			t.Errorf("%s: %v J over the hour, want exactly %v J", g.id, got[g.id], want)
		}
	}
	if len(m.Rejected) != 0 {
		t.Errorf("rejected %v, want none", m.Rejected)
	}
}
