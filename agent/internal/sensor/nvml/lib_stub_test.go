//go:build linux && nvml_dlopen

package nvml

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// TestStubLibrary drives the purego binding through testdata/nvml_stub.c, a library with
// NVML's C ABI (the hardware's real interface) built here with gcc: symbols, argument passing,
// string buffers, the energy counter and the power fallback.
func TestStubLibrary(t *testing.T) {
	lib := buildStub(t)
	r, err := Open(Options{Library: lib, SMICommand: filepath.Join(t.TempDir(), "no-nvidia-smi")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx := context.Background()
	first, err := r.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []sensor.Reading{
		{
			ID: "GPU-5b0c7e2a-0000-4000-8000-000000000000", Name: "NVIDIA H100 80GB HBM3",
			Source: semconv.SourceNVML, Scope: semconv.ScopeGPU, Counter: true,
			EnergyUJ: first[0].EnergyUJ + 350_000_000, MaxW: 700 * limitMargin,
		},
		{
			ID: "GPU-9d1f3a77-0000-4000-8000-000000000001", Name: "Tesla P4",
			Source: semconv.SourceNVML, Scope: semconv.ScopeGPU, PowerW: 72.5, MaxW: 75 * limitMargin,
		},
	}
	if diff := cmp.Diff(want, second); diff != "" {
		t.Errorf("readings through the stub library (-want +got):\n%s", diff)
	}
}

// buildStub compiles testdata/nvml_stub.c into a shared library in a new directory and
// returns its path. Each build is its own library, with its own counter, when loaded.
func buildStub(t *testing.T) string {
	t.Helper()
	lib := filepath.Join(t.TempDir(), "libnvidia-ml-stub.so")
	if out, err := exec.Command("gcc", "-shared", "-fPIC", "-o", lib, filepath.Join("testdata", "nvml_stub.c")).CombinedOutput(); err != nil {
		t.Fatalf("build the NVML stub (needs gcc): %v\n%s", err, out)
	}
	return lib
}
