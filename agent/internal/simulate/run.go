// Package simulate runs a fleet of virtual hosts through the agent's own collection and export
// path: each host is a power sensor (sensor.Source) with a known power curve and load, read
// by a collect.Collector (energy.Meter, CPU time, the primary-reading rule), turned into
// OTLP by export.Builder and sent with the SDK's OTLP exporter. It is the demo, the load
// generator and the ground truth of the accuracy tests: every host's true idle and peak
// power, utilization and energy are computable (Host.IdleW, Host.PeakW, Host.Utilization,
// Host.Integrate).
//
// It runs live (every interval, all hosts, timestamps now) or as a backfill of a past range,
// as fast as the collector takes it. docs/simulate.md documents the fleet spec and the
// formulas.
package simulate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fleetwatt/fleetwatt/agent/internal/collect"
	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
	"github.com/fleetwatt/fleetwatt/agent/internal/export"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
)

// Defaults of Options.
const (
	DefaultLiveInterval     = 10 * time.Second
	DefaultBackfillInterval = 5 * time.Minute
	DefaultConcurrency      = 8
)

// shutdownTimeout bounds the exporters' shutdown.
const shutdownTimeout = 15 * time.Second

// Options configure Run.
type Options struct {
	// Spec is the fleet, valid (Default, Load or LoadFile).
	Spec Spec
	// Seed makes the fleet: the same seed and spec give the same hosts and readings.
	Seed uint64
	// Backfill is the length of the past range, ending now, to send; 0 runs live.
	Backfill time.Duration
	// Interval is the time between a host's readings; 0 means DefaultLiveInterval live,
	// DefaultBackfillInterval in a backfill.
	Interval time.Duration
	// Export says where to send (endpoint, protocol, timeout of one export).
	Export export.Options
	// Concurrency is the number of exporters working at once, each with its own connection;
	// 0 means DefaultConcurrency.
	Concurrency int
	// Version is service.version on the hosts' resources.
	Version string
	// Progress receives the backfill's progress bar (a terminal) or lines (anything else);
	// nil shows none.
	Progress io.Writer
	// Now is the clock that places the backfill's range and the live timestamps; nil means
	// time.Now. Rates and the progress display always use real time.
	Now func() time.Time
	// NewExporter makes an exporter; nil means export.NewExporter. Tests count exports
	// with it.
	NewExporter func(ctx context.Context, opts export.Options) (sdkmetric.Exporter, error)
}

func (o *Options) setDefaults() {
	if o.Interval == 0 {
		o.Interval = DefaultLiveInterval
		if o.Backfill > 0 {
			o.Interval = DefaultBackfillInterval
		}
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewExporter == nil {
		o.NewExporter = export.NewExporter
	}
	if o.Version == "" {
		o.Version = "dev"
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Interval < time.Second {
		errs = append(errs, fmt.Errorf("interval %s: at least 1s", o.Interval))
	}
	if o.Backfill < 0 {
		errs = append(errs, fmt.Errorf("backfill %s: want a positive duration such as 168h", o.Backfill))
	} else if o.Backfill > 0 && o.Backfill < o.Interval {
		errs = append(errs, fmt.Errorf("backfill %s is shorter than one interval (%s)", o.Backfill, o.Interval))
	}
	if o.Concurrency < 1 || o.Concurrency > 1024 {
		errs = append(errs, fmt.Errorf("concurrency %d: want 1 to 1024", o.Concurrency))
	}
	if err := o.Spec.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("fleet:\n%w", err))
	}
	return errors.Join(errs...)
}

// Plan is what a backfill will send.
type Plan struct {
	// Start and End bound the range: the first interval starts at Start, the last ends at
	// End (a whole multiple of the interval).
	Start, End time.Time
	// Hosts, Intervals per host and Exports (one per host and interval).
	Hosts, Intervals, Exports int
	// Points is the number of OTLP data points.
	Points int64
}

// PlanBackfill returns what a backfill of d ending at now, stepping interval, sends for
// hosts: the range ends at now rounded down to the interval, so that reruns line up.
func PlanBackfill(hosts []*Host, now time.Time, d, interval time.Duration) Plan {
	end := now.Truncate(interval)
	n := int(d / interval)
	p := Plan{Start: end.Add(-time.Duration(n) * interval), End: end, Hosts: len(hosts), Intervals: n, Exports: n * len(hosts)}
	for _, h := range hosts {
		p.Points += int64(n) * int64(pointsPerInterval(h))
	}
	return p
}

