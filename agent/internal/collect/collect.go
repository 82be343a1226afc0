// Package collect runs the agent's collection cycle: it reads every power source and the
// host's CPU counters at one instant, and turns them into energy and CPU time over the
// interval since the previous cycle. Sources that fail are reported once, when the failure
// starts and when it ends, never once per cycle.
package collect

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpufreq"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpuidle"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpustat"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Sample is what one cycle measured.
type Sample struct {
	// At is when the cycle read its sources; every interval in the sample ends at At.
	At time.Time
	// Power holds the energy of every power series since its previous reading.
	Power []energy.Delta
	// CPU is the CPU time since the previous cycle; nil on the first cycle.
	CPU *CPU
	// Primary is the scope and source whose readings stand for the host in comparisons;
	// empty when the sample has no power.
	Primary Primary
	// Rejected counts the readings rejected as implausible since Started, by source and
	// reason; nil while there are none.
	Rejected map[energy.Rejection]uint64
	// Started is when the Collector started.
	Started time.Time
	// Freq is the CPUs' current frequency; nil without cpufreq.
	Freq *Freq
	// Idle is the time and entries per cpuidle state over the interval, all CPUs summed;
	// nil on the first cycle and without cpuidle.
	Idle []Idle
	// Work is the useful work over the interval, when something counts it (the simulator;
	// applications send their own); nil otherwise.
	Work *Work
}

// Work is operations done over an interval, and since Since.
type Work struct {
	Start, End time.Time
	Ops        float64
	TotalOps   float64
	Since      time.Time
}

// Freq is the CPU frequency at the end of the interval.
type Freq struct {
	// MeanHz is the mean over the logical CPUs, Hz.
	MeanHz float64
	// PerCPU is each CPU's, when per-CPU collection is on.
	PerCPU []cpufreq.Freq
}

// Idle is one cpuidle state over one interval, all CPUs summed.
type Idle struct {
	// State is the state's name ("C6", "WFI").
	State string
	// Start and End bound the interval.
	Start, End time.Time
	// Time is the time spent in the state, Usage the entries into it.
	Time  time.Duration
	Usage uint64
	// TotalTime and TotalUsage count since the Collector's first reading of the state.
	TotalTime  time.Duration
	TotalUsage uint64
	Since      time.Time
}

// Primary names the readings that stand for a host: every reading of Source with Scope (the
// sockets of a package scope together).
type Primary struct {
	Scope  semconv.Scope
	Source string
}

// Is reports whether r is one of the primary readings.
func (p Primary) Is(r sensor.Reading) bool { return r.Scope == p.Scope && r.Source == p.Source }

// primaryScopes rank scopes for standing in for a host: the widest measured boundary first.
// cpu-core, dram, io and gpu cover parts of a host only and never stand for it.
var primaryScopes = []semconv.Scope{
	semconv.ScopeWall, semconv.ScopeNodeDC, semconv.ScopePlatform, semconv.ScopeCPUPackage,
	semconv.ScopeEstimatedHost,
}

// primarySources rank sources of one scope: the BMC sees the PSU, the ACPI meter the board,
// then on-chip counters, then models. The simulator's virtual hosts have no other source, so
// its place only matters in that it is there at all.
var primarySources = []string{
	semconv.SourceIPMI, semconv.SourceRedfish, semconv.SourceACPI, semconv.SourceHwmon,
	semconv.SourceRAPL, semconv.SourceNVML, semconv.SourceModel, semconv.SourceSimulator,
}

// choosePrimary picks the primary readings of a cycle: wall power when a BMC gives it, else
// the widest measured scope; a model estimate only when nothing is measured.
func choosePrimary(deltas []energy.Delta) Primary {
	best, bestScope, bestSource := Primary{}, len(primaryScopes), len(primarySources)
	for _, d := range deltas {
		sc := slices.Index(primaryScopes, d.Reading.Scope)
		src := slices.Index(primarySources, d.Reading.Source)
		if sc < 0 || src < 0 {
			continue
		}
		if sc < bestScope || (sc == bestScope && src < bestSource) {
			best, bestScope, bestSource = Primary{d.Reading.Scope, d.Reading.Source}, sc, src
		}
	}
	return best
}

// CPU is CPU time per mode over one interval, and since the agent started.
type CPU struct {
	// Start and End bound the interval.
	Start, End time.Time
	// All is the time per mode over the interval summed over all logical CPUs, in s.
	All cpustat.Times
	// PerCPU is the same per logical CPU, when per-CPU collection is on.
	PerCPU []cpustat.CPU
	// Since is when the agent's CPU totals start; AllTotal and PerCPUTotal count from it.
	Since       time.Time
	AllTotal    cpustat.Times
	PerCPUTotal []cpustat.CPU
}

