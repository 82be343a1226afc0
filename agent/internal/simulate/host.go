package simulate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/identity"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpustat"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Variation is the part-to-part spread of idle and peak power: each host's idle_w and peak_w
// are the group's times 1 + Variation·v, v uniform in [−1, 1] and drawn separately for idle
// and peak. Servers of one model differ by a few percent (research/efficiency.md §2.3
// suggests σ ≈ 3–6 %); ±3 % keeps a pool's mean within about 1 % of the spec with 10 hosts.
const Variation = 0.03

// peakHour is the local hour at which the diurnal load peaks: mid-afternoon.
const peakHour = 15

// noiseKnot is the spacing of the utilization noise's knots. The noise is a standard normal
// value at every whole minute (Unix time), linearly interpolated between them, so u(t) is a
// function of time alone: the same whatever the interval, the mode or the order of reads.
const noiseKnot = time.Minute

// maxSubstep bounds the step of the numerical integration of power and busy time over an
// interval (midpoint rule). u(t) is linear between noise knots apart from the slow diurnal
// cosine, so 10 s steps are exact to far better than 0.01 % (the tests check 0.1 %).
const maxSubstep = 10 * time.Second

// userShare is the part of busy CPU time counted as user time; the rest is system time.
const userShare = 0.85

// Host is one virtual host: its identity, its true power curve and load, and the state of its
// simulated energy counter and CPU time. It is the host's sensor.Source, with a single
// reading: a counter of the group's scope.
//
// The truth (IdleW, PeakW, Utilization, PowerW, Integrate) never changes and is safe for
// concurrent use; Read and the stepping are not: one goroutine runs a host.
type Host struct {
	// HostName is host.name: "<region>-<arch>-<nn>", numbered from 01 across the groups
	// of one region and architecture.
	HostName string
	// GroupIndex and Index place the host in the spec: the Index-th host (from 0) of
	// Spec.Groups[GroupIndex].
	GroupIndex, Index int
	// Group is the host's group.
	Group Group
	// IdleW and PeakW are this host's true power at 0 % and 100 % utilization, W: the
	// group's after part-to-part variation (see Variation).
	IdleW, PeakW float64

	shape  func(float64) float64
	offset time.Duration // local time − UTC
	key    uint64        // the host's random stream: seed, group and index mixed

	at     time.Time     // the simulated time of the state below
	uj     uint64        // the energy counter, µJ
	cpu    cpustat.Times // CPU time since the host started, s
	ops    float64       // work since the host started
	opsAt  time.Time     // when ops started counting
	opsPrv float64       // ops at the previous sample
	idle   idleTotals    // time and entries per idle state since the first reading
}

var _ sensor.Source = (*Host)(nil)

// NewHosts returns the hosts of spec, in spec order, deterministic for (seed, group index,
// host index). spec must be valid.
func NewHosts(spec Spec, seed uint64) ([]*Host, error) {
	var hosts []*Host
	number := map[string]int{} // region/arch → hosts named so far
	for gi, g := range spec.Groups {
		shape, err := g.Curve.shape()
		if err != nil {
			return nil, fmt.Errorf("groups[%d].curve: %w", gi, err)
		}
		offset, ok := g.utcOffset()
		if !ok {
			return nil, fmt.Errorf("groups[%d]: region %q: no UTC offset known", gi, g.Region)
		}
		for hi := range g.Hosts {
			key := mix(mix(seed) ^ mix(uint64(gi)<<32|uint64(hi)))
			r := rand.New(rand.NewPCG(seed, uint64(gi)<<32|uint64(hi))) //nolint:gosec // G404: a reproducible simulation needs a seeded generator, not secrecy
			idle := g.IdleW * (1 + Variation*(2*r.Float64()-1))
			peak := g.PeakW * (1 + Variation*(2*r.Float64()-1))
			number[g.Region+"/"+g.Arch]++
			hosts = append(hosts, &Host{
				HostName:   fmt.Sprintf("%s-%s-%02d", g.Region, g.Arch, number[g.Region+"/"+g.Arch]),
				GroupIndex: gi,
				Index:      hi,
				Group:      g,
				IdleW:      idle,
				PeakW:      max(peak, idle), // a power curve never falls
				shape:      shape,
				offset:     time.Duration(offset * float64(time.Hour)),
				key:        key,
			})
		}
	}
	return hosts, nil
}

// Identity is the host as the agent's identity package would describe it.
func (h *Host) Identity() identity.Host {
	tpc := h.Group.threadsPerCore()
	return identity.Host{
		Name:           h.HostName,
		Arch:           h.Group.Arch,
		CPUModel:       h.Group.CPUModel,
		Sockets:        h.Group.Sockets,
		Cores:          h.Group.Cores / tpc,
		LogicalCPUs:    h.Group.Cores,
		ThreadsPerCore: tpc,
		NominalHz:      h.Group.clocks().NominalHz,
	}
}

