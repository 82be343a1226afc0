package ipmi

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/internal/fixture"

	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
)

// bmcIpmitool installs a fake ipmitool that answers "dcmi power reading" as an iDRAC 9 does,
// with the instantaneous reading taken from the file it returns: the test writes the BMC's
// current watts there before each Read, and the Reader runs the script through its real exec
// path.
func bmcIpmitool(t *testing.T) (cmd, watts string) {
	t.Helper()
	dir := t.TempDir()
	cmd = filepath.Join(dir, "ipmitool")
	watts = filepath.Join(dir, "watts")
	script := fmt.Sprintf(`#!/bin/sh
read w < '%s'
cat <<EOF

    Instantaneous power reading:                   $w Watts
    Minimum during sampling period:                196 Watts
    Maximum during sampling period:                412 Watts
    Average power reading over sample period:      238 Watts
    IPMI timestamp:                           Wed Mar 12 09:41:07 2025
    Sampling period:                          00000001 Seconds.
    Power reading state is:                   activated

EOF
`, watts)
	if err := os.WriteFile(watts, []byte("245\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fixture.Executable(t, cmd, script)
	return cmd, watts
}

// TestAccuracySteps models a Dell server whose load changes in steps, read through the BMC's
// DCMI power reading every 10 s for 20 minutes (each reading runs ipmitool, so the simulated
// span is shorter than the other sources'): idle at 212 W, a build job at 388 W, a heavier
// phase at 455 W, a tail at 301 W, idle again. DCMI reports whole watts, refreshed by the BMC
// about once a second, so each reading is the level of the moment; the steps fall between
// readings, where the trapezoid rule blurs each of them over one interval. The energy must be
// within 1% of the staircase's integral.
func TestAccuracySteps(t *testing.T) {
	t.Parallel()
	const (
		step  = 10 * time.Second
		steps = 120 // 20 minutes
	)
	levels := []struct {
		from  float64 // s
		watts int
	}{
		{0, 212}, {183.4, 388}, {457.2, 455}, {781.9, 301}, {1004.6, 212},
	}
	power := func(s float64) int {
		w := levels[0].watts
		for _, l := range levels {
			if s >= l.from {
				w = l.watts
			}
		}
		return w
	}
	// integral is ∫₀ˢ P dt in J.
	integral := func(s float64) float64 {
		var e float64
		for i, l := range levels {
			end := s
			if i+1 < len(levels) {
				end = min(s, levels[i+1].from)
			}
			if end > l.from {
				e += float64(l.watts) * (end - l.from)
			}
		}
		return e
	}

	cmd, watts := bmcIpmitool(t)
	r, err := Open(t.Context(), Options{Command: cmd, DevDir: devDir(t, "ipmi0")})
	if err != nil {
		t.Fatal(err)
	}
	m := energy.NewMeter(energy.DefaultBounds(energy.Host{Sockets: 2}))
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var got float64
	for i := 0; i <= steps; i++ {
		s := float64(i) * step.Seconds()
		if err := os.WriteFile(watts, []byte(strconv.Itoa(power(s))+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		readings, err := r.Read(t.Context())
		if err != nil {
			t.Fatalf("step %d: Read: %v", i, err)
		}
		if len(readings) != 1 || readings[0].PowerW != float64(power(s)) {
			t.Fatalf("step %d: Read = %+v, want %d W", i, readings, power(s))
		}
		for _, d := range m.Update(t0.Add(time.Duration(i)*step), readings) {
			got += d.Joules
		}
	}
	span := float64(steps) * step.Seconds()
	want := integral(span)
	t.Logf("dcmi: staircase 212-455 W over %g s: %.1f J, want %.1f J (%+.4f%%)", span, got, want, 100*(got-want)/want)
	if rel := math.Abs(got-want) / want; rel > 0.01 {
		t.Errorf("%v J over %g s, want %v J ± 1%% (off by %.3f%%)", got, span, want, 100*rel)
	}
	if len(m.Rejected) != 0 {
		t.Errorf("rejected %v, want none", m.Rejected)
	}
}
