//go:build linux && nvml_dlopen && nvml_hardware

package nvml

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
)

// TestLibrary reads real GPUs through libnvidia-ml.so.1, on a GPU machine:
// `go test -tags nvml_dlopen,nvml_hardware ./agent/internal/sensor/nvml` (make test-gpu). The
// machines that build and test fleetwatt have no GPU, so CI runs TestStubLibrary instead,
// which drives the same binding through a library with NVML's C ABI.
func TestLibrary(t *testing.T) {
	b, err := openLibrary(DefaultLibrary)
	if errors.Is(err, errNoLibrary) || errors.Is(err, sensor.ErrNotFound) {
		t.Skipf("no usable %s on this machine (no NVIDIA GPU or driver): %v", DefaultLibrary, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.close(); err != nil {
			t.Error(err)
		}
	})
	lb := b.(*libBackend)
	if len(lb.gpus) == 0 {
		t.Fatal("no GPU found")
	}
	t.Logf("%s", b.info().Detail)

	ctx := context.Background()
	start := time.Now()
	first, err := b.read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	second, err := b.read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start).Seconds()
	if len(first) != len(lb.gpus) || len(second) != len(first) {
		t.Fatalf("%d and %d readings for %d GPUs", len(first), len(second), len(lb.gpus))
	}
	for i, r := range second {
		if r.ID == "" || r.Name == "" {
			t.Errorf("gpu %d: no ID or name: %+v", i, r)
		}
		if r.MaxW <= 0 {
			t.Errorf("gpu %d: no power limit: %+v", i, r)
		}
		limit := r.MaxW / limitMargin
		power := r.PowerW
		if r.Counter {
			if r.EnergyUJ < first[i].EnergyUJ {
				t.Fatalf("gpu %d: energy went back from %d to %d µJ in 200 ms", i, first[i].EnergyUJ, r.EnergyUJ)
			}
			// The counter's average over the interval; NVML updates it every ~100 ms, so
			// it is bounded by the margin rather than the limit itself.
			avg := float64(r.EnergyUJ-first[i].EnergyUJ) / 1e6 / elapsed
			if avg > r.MaxW {
				t.Errorf("gpu %d: %g W from the energy counter, above %g W", i, avg, r.MaxW)
			}
			var mW uint32
			if ret := lb.l.powerUsage(lb.gpus[i].handle, &mW); ret != nvmlSuccess {
				t.Fatalf("gpu %d: %v", i, lb.l.err("nvmlDeviceGetPowerUsage", ret))
			}
			power = float64(mW) / 1000
		}
		if power <= 0 || power > limit {
			t.Errorf("gpu %d: power %g W outside 0..%g W", i, power, limit)
		}
	}
}