// pointsPerInterval is the number of data points export.Builder makes of one host's sample:
// hw.energy and hw.power for the one reading, system.cpu.time for each of the 7 modes,
// system.cpu.utilization, system.cpu.frequency, fleetwatt.cpu.idle_state.time and .usage for
// each of the 2 idle states, and fleetwatt.work.operations when the host does work. The
// backfill test checks it against what a receiver decodes.
func pointsPerInterval(h *Host) int {
	n := 2 + 7 + 1 + 1 + 2*2
	if h.Group.OpsPerCoreSecond > 0 {
		n++
	}
	return n
}

// vhost is a host with its collection cycle and its OTLP builder.
type vhost struct {
	*Host
	coll    *collect.Collector
	builder *export.Builder
}

func newVHost(h *Host, opts *Options, log *slog.Logger) *vhost {
	id := h.Identity()
	place := export.Place{Region: h.Group.Region, Zone: h.Group.Zone}
	bounds := energy.DefaultBounds(energy.Host{Sockets: h.Group.Sockets, PeakW: h.PeakW})
	return &vhost{
		Host: h,
		coll: collect.New(sysfs.New("/"), []sensor.Source{h}, collect.Options{
			Bounds: bounds, Now: h.now, CPUTimes: h.cpuTimes,
		}, log),
		builder: export.NewBuilder(export.NewResource(id, place, opts.Version, opts.Interval), opts.Version, metricdata.DeltaTemporality),
	}
}

// begin takes the baseline reading at t.
func (v *vhost) begin(ctx context.Context, t time.Time) {
	v.start(t)
	v.coll.Collect(ctx)
}

// step moves the host to t and returns the sample's metrics: exactly what the live agent
// would send for a host read at t.
func (v *vhost) step(ctx context.Context, t time.Time) *metricdata.ResourceMetrics {
	prev := v.at
	v.advance(t)
	s := v.coll.Collect(ctx)
	if s.CPU != nil {
		// Frequency and idle states go where the agent's cpufreq and cpuidle readers put
		// theirs: into the sample, for the same builder.
		s.Freq, s.Idle = v.cpuState(prev, t, s.CPU.All.Idle, s.CPU.Utilization())
	}
	if s.CPU != nil && v.Group.OpsPerCoreSecond > 0 {
		s.Work = &collect.Work{Start: prev, End: t, Ops: v.ops - v.opsPrv, TotalOps: v.ops, Since: v.opsAt}
		v.opsPrv = v.ops
	}
	return v.builder.Build(s)
}

// Run simulates opts.Spec until ctx ends (live) or the backfill is sent. A backfill stopped
// by ctx returns nil after logging what was sent.
func Run(ctx context.Context, opts Options, log *slog.Logger) error {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return err
	}
	hosts, err := NewHosts(opts.Spec, opts.Seed)
	if err != nil {
		return err
	}
	workers := min(opts.Concurrency, len(hosts))
	r := &runner{opts: &opts, log: log, workers: make([]*worker, workers)}
	for i := range r.workers {
		exp, err := opts.NewExporter(ctx, opts.Export)
		if err != nil {
			r.shutdown(ctx)
			return fmt.Errorf("exporter: %w", err)
		}
		r.workers[i] = &worker{exp: exp, tick: make(chan time.Time, 1)}
	}
	collLog := log.With("component", "collect")
	for i, h := range hosts {
		w := r.workers[i%workers]
		w.hosts = append(w.hosts, newVHost(h, &opts, collLog))
	}
	defer r.shutdown(ctx)
	if opts.Backfill > 0 {
		return r.backfill(ctx, hosts)
	}
	return r.live(ctx, len(hosts))
}

// runner owns the workers and the counters of one Run.
type runner struct {
	opts    *Options
	log     *slog.Logger
	workers []*worker

	sentPoints, sentExports, failedExports, skippedTicks atomic.Int64

	mu      sync.Mutex
	failing int    // workers whose last export failed
	lastErr string // the failure last logged
}

// worker sends its hosts' samples, one export at a time, through its own exporter.
type worker struct {
	exp   sdkmetric.Exporter
	hosts []*vhost
	tick  chan time.Time // live mode: the times to read at
}

func (r *runner) shutdown(ctx context.Context) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	for _, w := range r.workers {
		if w == nil {
			continue
		}
		if err := w.exp.Shutdown(sctx); err != nil {
			r.log.Warn("shutting the exporter down", "err", err)
		}
	}
}