// Utilization is the host's true CPU utilization at t, 0..1:
//
//	u(t) = clamp(mean + A·cos(2π·(h − 15)/24) + σ·n(t), 0, 1)
//
// with h the local hour of t (fractional; the region's standard-time UTC offset), A the
// diurnal amplitude, σ the noise and n(t) the host's noise: a standard normal value at every
// whole minute, linearly interpolated. The load thus peaks at 15:00 local time and bottoms
// out at 03:00.
func (h *Host) Utilization(t time.Time) float64 {
	u := h.Group.Utilization
	local := t.Add(h.offset)
	sinceMidnight := local.Sub(local.Truncate(24 * time.Hour)) // t.Truncate works in UTC
	hour := sinceMidnight.Hours()
	v := u.Mean + u.DiurnalAmplitude*math.Cos(2*math.Pi*(hour-peakHour)/24)
	if u.Noise > 0 {
		v += u.Noise * h.noise(t)
	}
	return min(max(v, 0), 1)
}

// noise is n(t): standard normal values at the minute knots around t, interpolated.
func (h *Host) noise(t time.Time) float64 {
	ns := t.UnixNano()
	knot := int64(noiseKnot)
	k := floorDiv(ns, knot)
	f := float64(ns-k*knot) / float64(knot)
	a := normal(h.key^saltUtil, uint64(k))
	if f == 0 {
		return a
	}
	return a + f*(normal(h.key^saltUtil, uint64(k+1))-a)
}

// PowerW is the host's true power at utilization u, W: idle + (peak − idle)·curve(u). It is
// IdleW at u = 0 and PeakW at u = 1.
func (h *Host) PowerW(u float64) float64 {
	s := h.shape(u)
	return h.IdleW*(1-s) + h.PeakW*s // exactly IdleW and PeakW at the ends
}

// Truth is what a host really did over an interval, before sensor noise.
type Truth struct {
	// EnergyJ is the energy, J.
	EnergyJ float64
	// BusyCPUSeconds is the busy time summed over the logical CPUs, s.
	BusyCPUSeconds float64
	// Ops is the work done, operations.
	Ops float64
}

// Integrate returns the truth over [from, to]: power and utilization integrated with the
// midpoint rule in equal steps of at most 10 s. This is what the host's counters advance by
// (the energy counter times its sensor noise).
func (h *Host) Integrate(from, to time.Time) Truth {
	dt := to.Sub(from)
	if dt <= 0 {
		return Truth{}
	}
	n := int64((dt + maxSubstep - 1) / maxSubstep)
	step := dt / time.Duration(n)
	var sumP, sumU float64
	for i := range n {
		u := h.Utilization(from.Add(step*time.Duration(i) + step/2))
		sumP += h.PowerW(u)
		sumU += u
	}
	sec := dt.Seconds() / float64(n)
	busy := sumU * sec * float64(h.Group.Cores)
	return Truth{EnergyJ: sumP * sec, BusyCPUSeconds: busy, Ops: busy * h.Group.OpsPerCoreSecond}
}

// Name is semconv.SourceSimulator.
func (h *Host) Name() string { return semconv.SourceSimulator }

// Read returns the host's energy counter at its current simulated time.
func (h *Host) Read(ctx context.Context) ([]sensor.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	scope := h.Group.scope()
	return []sensor.Reading{{
		ID:        "simulated-" + string(scope),
		Name:      fmt.Sprintf("simulated %s power (%s curve)", scope, h.Group.Curve),
		Source:    semconv.SourceSimulator,
		Scope:     scope,
		Estimated: scope == semconv.ScopeEstimatedHost,
		Counter:   true,
		EnergyUJ:  h.uj,
	}}, nil
}

// start sets the host's clock to t, the time of its first reading.
func (h *Host) start(t time.Time) {
	h.at, h.opsAt, h.opsPrv = t, t, h.ops
}

// advance moves the host to t: the energy counter grows by the true energy times
// 1 + sensor_noise·N(0,1) (never below zero; the normal value drawn for the host and t),
// CPU time and work by the truth over the interval.
func (h *Host) advance(t time.Time) {
	if !t.After(h.at) {
		return
	}
	truth := h.Integrate(h.at, t)
	factor := 1.0
	if sn := h.Group.SensorNoise; sn > 0 {
		factor = max(0, 1+sn*normal(h.key^saltSensor, uint64(t.UnixNano())))
	}
	h.uj += uint64(math.Round(truth.EnergyJ * factor * 1e6))
	total := float64(h.Group.Cores) * t.Sub(h.at).Seconds()
	h.cpu.User += userShare * truth.BusyCPUSeconds
	h.cpu.System += (1 - userShare) * truth.BusyCPUSeconds
	h.cpu.Idle += max(0, total-truth.BusyCPUSeconds)
	h.ops += truth.Ops
	h.at = t
}

// now is the host's simulated time: the Collector's clock.
func (h *Host) now() time.Time { return h.at }

// cpuTimes is the host's CPU time since it started, as /proc/stat would show it.
func (h *Host) cpuTimes() (cpustat.Stat, error) { return cpustat.Stat{All: h.cpu}, nil }

// Salts separate the host's random streams.
const (
	saltUtil   = 0x9e3779b97f4a7c15
	saltSensor = 0xbf58476d1ce4e5b9
)

// normal is a standard normal value determined by (key, i): a PCG seeded from them.
func normal(key, i uint64) float64 {
	return rand.New(rand.NewPCG(key, mix(i))).NormFloat64() //nolint:gosec // G404: reproducible by design
}

// mix is SplitMix64's finalizer: consecutive inputs give unrelated outputs.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// floorDiv is a/b rounded towards −∞ (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
