package nvml

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/internal/fixture"

	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
)

// TestAccuracySMI models one H100 of an 8-GPU server running a training job, read through
// nvidia-smi every 10 s for 20 minutes (each reading runs nvidia-smi, so the simulated span is
// shorter than the other sources'). The board idles at 70 W; from 185.3 s to 1030.7 s the job
// runs and its power swings with the training steps' compute and communication phases,
// P(t) = 520 + 130·sin(2π(t − 185.3 s)/300 s) W; then the board idles again. power.draw is a
// 1 s average, instantaneous beside the 10 s interval, so the Meter integrates it with the
// trapezoid rule, and the energy must be within 1% of P's integral.
func TestAccuracySMI(t *testing.T) {
	t.Parallel()
	const (
		step   = 10 * time.Second
		steps  = 120 // 20 minutes
		idleW  = 70.0
		meanW  = 520.0
		swingW = 130.0
		period = 300.0 // s
		from   = 185.3 // s: the job's start and end, between readings
		to     = 1030.7
	)
	power := func(s float64) float64 {
		if s < from || s >= to {
			return idleW
		}
		return meanW + swingW*math.Sin(2*math.Pi*(s-from)/period)
	}
	// integral is ∫₀ˢ P dt in J.
	integral := func(s float64) float64 {
		run := math.Max(0, math.Min(s, to)-from)
		return idleW*(s-run) + meanW*run + swingW*period/(2*math.Pi)*(1-math.Cos(2*math.Pi*run/period))
	}

	// A fake nvidia-smi that prints the board's line from a file the test rewrites, as
	// --query-gpu=index,uuid,name,power.draw,enforced.power.limit --format=csv,noheader,nounits
	// prints it.
	dir := t.TempDir()
	smi, answer := filepath.Join(dir, "nvidia-smi"), filepath.Join(dir, "answer.csv")
	write := func(w float64) {
		t.Helper()
		line := fmt.Sprintf("0, GPU-3f1c5a8e-9b2d-4e7a-8c61-2d0f9e4b7a13, NVIDIA H100 80GB HBM3, %.2f, 700.00\n", w)
		if err := os.WriteFile(answer, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(idleW)
	fixture.Executable(t, smi, fmt.Sprintf("#!/bin/sh\nexec cat '%s'\n", answer))
	r, err := Open(Options{Library: noLibrary(t), SMICommand: smi})
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
	var got float64
	for i := 0; i <= steps; i++ {
		s := float64(i) * step.Seconds()
		write(power(s))
		readings, err := r.Read(t.Context())
		if err != nil {
			t.Fatalf("step %d: Read: %v", i, err)
		}
		if len(readings) != 1 || math.Abs(readings[0].PowerW-power(s)) > 0.005 {
			t.Fatalf("step %d: Read = %+v, want %.2f W", i, readings, power(s))
		}
		for _, d := range m.Update(t0.Add(time.Duration(i)*step), readings) {
			got += d.Joules
		}
	}
	span := float64(steps) * step.Seconds()
	want := integral(span)
	t.Logf("gpu 0: %g W idle, %g ± %g W job, over %g s: %.1f J, want %.1f J (%+.4f%%)",
		idleW, meanW, swingW, span, got, want, 100*(got-want)/want)
	if rel := math.Abs(got-want) / want; rel > 0.01 {
		t.Errorf("%v J over %g s, want %v J ± 1%% (off by %.3f%%)", got, span, want, 100*rel)
	}
	if len(m.Rejected) != 0 {
		t.Errorf("rejected %v, want none", m.Rejected)
	}
}