// Utilization is the busy fraction of all logical CPUs over the interval, 0..1.
func (c *CPU) Utilization() float64 { return utilization(c.All) }

func utilization(t cpustat.Times) float64 {
	if total := t.Total(); total > 0 {
		return t.Busy() / total
	}
	return 0
}

// Collector holds the state between cycles. It is not safe for concurrent use: one goroutine
// runs the cycles.
type Collector struct {
	sources []sensor.Source
	perCPU  bool
	log     *slog.Logger
	now     func() time.Time

	meter    *energy.Meter
	prev     cpustat.Stat
	prevAt   time.Time
	haveStat bool
	cpu      CPU // running totals

	failing map[string]string // source → the error last reported
	started time.Time

	stat     func() (cpustat.Stat, error)
	freq     *cpufreq.Reader
	idle     *cpuidle.Reader
	idlePrev map[string]cpuidle.State // by state name: the last reading, all CPUs summed
	idleAt   time.Time
	idleSum  map[string]Idle // running totals
	// ReadErrors counts failed reads of sources and of /proc/stat.
	ReadErrors uint64

	// counters is what Counters returns: a copy made at the end of each cycle, so that other
	// goroutines (the agent's /metrics) never read the cycle's own state.
	countersMu sync.Mutex
	counters   Counters
}

// Counters are a Collector's counters as of the end of its last cycle.
type Counters struct {
	// ReadErrors counts failed reads of sources and of /proc/stat.
	ReadErrors uint64
	// Rejected counts the readings rejected as implausible, by source and reason; nil while
	// there are none.
	Rejected map[energy.Rejection]uint64
}

// Counters returns the counters as of the end of the last cycle. Unlike Collect, it is safe
// to call from any goroutine.
func (c *Collector) Counters() Counters {
	c.countersMu.Lock()
	defer c.countersMu.Unlock()
	return Counters{ReadErrors: c.counters.ReadErrors, Rejected: maps.Clone(c.counters.Rejected)}
}

// Options configure a Collector.
type Options struct {
	// PerCPU adds CPU time per logical CPU to the host totals.
	PerCPU bool
	// Bounds are the plausibility bounds of readings; nil means none.
	Bounds energy.Bounds
	// Freq and Idle read CPU frequency and idle-state residency; nil leaves them out.
	Freq *cpufreq.Reader
	Idle *cpuidle.Reader
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CPUTimes reads the CPU time counters in place of fs's /proc/stat: the simulator's
	// virtual hosts keep theirs in memory. nil reads /proc/stat.
	CPUTimes func() (cpustat.Stat, error)
}

// New returns a Collector reading sources and fs's /proc/stat.
func New(fs sysfs.FS, sources []sensor.Source, opts Options, log *slog.Logger) *Collector {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	stat := opts.CPUTimes
	if stat == nil {
		stat = func() (cpustat.Stat, error) { return cpustat.Read(fs) }
	}
	return &Collector{
		stat:    stat,
		sources: sources,
		perCPU:  opts.PerCPU,
		log:     log,
		now:     now,
		meter:   energy.NewMeter(opts.Bounds),
		failing: make(map[string]string),
		freq:    opts.Freq,
		idle:    opts.Idle,
	}
}

// Collect runs one cycle. The first cycle only sets the baselines and returns a Sample with
// nothing in it.
func (c *Collector) Collect(ctx context.Context) Sample {
	s := c.collect(ctx)
	// s.Rejected is a fresh copy each cycle that nothing changes afterwards; Counters copies
	// it again for its callers.
	c.countersMu.Lock()
	c.counters = Counters{ReadErrors: c.ReadErrors, Rejected: s.Rejected}
	c.countersMu.Unlock()
	return s
}

func (c *Collector) collect(ctx context.Context) Sample {
	at := c.now()
	var readings []sensor.Reading
	for _, src := range c.sources {
		r, err := src.Read(ctx)
		readings = append(readings, r...)
		c.report(ctx, src.Name(), err)
	}
	if c.started.IsZero() {
		c.started = at
	}
	before := len(c.meter.Rejected)
	s := Sample{At: at, Power: c.meter.Update(at, readings), Started: c.started}
	s.Primary = choosePrimary(s.Power)
	if len(c.meter.Rejected) > 0 {
		s.Rejected = maps.Clone(c.meter.Rejected)
	}
	if len(c.meter.Rejected) > before {
		c.log.WarnContext(ctx, "implausible power readings rejected; counted in fleetwatt.agent.readings.rejected, logged once per source and reason",
			"rejected", fmt.Sprint(c.meter.Rejected))
	}

	c.cpuState(ctx, &s)

	stat, err := c.stat()
	c.report(ctx, "cpustat", err)
	if err != nil {
		return s
	}
	if c.haveStat {
		s.CPU = c.cpuDelta(stat, at)
	} else {
		c.cpu.Since = at
	}
	c.prev, c.prevAt, c.haveStat = stat, at, true
	return s
}

