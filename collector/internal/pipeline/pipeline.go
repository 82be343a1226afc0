// Package pipeline joins the collector's stages: OTLP metrics from the receiver are converted
// to InfluxDB points (data points out of bounds rejected: times too far ahead or behind,
// absurd power), limited to each sender's series budget (package limit) and written, synchronously, so that the receiver acknowledges a request
// only once its points are stored: in InfluxDB through a Batcher, or durable in the
// write-ahead log through wal.Writer, whose drainer then writes them to InfluxDB; or, on a
// regional collector that forwards (NewForwarding), once the accepted OTLP metrics are
// durable in the write-ahead log, whose drainer sends them to a central collector. It counts
// what passes through (Stats) and logs write failures at most once per interval, however many
// requests fail.
package pipeline

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fleetwatt/fleetwatt/collector/internal/auth"
	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/collector/internal/limit"
	"github.com/fleetwatt/fleetwatt/collector/internal/receive"
)

// Writer stores points; *influx.Writer is one. A failure for which influx.IsRetryable is
// false is permanent: the data is refused and the sender told not to retry.
type Writer interface {
	Write(ctx context.Context, points []*write.Point) error
}

var _ Writer = (*influx.Writer)(nil)

// DefaultLogInterval is how often repeated write failures are logged.
const DefaultLogInterval = 30 * time.Second

// Pipeline converts and writes OTLP metrics. It is a receive.Consumer.
type Pipeline struct {
	w      Writer
	mw     MetricsWriter // set by NewForwarding; w is nil then
	log    *slog.Logger
	conv   convert.Options
	series *limit.Series // nil: no series limit

	requests       atomic.Int64
	dataPoints     atomic.Int64
	rejected       atomic.Int64
	written        atomic.Int64
	writeFailures  atomic.Int64
	permanentFails atomic.Int64
	pointsRefused  atomic.Int64
	failLog        failureLog

	reasonsMu sync.Mutex
	reasons   map[string]int64 // rejected data points by convert.Reason*
}

var _ receive.Consumer = (*Pipeline)(nil)

// Options bound what the pipeline accepts. The zero value means every default: data points
// more than 10 min ahead of or 90 days behind the collector's clock, or with negative or
// above 1 MW power, are rejected (convert.Options), and each sender may write 100,000
// distinct series (limit.Options).
type Options struct {
	Convert convert.Options
	Series  limit.Options
	// NoSeriesLimit turns the series limit off.
	NoSeriesLimit bool
}

// New returns a pipeline writing to w and logging to log, with the default Options.
func New(w Writer, log *slog.Logger) *Pipeline {
	return NewWithOptions(w, log, Options{})
}

// NewWithOptions returns a pipeline writing to w and logging to log.
func NewWithOptions(w Writer, log *slog.Logger, o Options) *Pipeline {
	p := &Pipeline{w: w, log: log, conv: o.Convert, failLog: failureLog{interval: DefaultLogInterval, now: time.Now}}
	if !o.NoSeriesLimit {
		p.series = limit.New(o.Series)
	}
	return p
}

// principal names the sender of the request in ctx, for the series limit.
func principal(ctx context.Context) string {
	if pr, ok := auth.FromContext(ctx); ok && pr.Name != "" {
		return pr.Name
	}
	return limit.Anonymous
}

// Stats are the pipeline's counters since it started.
type Stats struct {
	Requests           int64 // export requests consumed
	DataPoints         int64 // OTLP data points received
	DataPointsRejected int64 // data points left out by the conversion (NaN, no timestamp, ...)
	PointsWritten      int64 // InfluxDB points stored
	WriteFailures      int64 // requests whose write failed (the sender retries or drops)
	PermanentFailures  int64 // of those, failures the sender must not retry
	PointsRefused      int64 // points in permanently failed writes: lost
	// RejectedByReason splits DataPointsRejected by the conversion's reason (convert.Reason*);
	// nil while there are none.
	RejectedByReason map[string]int64
}

// Stats returns the counters.
func (p *Pipeline) Stats() Stats {
	return Stats{
		Requests:           p.requests.Load(),
		DataPoints:         p.dataPoints.Load(),
		DataPointsRejected: p.rejected.Load(),
		PointsWritten:      p.written.Load(),
		WriteFailures:      p.writeFailures.Load(),
		PermanentFailures:  p.permanentFails.Load(),
		PointsRefused:      p.pointsRefused.Load(),
		RejectedByReason:   p.rejectedByReason(),
	}
}

func (p *Pipeline) rejectedByReason() map[string]int64 {
	p.reasonsMu.Lock()
	defer p.reasonsMu.Unlock()
	if len(p.reasons) == 0 {
		return nil
	}
	return maps.Clone(p.reasons)
}

// ConsumeMetrics converts md and writes the points, returning once InfluxDB has answered (or,
// forwarding, stores md without the rejected data points).
// Points of new series beyond the sender's limit are rejected, like data points out of
// bounds, and reported in the Result.
func (p *Pipeline) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) (receive.Result, error) {
	p.requests.Add(1)
	opts := p.conv
	if p.series != nil {
		name := principal(ctx)
		opts.Admit = func(pt *write.Point) bool { return p.series.Admit(name, pt) }
	}
	points, cs := opts.Convert(md)
	p.dataPoints.Add(cs.DataPoints)
	p.rejected.Add(cs.Rejected)
	if len(cs.Reasons) > 0 {
		p.reasonsMu.Lock()
		if p.reasons == nil {
			p.reasons = make(map[string]int64)
		}
		for r, n := range cs.Reasons {
			p.reasons[r] += n
		}
		p.reasonsMu.Unlock()
	}
	res := receive.Result{RejectedDataPoints: cs.Rejected, ErrorMessage: cs.FirstError}
	if len(points) == 0 {
		return res, nil
	}
	var err error
	if p.mw != nil {
		if cs.Rejected > 0 {
			md = accepted(opts, md)
		}
		err = p.mw.WriteMetrics(ctx, md)
	} else {
		err = p.w.Write(ctx, points)
	}
	if err != nil {
		p.writeFailures.Add(1)
		permanent := !influx.IsRetryable(err) || receive.IsPermanent(err)
		if permanent {
			p.permanentFails.Add(1)
			p.pointsRefused.Add(int64(len(points)))
		}
		p.failLog.failed(p.log, err, permanent)
		if permanent {
			return res, receive.Permanent(err)
		}
		return res, err
	}
	p.written.Add(int64(len(points)))
	p.failLog.succeeded(p.log)
	return res, nil
}

// failureLog logs the first write failure, then at most one line per interval with the count
// of failures since, and one line when writes succeed again.
type failureLog struct {
	interval time.Duration
	now      func() time.Time

	mu         sync.Mutex
	failing    bool
	last       time.Time
	suppressed int
}

func (f *failureLog) failed(log *slog.Logger, err error, permanent bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if f.failing && now.Sub(f.last) < f.interval {
		f.suppressed++
		return
	}
	log.Error("influxdb write failed", "error", err, "permanent", permanent,
		"failures_since_last_log", f.suppressed)
	f.failing, f.last, f.suppressed = true, now, 0
}

func (f *failureLog) succeeded(log *slog.Logger) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failing {
		return
	}
	log.Info("influxdb writes succeed again", "failures_since_last_log", f.suppressed)
	f.failing, f.suppressed = false, 0
}
