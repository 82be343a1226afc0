package redfish

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
)

const (
	envMetrics   = "/redfish/v1/Chassis/1U/EnvironmentMetrics"
	accuracyStep = 10 * time.Second // the agent's interval
)

// environment is the rackmount-current chassis's EnvironmentMetrics as the mockup writes it,
// its numbers kept as json.Number so that they go back out exactly as written.
func environment(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "rackmount-current", filepath.FromSlash(envMetrics), "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var env map[string]any
	if err := dec.Decode(&env); err != nil {
		t.Fatal(err)
	}
	return env
}

// serveEnvironment makes b serve env as the chassis's EnvironmentMetrics from now on: the
// test's way of moving the BMC's sensors between readings.
func serveEnvironment(t *testing.T, b *bmc, env map[string]any) {
	t.Helper()
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	b.set(envMetrics, override{body: string(out)})
}

// kWh writes an energy of uj µJ in kWh, exactly: uj must be a multiple of 9, so that
// uj / 3.6·10¹² = (uj/9)·25 / 10¹³ has at most 13 decimals, which the BMC prints.
func kWh(t *testing.T, uj uint64) json.Number {
	t.Helper()
	if uj%9 != 0 {
		t.Fatalf("%d µJ is not a whole number of 10⁻¹³ kWh", uj)
	}
	n := uj / 9 * 25 // 10⁻¹³ kWh
	frac := strings.TrimRight(strconv.FormatUint(n%1e13+1e13, 10)[1:], "0")
	s := strconv.FormatUint(n/1e13, 10)
	if frac != "" {
		s += "." + frac
	}
	return json.Number(s)
}

// TestAccuracyEnergyCounter models a rack server whose BMC keeps the chassis's energy
// counter (EnvironmentMetrics.EnergykWh, in kWh) while it draws a steady 387 W at the wall
// for an hour, read over HTTPS every 10 s. Each interval adds 3870 J, 0.001075 kWh, printed
// with all its decimals: the Reader's conversion to µJ must be exact (the counter's µJ,
// unchanged) and so must the joules. Redfish defines no range for the counter, so no wrap is
// possible: a decrease would be a reset (see the energy package).
func TestAccuracyEnergyCounter(t *testing.T) {
	t.Parallel()
	const (
		steps = 360 // one hour
		watts = 387
		// The mockup's counters, LifetimeReading 8412.000000125 kWh and Reading
		// 1325.675125 kWh, in µJ.
		lifetimeUJ   = 8412*3_600_000_000_000 + 450_000
		sinceResetUJ = 1325675125 * 3_600_000
		perStep      = watts * uint64(accuracyStep/time.Microsecond)
	)
	b := newBMC(t, "rackmount-current")
	r, err := Open(t.Context(), b.options())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	env := environment(t)
	counters := env["EnergykWh"].(map[string]any)
	m := energy.NewMeter(energy.DefaultBounds(energy.Host{Sockets: 2}))
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var got float64
	for i := 0; i <= steps; i++ {
		added := uint64(i) * perStep
		counters["LifetimeReading"] = kWh(t, lifetimeUJ+added)
		counters["Reading"] = kWh(t, sinceResetUJ+added)
		serveEnvironment(t, b, env)
		readings, err := r.Read(t.Context())
		if err != nil {
			t.Fatalf("step %d: Read: %v", i, err)
		}
		var counter *sensor.Reading
		for j := range readings {
			if readings[j].Counter {
				counter = &readings[j]
			}
		}
		if counter == nil || counter.EnergyUJ != lifetimeUJ+added {
			t.Fatalf("step %d: counter reading %+v, want exactly %d µJ", i, counter, lifetimeUJ+added)
		}
		for _, d := range m.Update(t0.Add(time.Duration(i)*accuracyStep), readings) {
			if !d.Reading.Counter {
				continue // the power supplies' output, a steady node-dc reading
			}
			if want := watts * accuracyStep.Seconds(); d.Joules != want {
				t.Fatalf("step %d: %v J, want exactly %v J", i, d.Joules, want)
			}
			got += d.Joules
		}
	}
	want := watts * float64(steps) * accuracyStep.Seconds()
	t.Logf("chassis-1U/energy: %d W over %d intervals: %v J, want %v J", watts, steps, got, want)
	if got != want {
		t.Errorf("%v J over the hour, want exactly %v J", got, want)
	}
	if len(m.Rejected) != 0 {
		t.Errorf("rejected %v, want none", m.Rejected)
	}
}