func (c *Collector) cpuDelta(stat cpustat.Stat, at time.Time) *CPU {
	d := &CPU{Start: c.prevAt, End: at, All: stat.All.Sub(c.prev.All), Since: c.cpu.Since}
	c.cpu.AllTotal = add(c.cpu.AllTotal, d.All)
	d.AllTotal = c.cpu.AllTotal
	if c.perCPU {
		prev := make(map[int]cpustat.Times, len(c.prev.CPUs))
		for _, p := range c.prev.CPUs {
			prev[p.Number] = p.Times
		}
		totals := make(map[int]cpustat.Times, len(c.cpu.PerCPUTotal))
		for _, p := range c.cpu.PerCPUTotal {
			totals[p.Number] = p.Times
		}
		c.cpu.PerCPUTotal = c.cpu.PerCPUTotal[:0]
		for _, cur := range stat.CPUs {
			p, ok := prev[cur.Number]
			if !ok { // a CPU that came online: its first interval is its baseline
				continue
			}
			delta := cpustat.CPU{Number: cur.Number, Times: cur.Sub(p)}
			d.PerCPU = append(d.PerCPU, delta)
			c.cpu.PerCPUTotal = append(c.cpu.PerCPUTotal, cpustat.CPU{Number: cur.Number, Times: add(totals[cur.Number], delta.Times)})
		}
		d.PerCPUTotal = append([]cpustat.CPU(nil), c.cpu.PerCPUTotal...)
	}
	return d
}

// cpuState reads frequency and idle-state residency into s.
func (c *Collector) cpuState(ctx context.Context, s *Sample) {
	if c.freq != nil {
		f, err := c.freq.Read()
		c.report(ctx, "cpufreq", err)
		if len(f) > 0 {
			s.Freq = &Freq{MeanHz: cpufreq.Mean(f)}
			if c.perCPU {
				s.Freq.PerCPU = slices.Clone(f) // Read reuses its slice
			}
		}
	}
	if c.idle == nil {
		return
	}
	states, err := c.idle.Read()
	c.report(ctx, "cpuidle", err)
	if err != nil && len(states) == 0 {
		return
	}
	byName := cpuidle.ByName(states)
	if c.idlePrev == nil { // the first reading is the baseline
		c.idlePrev, c.idleSum = make(map[string]cpuidle.State, len(byName)), make(map[string]Idle, len(byName))
	} else {
		for _, st := range byName {
			prev, ok := c.idlePrev[st.Name]
			// A CPU going offline makes a sum go back: skip that interval for the state.
			if !ok || st.Usage < prev.Usage || st.Time < prev.Time {
				continue
			}
			total := c.idleSum[st.Name]
			if total.Since.IsZero() {
				total.Since = c.idleAt
			}
			total.TotalTime += st.Time - prev.Time
			total.TotalUsage += st.Usage - prev.Usage
			c.idleSum[st.Name] = total
			s.Idle = append(s.Idle, Idle{
				State: st.Name, Start: c.idleAt, End: s.At,
				Time: st.Time - prev.Time, Usage: st.Usage - prev.Usage,
				TotalTime: total.TotalTime, TotalUsage: total.TotalUsage, Since: total.Since,
			})
		}
	}
	clear(c.idlePrev)
	for _, st := range byName {
		c.idlePrev[st.Name] = st
	}
	c.idleAt = s.At
}

func add(a, b cpustat.Times) cpustat.Times {
	return cpustat.Times{
		User: a.User + b.User, Nice: a.Nice + b.Nice, System: a.System + b.System,
		Idle: a.Idle + b.Idle, IOWait: a.IOWait + b.IOWait, IRQ: a.IRQ + b.IRQ,
		SoftIRQ: a.SoftIRQ + b.SoftIRQ, Steal: a.Steal + b.Steal,
	}
}

// report logs a source's failure when it starts or changes, and its recovery, so a sensor that
// fails every cycle gives one log line, not one per cycle.
func (c *Collector) report(ctx context.Context, source string, err error) {
	last, failing := c.failing[source]
	switch {
	case err == nil && failing:
		delete(c.failing, source)
		c.log.InfoContext(ctx, "source recovered", "source", source)
	case err != nil:
		c.ReadErrors++
		if msg := err.Error(); !failing || msg != last {
			c.failing[source] = msg
			c.log.WarnContext(ctx, "source read failed; reported again only when the error changes", "source", source, "err", err)
		}
	}
}