// backfill sends the range ending now for every host, interval by interval.
func (r *runner) backfill(ctx context.Context, hosts []*Host) error {
	o := r.opts
	plan := PlanBackfill(hosts, o.Now(), o.Backfill, o.Interval)
	r.log.Info("backfill starting", "hosts", plan.Hosts, "intervals", plan.Intervals, "exports", plan.Exports,
		"points", plan.Points, "from", plan.Start.Format(time.RFC3339), "to", plan.End.Format(time.RFC3339),
		"interval", o.Interval.String(), "concurrency", len(r.workers))
	prog := newProgress(o.Progress, plan.Points, time.Now) // o.Now places the range; rates are real time
	prog.begin(plan)

	for _, w := range r.workers {
		for _, h := range w.hosts {
			h.begin(ctx, plan.Start)
		}
	}
	pctx, stopProgress := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	pwg.Go(func() { prog.run(pctx, &r.sentPoints) })

	started := time.Now()
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() {
			for k := 1; k <= plan.Intervals; k++ {
				t := plan.Start.Add(time.Duration(k) * o.Interval)
				for _, h := range w.hosts {
					if ctx.Err() != nil {
						return
					}
					r.send(ctx, w, h.step(ctx, t))
				}
			}
		})
	}
	wg.Wait()
	stopProgress()
	pwg.Wait()

	sent := r.sentPoints.Load()
	elapsed := time.Since(started)
	prog.end(sent, elapsed, ctx.Err() != nil)
	attrs := []any{
		"sent_points", sent, "expected_points", plan.Points, "sent_exports", r.sentExports.Load(),
		"failed_exports", r.failedExports.Load(), "elapsed", elapsed.Round(time.Millisecond).String(),
		"points_per_s", int64(rate(sent, elapsed)),
	}
	if ctx.Err() != nil {
		r.log.Info("backfill stopped before the end; rerunning it (same seed, fleet and interval) rewrites the same points", attrs...)
		return nil
	}
	r.log.Info("backfill done", attrs...)
	return nil
}

// live reads every host every interval at the same instant and sends, until ctx ends. A
// worker still sending when the next tick comes skips it: its hosts' next interval then
// covers both, as the live agent's does after a slow cycle, so no energy is lost.
func (r *runner) live(ctx context.Context, hosts int) error {
	o := r.opts
	start := o.Now()
	for _, w := range r.workers {
		for _, h := range w.hosts {
			h.begin(ctx, start)
		}
	}
	r.log.Info("live simulation starting", "hosts", hosts, "interval", o.Interval.String(),
		"concurrency", len(r.workers), "seed", o.Seed)
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case t := <-w.tick:
					for _, h := range w.hosts {
						if ctx.Err() != nil {
							return
						}
						r.send(ctx, w, h.step(ctx, t))
					}
				}
			}
		})
	}
	ticker := time.NewTicker(o.Interval)
	defer ticker.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-ticker.C:
			t := o.Now()
			for _, w := range r.workers {
				select {
				case w.tick <- t:
				default:
					r.skippedTicks.Add(1)
				}
			}
		}
	}
	wg.Wait()
	r.log.Info("live simulation stopped", "sent_points", r.sentPoints.Load(), "sent_exports", r.sentExports.Load(),
		"failed_exports", r.failedExports.Load(), "skipped_ticks", r.skippedTicks.Load(),
		"elapsed", o.Now().Sub(start).Round(time.Second).String())
	return nil
}

// Backoff between attempts of a failed export.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// send exports rm until the collector takes it or ctx ends. A failed export is retried with
// backoff, never dropped: the collector acknowledges only what it has stored, so a failure
// means the data is not there.
func (r *runner) send(ctx context.Context, w *worker, rm *metricdata.ResourceMetrics) {
	if rm == nil {
		return
	}
	delay := time.Duration(0)
	for {
		err := w.exp.Export(ctx, rm)
		if err == nil {
			if delay > 0 {
				r.settled(true)
			}
			r.sentExports.Add(1)
			r.sentPoints.Add(int64(export.Points(rm)))
			return
		}
		if ctx.Err() != nil {
			if delay > 0 {
				r.settled(false)
			}
			return
		}
		r.failedExports.Add(1)
		if delay == 0 {
			r.failed(err)
		}
		delay = min(max(2*delay, minBackoff), maxBackoff)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			r.settled(false)
			return
		case <-t.C:
		}
	}
}

// failed notes that a worker's export failed; the error is logged when it is new, not once
// per worker or per retry.
func (r *runner) failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failing++
	if msg := err.Error(); msg != r.lastErr {
		r.lastErr = msg
		r.log.Warn("export failed; retrying with backoff, nothing is dropped", "err", err,
			"failed_exports", r.failedExports.Load())
	}
}

// settled notes that a failing worker's export went through (ok) or that it stopped
// trying (ctx ended).
func (r *runner) settled(ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failing--
	if ok && r.failing == 0 && r.lastErr != "" {
		r.lastErr = ""
		r.log.Info("export recovered", "failed_exports", r.failedExports.Load())
	}
}

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
