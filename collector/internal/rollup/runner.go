package rollup

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultLookback is how far back each periodic run recomputes: the current hour and the two
// before it, so that points arriving late (an agent's spool replayed, a slow network) still
// reach their hour's rollup.
const DefaultLookback = 3 * time.Hour

// Func computes the rollups of [from, to); (*Roller).Rollup is one: the hours, then the days
// they fall in, so that each run also recomputes today (and yesterday, for a run in the first
// Lookback after midnight, UTC).
type Func func(ctx context.Context, from, to time.Time) (Stats, error)

// Runner runs a rollup every Every over the last Lookback. Start it once; Shutdown stops it
// and waits for a run in progress.
type Runner struct {
	rollup   Func
	every    time.Duration
	lookback time.Duration
	log      *slog.Logger
	now      func() time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
	// failures counts the runs that failed in a row, so that an InfluxDB outage logs a warning
	// on the first failure and then only every tenth.
	failures int
}

// NewRunner returns a Runner of rollup every every, over the last lookback (0 means
// DefaultLookback).
func NewRunner(rollup Func, every, lookback time.Duration, log *slog.Logger) *Runner {
	if lookback <= 0 {
		lookback = DefaultLookback
	}
	return &Runner{rollup: rollup, every: every, lookback: lookback, log: log, now: time.Now}
}

// Start runs the rollup once now and then every r.every, until Shutdown or ctx ends.
func (r *Runner) Start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.wg.Go(func() {
		t := time.NewTicker(r.every)
		defer t.Stop()
		for {
			r.once(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

func (r *Runner) once(ctx context.Context) {
	now := r.now()
	from := now.Add(-r.lookback)
	start := time.Now()
	st, err := r.rollup(ctx, from, now)
	switch {
	case err != nil && ctx.Err() != nil:
		// Shutting down.
	case err != nil:
		if r.failures%10 == 0 {
			r.log.Warn("rollup failed; retrying at the next run", "error", err, "failures_in_a_row", r.failures+1)
		}
		r.failures++
	default:
		if r.failures > 0 {
			r.log.Info("rollup works again", "failures_in_a_row", r.failures)
		}
		r.failures = 0
		r.log.Debug("rollup done", "hours", st.Hours, "hosts", st.Hosts, "points", st.Points,
			"days", st.Days, "day_points", st.DayPoints, "duration", time.Since(start).String())
	}
}

// Shutdown stops the runner and waits for a run in progress to end, or for ctx.
func (r *Runner) Shutdown(ctx context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