// TestAccuracyPower models the same server on firmware without the energy counter, so the
// wall series is the chassis's EnvironmentMetrics.PowerWatts, read every 10 s for an hour.
// The load idles at 250 W, ramps to 450 W over 10 minutes, holds for 25 minutes and ramps
// back down over the hour's last 20 minutes. Like iDRAC, the BMC refreshes the value once a
// minute with the mean of the minute before, so the readings step and lag the load by 30 to
// 90 s; the energy must still be within 1% of the load's integral.
func TestAccuracyPower(t *testing.T) {
	t.Parallel()
	const (
		steps   = 360 // one hour
		idleW   = 250.0
		busyW   = 450.0
		upAt    = 300.0 // s: the ramp up starts
		upFor   = 600.0 // s it takes
		downAt  = 2400.0
		downFor = 1200.0
		refresh = 60.0 // s between the BMC's updates
	)
	// integral is ∫₀ˢ P dt in J (for s < 0, the idle before): the idle, plus the area the
	// load adds above it up to s.
	integral := func(s float64) float64 {
		within := func(from, to float64) float64 { return math.Max(0, math.Min(s, to)-from) }
		up, down := within(upAt, upAt+upFor), within(downAt, downAt+downFor)
		span := busyW - idleW
		return idleW*s +
			span*up*up/upFor/2 + // under the ramp up
			span*within(upAt+upFor, downAt) + // the plateau
			span*(down-down*down/downFor/2) // under the ramp down
	}
	// bmcWatts is what PowerWatts shows at s: the mean over the last whole minute.
	bmcWatts := func(s float64) float64 {
		end := math.Floor(s/refresh) * refresh
		return (integral(end) - integral(end-refresh)) / refresh
	}

	b := newBMC(t, "rackmount-current")
	env := environment(t)
	delete(env, "EnergykWh")
	serveEnvironment(t, b, env)
	r, err := Open(t.Context(), b.options())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	m := energy.NewMeter(energy.DefaultBounds(energy.Host{Sockets: 2}))
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var got float64
	for i := 0; i <= steps; i++ {
		s := float64(i) * accuracyStep.Seconds()
		env["PowerWatts"].(map[string]any)["Reading"] = json.Number(strconv.FormatFloat(bmcWatts(s), 'f', 1, 64))
		serveEnvironment(t, b, env)
		readings, err := r.Read(t.Context())
		if err != nil {
			t.Fatalf("step %d: Read: %v", i, err)
		}
		for _, d := range m.Update(t0.Add(time.Duration(i)*accuracyStep), readings) {
			if d.Reading.ID == "chassis-1U/power" {
				got += d.Joules
			}
		}
	}
	hour := float64(steps) * accuracyStep.Seconds()
	want := integral(hour)
	t.Logf("chassis-1U/power: %g-%g W ramps, refreshed every %g s, over %g s: %.1f J, want %.1f J (%+.4f%%)",
		idleW, busyW, refresh, hour, got, want, 100*(got-want)/want)
	if rel := math.Abs(got-want) / want; rel > 0.01 {
		t.Errorf("%v J over the hour, want %v J ± 1%% (off by %.3f%%)", got, want, 100*rel)
	}
	if len(m.Rejected) != 0 {
		t.Errorf("rejected %v, want none", m.Rejected)
	}
}
