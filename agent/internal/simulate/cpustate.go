package simulate

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/collect"
)

// Clocks are a CPU model's frequencies, Hz: the lowest the governor drops an idle core to,
// the nominal (base) clock and the highest (single-core turbo or boost) clock.
type Clocks struct {
	MinHz, NominalHz, MaxHz float64
}

// knownClocks are the clocks of the default fleet's CPU models, from the vendors' spec sheets
// (base and maximum boost; the lowest P-state as the Linux cpufreq drivers list it,
// rounded). A model is matched by a substring of its name.
var knownClocks = []struct {
	model  string
	clocks Clocks
}{
	{"EPYC 7763", Clocks{1.5e9, 2.45e9, 3.5e9}},        // AMD: base 2.45, boost 3.5 GHz
	{"EPYC 9754", Clocks{1.5e9, 2.25e9, 3.1e9}},        // AMD: base 2.25, boost 3.1 GHz
	{"Platinum 8380", Clocks{0.8e9, 2.3e9, 3.4e9}},     // Intel: base 2.3, turbo 3.4 GHz
	{"Altra Q80-30", Clocks{1.0e9, 3.0e9, 3.0e9}},      // Ampere: 3.0 GHz, no boost
	{"Altra Max M128-30", Clocks{1.0e9, 3.0e9, 3.0e9}}, // Ampere: 3.0 GHz, no boost
	{"Grace", Clocks{1.0e9, 3.1e9, 3.1e9}},             // NVIDIA: 3.1 GHz base, no boost
}

// ghzInName finds the base clock Intel writes into its model names ("@ 2.30GHz").
var ghzInName = regexp.MustCompile(`@\s*([0-9.]+)\s*GHz`)

// clocks returns the group's CPU clocks: a known model's, else an x86 model name's "@ X GHz"
// with typical minimum and boost around it, else the architecture's typical figures.
func (g *Group) clocks() Clocks {
	for _, k := range knownClocks {
		if strings.Contains(g.CPUModel, k.model) {
			return k.clocks
		}
	}
	if m := ghzInName.FindStringSubmatch(g.CPUModel); m != nil {
		if ghz, err := strconv.ParseFloat(m[1], 64); err == nil && ghz > 0 {
			return Clocks{MinHz: 0.8e9, NominalHz: ghz * 1e9, MaxHz: ghz * 1.45e9}
		}
	}
	if g.Arch == "arm64" {
		return Clocks{MinHz: 1.0e9, NominalHz: 2.8e9, MaxHz: 2.8e9}
	}
	return Clocks{MinHz: 1.5e9, NominalHz: 2.4e9, MaxHz: 3.4e9}
}

// FrequencyHz is the host's mean CPU frequency at utilization u, Hz: the governor's lowest
// clock when idle, rising with the busy share to the highest clock at full load,
//
//	f(u) = min + (max − min)·√u
//
// (the square root because a core runs at a high clock as soon as it is busy at all, so the
// mean over the cores rises fastest at low load).
func (h *Host) FrequencyHz(u float64) float64 {
	c := h.Group.clocks()
	u = min(max(u, 0), 1)
	return c.MinHz + (c.MaxHz-c.MinHz)*math.Sqrt(u)
}

// idleStates are the cpuidle states of an architecture, shallow first: C1 and C6 on x86 (both
// Intel's and AMD's deepest core state is C6-like), WFI and the PSCI core power-down on arm64.
func idleStates(arch string) (shallow, deep string) {
	if arch == "arm64" {
		return "WFI", "cpu-sleep"
	}
	return "C1", "C6"
}

// Residency is the mean time a CPU stays in a state once entered: how entries follow from
// the time in each state.
const (
	shallowResidency = 50 * time.Microsecond
	deepResidency    = time.Millisecond
)

// DeepIdleShare is the part of the idle time spent in the deep state at utilization u: a
// nearly idle host lets its cores sleep deeply (90 %), a busy one wakes them so often that
// most idle periods are too short for the deep state (10 % at full load).
func DeepIdleShare(u float64) float64 {
	return min(max(0.9-0.8*u, 0.1), 0.9)
}

// idleTotals are a host's time and entries per idle state since its first reading.
type idleTotals struct {
	since time.Time
	time  map[string]time.Duration
	usage map[string]uint64
}

// cpuState returns the frequency at t and the idle states over the interval [from, t] in
// which the host's CPUs were idle for idle CPU-seconds with utilization u, all CPUs summed, as
// the agent's cpufreq and cpuidle readers would report them.
func (h *Host) cpuState(from, t time.Time, idle, u float64) (*collect.Freq, []collect.Idle) {
	freq := &collect.Freq{MeanHz: h.FrequencyHz(h.Utilization(t))}
	if idle <= 0 {
		return freq, nil
	}
	if h.idle.time == nil {
		h.idle = idleTotals{since: from, time: map[string]time.Duration{}, usage: map[string]uint64{}}
	}
	shallow, deep := idleStates(h.Group.Arch)
	deepS := idle * DeepIdleShare(u)
	states := make([]collect.Idle, 0, 2)
	for _, st := range []struct {
		name      string
		seconds   float64
		residency time.Duration
	}{
		{shallow, idle - deepS, shallowResidency},
		{deep, deepS, deepResidency},
	} {
		d := time.Duration(math.Round(st.seconds * float64(time.Second)))
		n := uint64(math.Round(st.seconds / st.residency.Seconds()))
		h.idle.time[st.name] += d
		h.idle.usage[st.name] += n
		states = append(states, collect.Idle{
			State: st.name, Start: from, End: t, Time: d, Usage: n,
			TotalTime: h.idle.time[st.name], TotalUsage: h.idle.usage[st.name], Since: h.idle.since,
		})
	}
	return freq, states
}
