// Package model estimates a host's power (W) from its CPU utilization when nothing measures
// it: virtual machines, AWS Graviton and other cloud instances, servers without RAPL, hwmon
// or a BMC. The estimate is P = idle + (peak − idle)·curve(u), with idle and peak from a
// shipped, sourced table (profiles.csv: SPECpower medians for measured servers, Cloud Carbon
// Footprint per-vCPU coefficients for cloud instances and CPU families) or from the
// configuration, and u the busy share of CPU time in /proc/stat over the interval.
//
// Every reading is labelled estimated, with scope estimated-host, so a report never sets it
// against a measured wall or package reading. It is the last source the agent falls back
// to, never one it prefers.
package model

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/identity"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpustat"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Curve names, the values of Options.Curve.
const (
	// CurveLinear is P = idle + (peak − idle)·u, the Cloud Carbon Footprint formula
	// (research/efficiency.md §1.4) and the one SPECpower's linear shortcut assumes.
	CurveLinear = "linear"
	// CurveTeads is the concave Teads curve rebased between idle and peak (see teads).
	CurveTeads = "teads"
)

// Options configure the model.
type Options struct {
	// IdleW and PeakW, in W, replace the table's profile when both are > 0: a host
	// measured once with a wall meter gives better figures than any table.
	IdleW, PeakW float64
	// Curve is CurveLinear (the default when empty) or CurveTeads.
	Curve string
}

// Reader estimates the host's power from /proc/stat.
//
// Unlike the other sources it keeps state: utilization is a rate, and /proc/stat only has
// cumulative CPU times, so an estimate over an interval needs the previous reading. A mutex
// guards it, so Read may still be called from several goroutines.
type Reader struct {
	fs      sysfs.FS
	profile Profile
	curve   string
	shape   func(u float64) float64
	name    string // hw.name: "<profile> (<curve>)"
	now     func() time.Time

	mu     sync.Mutex
	prev   cpustat.Stat
	prevAt time.Time
	have   bool
}

var (
	_ sensor.Source    = (*Reader)(nil)
	_ sensor.Describer = (*Reader)(nil)
)

// Open returns a Reader for host, whose /proc lies below fs. It returns an error wrapping
// sensor.ErrNotFound when the table has no profile for the host's CPU and opts sets none.
func Open(fs sysfs.FS, host identity.Host, opts Options) (*Reader, error) {
	curve := opts.Curve
	if curve == "" {
		curve = CurveLinear
	}
	shape, err := curveFunc(curve)
	if err != nil {
		return nil, fmt.Errorf("open power model: %w", err)
	}
	p, found := Lookup(host)
	switch {
	case opts.IdleW > 0 && opts.PeakW > 0:
		if opts.IdleW > opts.PeakW {
			return nil, fmt.Errorf("open power model: model.idle_w %g W is above model.peak_w %g W", opts.IdleW, opts.PeakW)
		}
		// The table's TDP still bounds readings of other sources; the figures are the user's.
		p = Profile{
			Name: "configured", IdleW: opts.IdleW, PeakW: opts.PeakW,
			TDPPerSocketW: p.TDPPerSocketW, Source: "configuration (model.idle_w, model.peak_w)",
		}
	case opts.IdleW != 0 || opts.PeakW != 0:
		return nil, fmt.Errorf("open power model: model.idle_w (%g) and model.peak_w (%g) must both be > 0", opts.IdleW, opts.PeakW)
	case !found:
		return nil, fmt.Errorf("%w: no power profile for CPU %q: set model.idle_w and model.peak_w",
			sensor.ErrNotFound, cpuName(host))
	}
	// Fail at start-up, once, rather than every interval when /proc is not mounted.
	if _, err := cpustat.Read(fs); err != nil {
		return nil, fmt.Errorf("open power model: %w", err)
	}
	return &Reader{
		fs:      fs,
		profile: p,
		curve:   curve,
		shape:   shape,
		name:    fmt.Sprintf("%s (%s)", p.Name, curve),
		now:     time.Now,
	}, nil
}

func cpuName(h identity.Host) string {
	if h.CPUCore != "" && h.CPUCore != h.CPUModel {
		return h.CPUModel + " / " + h.CPUCore
	}
	return h.CPUModel
}

// Name is semconv.SourceModel.
func (r *Reader) Name() string { return semconv.SourceModel }

// Profile returns the idle and peak power the Reader uses.
func (r *Reader) Profile() Profile { return r.profile }

// Info describes the model for doctor.
func (r *Reader) Info() sensor.Info {
	return sensor.Info{
		Detail: fmt.Sprintf("estimate from /proc/stat utilization: %s, idle %.1f W, peak %.1f W, %s curve; %s",
			r.profile.Name, r.profile.IdleW, r.profile.PeakW, r.curve, r.profile.Source),
		// /proc/stat advances every USER_HZ tick.
		Cadence: 10 * time.Millisecond,
	}
}

