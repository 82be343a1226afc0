package simulate

import (
	"context"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// idlePoints returns the values of an idle-state metric by state.
func idlePoints(rm *metricdata.ResourceMetrics, name string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name != name {
			continue
		}
		for _, p := range m.Data.(metricdata.Sum[float64]).DataPoints {
			st, _ := p.Attributes.Value(semconv.AttrIdleState)
			out[st.AsString()] = p.Value
		}
	}
	return out
}

// TestCPUState follows a day of an x86 and an ARM host through the agent's builder: the
// frequency stays between the model's lowest and highest clock and rises with the load; the
// idle states share exactly the idle CPU time, the deep one the more the idler the host; the
// entries follow from the residencies; and a second run gives the same values.
func TestCPUState(t *testing.T) {
	t.Parallel()
	hosts := defaultHosts(t, 1)
	for _, h := range []*Host{hosts[0], hosts[10]} { // cn-hangzhou EPYC 7763, Altra Q80-30
		t.Run(h.HostName, func(t *testing.T) {
			t.Parallel()
			c := h.Group.clocks()
			if got := h.Identity().NominalHz; got != c.NominalHz || got < 2e9 || got > 3.5e9 {
				t.Errorf("nominal clock %v Hz, want the model's %v Hz", got, c.NominalHz)
			}
			shallow, deep := idleStates(h.Group.Arch)
			run := func() []float64 {
				v := newVHost(h, &Options{Version: "test", Interval: 5 * time.Minute}, discard)
				v.begin(context.Background(), day0)
				var freqs []float64
				var lastU, lastF float64
				for k := 1; k <= 288; k++ {
					at := day0.Add(time.Duration(k) * 5 * time.Minute)
					rm := v.step(context.Background(), at)
					f := sumMetric(rm, semconv.MetricCPUFrequency)
					u := h.Utilization(at)
					if f < c.MinHz || f > c.MaxHz {
						t.Fatalf("%s: %v Hz outside %v..%v", at, f, c.MinHz, c.MaxHz)
					}
					if k > 1 && (u-lastU)*(f-lastF) < 0 {
						t.Fatalf("%s: utilization %v→%v but frequency %v→%v", at, lastU, u, lastF, f)
					}
					lastU, lastF = u, f
					freqs = append(freqs, f)

					total := float64(h.Group.Cores) * (5 * time.Minute).Seconds()
					idle := total - busyTime(rm)
					times := idlePoints(rm, semconv.MetricCPUIdleTime)
					usage := idlePoints(rm, semconv.MetricCPUIdleUsage)
					if len(times) != 2 || math.Abs(times[shallow]+times[deep]-idle) > 1e-6 {
						t.Fatalf("%s: idle states %v sum to %v s, idle CPU time %v s", at, times, times[shallow]+times[deep], idle)
					}
					uAvg := 1 - idle/total
					if want := idle * DeepIdleShare(uAvg); math.Abs(times[deep]-want) > 1e-6 {
						t.Fatalf("%s: %v s in %s, want %v", at, times[deep], deep, want)
					}
					if want := math.Round(times[deep] / deepResidency.Seconds()); usage[deep] != want {
						t.Fatalf("%s: %v entries into %s, want %v", at, usage[deep], deep, want)
					}
				}
				return freqs
			}
			if a, b := run(), run(); !slicesEqual(a, b) {
				t.Error("a second run gave other frequencies")
			}
			if lo, hi := h.FrequencyHz(0), h.FrequencyHz(1); lo != c.MinHz || hi != c.MaxHz {
				t.Errorf("f(0) = %v, f(1) = %v, want %v and %v", lo, hi, c.MinHz, c.MaxHz)
			}
		})
	}
}

func slicesEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestClocks: known models get their spec-sheet clocks, an Intel name its "@ GHz", anything
// else the architecture's typical clocks; min ≤ nominal ≤ max always.
func TestClocks(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		model, arch string
		nominal     float64
	}{
		{"AMD EPYC 7763 64-Core Processor", "amd64", 2.45e9},
		{"Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", "amd64", 2.3e9},
		{"Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", "amd64", 2.0e9},
		{"NVIDIA Grace CPU Superchip", "arm64", 3.1e9},
		{"Some ARM part", "arm64", 2.8e9},
		{"Some x86 part", "amd64", 2.4e9},
	} {
		g := Group{CPUModel: c.model, Arch: c.arch}
		got := g.clocks()
		if got.NominalHz != c.nominal || got.MinHz > got.NominalHz || got.NominalHz > got.MaxHz {
			t.Errorf("%s: %+v, want nominal %v between min and max", c.model, got, c.nominal)
		}
	}
}