// Read returns the estimated power (W) averaged over the interval since the previous Read.
//
// The first Read has no previous reading, but /proc/stat's counters start at boot, so it
// returns the average since boot: a real average over a real interval, not a made-up idle
// value, and one that lines the model's first interval up with the agent's other sources
// (the energy meter takes every series' first reading as its baseline). A Read within the
// same clock tick as the previous one returns nothing and leaves the interval open.
func (r *Reader) Read(ctx context.Context) ([]sensor.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := cpustat.Read(r.fs)
	if err != nil {
		return nil, fmt.Errorf("estimate power: %w", err)
	}
	at := r.now()

	r.mu.Lock()
	defer r.mu.Unlock()
	var (
		d        cpustat.Times
		interval time.Duration
	)
	if r.have {
		d, interval = st.All.Sub(r.prev.All), at.Sub(r.prevAt)
	} else {
		d = st.All
		if n := len(st.CPUs); n > 0 {
			// CPU seconds over the CPUs counting them: the time since boot.
			interval = time.Duration(st.All.Total() / float64(n) * float64(time.Second))
		}
	}
	if d.Total() <= 0 {
		return nil, nil
	}
	r.prev, r.prevAt, r.have = st, at, true
	return []sensor.Reading{{
		ID:        "model",
		Name:      r.name,
		Source:    semconv.SourceModel,
		Scope:     semconv.ScopeEstimatedHost,
		Estimated: true,
		PowerW:    r.power(utilization(d)),
		Averaged:  interval,
	}}, nil
}

// power is the estimate at utilization u (0..1), in W.
func (r *Reader) power(u float64) float64 {
	return r.profile.IdleW + (r.profile.PeakW-r.profile.IdleW)*r.shape(u)
}

// utilization is the share of CPU time spent running, 0..1. Steal is left out although
// cpustat counts it as busy: it is time the hypervisor ran someone else on the physical CPU,
// whose power is the other tenant's, not this VM's.
func utilization(d cpustat.Times) float64 {
	total := d.Total()
	if total <= 0 {
		return 0
	}
	u := (d.Busy() - d.Steal) / total
	return min(max(u, 0), 1) // idle can step back on some NO_HZ kernels
}

// Curve returns the curve named name, CurveLinear or CurveTeads (any case): a map of
// utilization 0..1 onto the share 0..1 of the span between idle and peak power, so that
// P(u) = idle + (peak − idle)·curve(u). The simulator shares these curves with the model.
func Curve(name string) (func(float64) float64, error) { return curveFunc(name) }

// curveFunc returns the shape named name: a map of utilization 0..1 onto the share 0..1 of
// the span between idle and peak power.
func curveFunc(name string) (func(float64) float64, error) {
	switch strings.ToLower(name) {
	case CurveLinear:
		return func(u float64) float64 { return u }, nil
	case CurveTeads:
		return teads, nil
	}
	return nil, fmt.Errorf("curve %q: want %s or %s", name, CurveLinear, CurveTeads)
}

// The Teads curve's points: utilization and CPU power as a share of TDP.
var (
	teadsU   = []float64{0, 0.1, 0.5, 1}
	teadsTDP = []float64{0.12, 0.32, 0.75, 1.02}
)

// teads is the Teads curve rebased so that 0 % maps to idle and 100 % to peak.
//
// The Teads curve gives CPU power as a share of TDP at 0, 10, 50 and 100 % utilization,
// 0.12, 0.32, 0.75 and 1.02, linearly interpolated between them (Boavizta,
// docs/docs/Explanations/components/cpu.md, "Average power consumption per unit of TDP
// (given by TEADS)"; the Impact Framework's teads-curve uses the same points;
// research/efficiency.md §1.5). Rebased, (teads(u) − 0.12) / (1.02 − 0.12), it is 0, 0.222,
// 0.70 and 1 at those points (research/efficiency.md, power curve for the simulator). It is
// concave: at 10 % load a server already draws 22 % of its dynamic range, where the linear
// curve says 10 %.
func teads(u float64) float64 { return rebased(teadsU, teadsTDP, u) }

// PointsCurve returns the curve through the points (us[i], ys[i]), linearly interpolated and
// rebased the way the Teads curve is: ys are power in any unit (W, a share of peak or of
// TDP), and the curve maps us[0] to 0 and the last u to 1, so only the points' shape
// matters. us must rise strictly from 0 to 1 and the last y must be above the first;
// PointsCurve does not check (callers validate their input and report it in their terms).
func PointsCurve(us, ys []float64) func(float64) float64 {
	us, ys = slices.Clone(us), slices.Clone(ys)
	return func(u float64) float64 { return rebased(us, ys, u) }
}

// rebased interpolates ys at u (clamped to 0..1) and rescales the result so that the first
// point maps to 0 and the last to 1.
func rebased(us, ys []float64, u float64) float64 {
	u = min(max(u, 0), 1)
	lo, hi := ys[0], ys[len(ys)-1]
	for i := 1; i < len(us); i++ {
		if u <= us[i] {
			f := (u - us[i-1]) / (us[i] - us[i-1])
			y := ys[i-1] + f*(ys[i]-ys[i-1])
			return (y - lo) / (hi - lo)
		}
	}
	return 1
}
