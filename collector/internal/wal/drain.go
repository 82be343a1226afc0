package wal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
)

// Sink is where the drainer writes: *influx.Writer. A failure is an *influx.Error (its
// StatusCode and RetryAfter steer the drainer); any other error counts as retryable.
type Sink interface {
	WriteLines(ctx context.Context, lines []string) error
}

var _ Sink = (*influx.Writer)(nil)

// Drainer defaults.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	// maxRetryAfter caps a server's Retry-After (s), as Telegraf does: a misconfigured proxy
	// must not park the drainer for a day.
	maxRetryAfter = 10 * time.Minute
	// failureLogInterval is how often repeated write failures are logged.
	failureLogInterval = 30 * time.Second
)

// DrainerOptions configure a Drainer.
type DrainerOptions struct {
	// MaxLines bounds the lines of one write request; 0 means influx.MaxLines.
	MaxLines int
	// MinBackoff and MaxBackoff bound the retry delay: attempt n waits a random time in
	// [0, min(MaxBackoff, MinBackoff·2ⁿ)) ("full jitter", so that collectors recovering
	// together do not hammer InfluxDB in step), or the server's Retry-After if longer.
	// 0 means DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// DeadLetterPath is the JSON-lines file receiving the lines InfluxDB refuses for good
	// (400, 422, a single line over 413); "" means dead-letter.jsonl beside the log's
	// directory. It is not bounded by the log's MaxBytes: it grows only with bad data.
	DeadLetterPath string
}

// Drainer moves records from the log into InfluxDB, in order, committing the read position
// after each successful write. It never gives up on data InfluxDB may still take: retryable
// failures (connection errors, 5xx, 429, 401/403/404) are retried until they succeed, and
// meanwhile the log fills and senders are asked to retry later. Data InfluxDB refuses is
// isolated by splitting and written to the dead-letter file, so one bad point cannot block
// the log.
type Drainer struct {
	wal  *WAL
	sink Sink
	opts DrainerOptions
	log  *slog.Logger

	stopCtx  context.Context // ends when Shutdown starts: no new writes, no more waiting
	stop     context.CancelFunc
	hardCtx  context.Context // ends when Shutdown's deadline passes: cuts the write in flight
	hardStop context.CancelFunc
	done     chan struct{}
	dead     *os.File

	written      atomic.Int64
	requests     atomic.Int64
	retries      atomic.Int64
	deadLettered atomic.Int64
	commitErrors atomic.Int64

	failMu     sync.Mutex
	failing    bool
	lastLog    time.Time
	suppressed int
	deadLog    limiter
}

// limiter lets one log line through per failureLogInterval and counts the others.
type limiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now, and how many lines were suppressed since the last.
func (l *limiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < failureLogInterval {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}

// NewDrainer returns a drainer reading w and writing to sink. Start starts it.
func NewDrainer(w *WAL, sink Sink, opts DrainerOptions, log *slog.Logger) *Drainer {
	if opts.MaxLines <= 0 {
		opts.MaxLines = influx.MaxLines
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	if opts.DeadLetterPath == "" {
		opts.DeadLetterPath = filepath.Join(filepath.Dir(filepath.Clean(w.Dir())), "dead-letter.jsonl")
	}
	return &Drainer{wal: w, sink: sink, opts: opts, log: log.With("component", "wal_drainer")}
}

// DrainerStats are the drainer's counters.
type DrainerStats struct {
	WrittenPoints      int64 // lines InfluxDB accepted
	WriteRequests      int64 // write requests sent, retries and splits included
	Retries            int64 // retryable failures, each followed by a backoff
	DeadLetteredPoints int64 // lines refused for good and written to the dead-letter file
	CommitErrors       int64 // checkpoint writes that failed (the lines will be written again)
}

// Stats returns the counters.
func (d *Drainer) Stats() DrainerStats {
	return DrainerStats{
		WrittenPoints:      d.written.Load(),
		WriteRequests:      d.requests.Load(),
		Retries:            d.retries.Load(),
		DeadLetteredPoints: d.deadLettered.Load(),
		CommitErrors:       d.commitErrors.Load(),
	}
}

// Start opens the dead-letter file and starts draining in the background. The drainer runs
// until Shutdown, not until ctx ends (ctx gives only its values), so that it keeps draining
// while the receivers finish their requests.
func (d *Drainer) Start(ctx context.Context) error {
	f, err := os.OpenFile(d.opts.DeadLetterPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open dead-letter file: %w", err)
	}
	d.dead = f
	base := context.WithoutCancel(ctx)
	d.stopCtx, d.stop = context.WithCancel(base)
	d.hardCtx, d.hardStop = context.WithCancel(base)
	d.done = make(chan struct{})
	go func() {
		defer close(d.done)
		d.run()
	}()
	return nil
}

// Shutdown stops draining: a write in flight may finish until ctx ends, then it is cut off.
// What was not committed stays in the log and is written after the next start.
func (d *Drainer) Shutdown(ctx context.Context) error {
	if d.done == nil {
		return nil
	}
	d.stop()
	var err error
	select {
	case <-d.done:
	case <-ctx.Done():
		d.hardStop()
		<-d.done
		err = fmt.Errorf("stop wal drainer: %w", ctx.Err())
	}
	d.hardStop()
	if cerr := d.dead.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close dead-letter file: %w", cerr))
	}
	return err
}

// batch is the lines of records read from the log, and where the last one ends.
type batch struct {
	lines []string
	end   Position
}

func (d *Drainer) run() {
	var carry *batch
	for {
		var b batch
		if carry != nil {
			b, carry = *carry, nil
		} else {
			rec, err := d.wal.Next(d.stopCtx)
			if err != nil {
				return // shutting down, or the log closed
			}
			b = batch{d.recordLines(nil, rec), rec.End}
		}
		lines, end := b.lines, b.end
		// Fill the request with what else is durable; a record that does not fit waits for
		// the next one (line-protocol records hold at most influx.MaxLines lines each).
		for len(lines) < d.opts.MaxLines {
			r, ok, err := d.wal.TryNext()
			if err != nil || !ok {
				break
			}
			more := d.recordLines(nil, r)
			if len(lines)+len(more) > d.opts.MaxLines {
				carry = &batch{more, r.End}
				break
			}
			lines, end = append(lines, more...), r.End
		}
		if !d.deliver(lines) {
			return
		}
		if err := d.wal.Commit(end); err != nil {
			// Not a loss: the lines stay in the log and are written again.
			d.commitErrors.Add(1)
			d.log.Error("wal commit failed", "error", err)
		}
	}
}

// recordLines appends the lines of a record to lines: a line-protocol record's own, or the
// points of an OTLP record (left by this collector's earlier life as a forwarder) converted
// as the receiver would have, with no bounds: they were checked when it was accepted. A
// record that does not decode goes to the dead-letter file.
func (d *Drainer) recordLines(lines []string, rec Record) []string {
	if rec.Kind == KindLineProtocol {
		return splitLines(lines, rec.Data)
	}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(rec.Data); err != nil {
		d.deadLetterRecord(rec, fmt.Errorf("decode otlp record: %w", err))
		return lines
	}
	points, _ := convert.Options{MaxFuture: -1, MaxAge: -1, MaxPowerW: -1}.Convert(req.Metrics())
	b, _, _ := appendLineProtocol(nil, points)
	return splitLines(lines, b)
}

// splitLines appends the lines of a record (each ends in "\n") to lines.
func splitLines(lines []string, data []byte) []string {
	s := string(data)
	for s != "" {
		line, rest, _ := strings.Cut(s, "\n")
		if line != "" {
			lines = append(lines, line)
		}
		s = rest
	}
	return lines
}

// deliver writes lines, in requests of at most MaxLines, until each is stored or
// dead-lettered. It returns false only when the drainer is shutting down.
func (d *Drainer) deliver(lines []string) bool {
	for len(lines) > d.opts.MaxLines {
		if !d.deliver(lines[:d.opts.MaxLines]) {
			return false
		}
		lines = lines[d.opts.MaxLines:]
	}
	for attempt := 0; len(lines) > 0; attempt++ {
		if d.stopCtx.Err() != nil {
			return false
		}
		d.requests.Add(1)
		err := d.sink.WriteLines(d.hardCtx, lines)
		if err == nil {
			d.written.Add(int64(len(lines)))
			d.succeeded()
			return true
		}
		var ie *influx.Error
		status, retryAfter := 0, time.Duration(0)
		if errors.As(err, &ie) {
			status, retryAfter = ie.StatusCode, ie.RetryAfter
		}
		if !influx.IsRetryable(err) || status == http.StatusRequestEntityTooLarge {
			if len(lines) == 1 {
				if d.deadLetter(lines[0], status, err) {
					return true
				}
				// The dead-letter file cannot be written: keep the line, retry later.
			} else {
				// 413: the body is too large; 400/422: some lines are bad. Halves either
				// fit or narrow the search down to the bad lines.
				half := len(lines) / 2
				return d.deliver(lines[:half]) && d.deliver(lines[half:])
			}
		}
		if d.hardCtx.Err() != nil {
			return false
		}
		d.retries.Add(1)
		d.failed(err)
		if !d.sleep(d.backoff(attempt, retryAfter)) {
			return false
		}
	}
	return true
}

// backoff is the delay before retry attempt+1: full jitter up to the exponential bound,
// or the server's Retry-After when it asks for longer.
func (d *Drainer) backoff(attempt int, retryAfter time.Duration) time.Duration {
	bound := d.opts.MaxBackoff
	if attempt < 30 {
		bound = min(d.opts.MaxBackoff, d.opts.MinBackoff<<attempt)
	}
	delay := rand.N(bound) //nolint:gosec // jitter, not a secret
	return max(delay, min(retryAfter, maxRetryAfter))
}

func (d *Drainer) sleep(delay time.Duration) bool {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-d.stopCtx.Done():
		return false
	}
}

// deadLetterEntry is one line of the dead-letter file.
type deadLetterEntry struct {
	Time   time.Time `json:"time"`
	Status int       `json:"status"` // HTTP status; 0 if InfluxDB was not reached
	Reason string    `json:"reason"`
	Line   string    `json:"line,omitempty"` // line protocol, ms precision
	// Record is a log record that could not be turned into lines, as it was (base64).
	Record []byte `json:"record,omitempty"`
}

// deadLetterRecord keeps a record that cannot be written at all, as it is; if even that
// fails it is only logged, since retrying cannot make it decode.
func (d *Drainer) deadLetterRecord(rec Record, cause error) {
	b, err := json.Marshal(deadLetterEntry{Time: time.Now().UTC(), Reason: cause.Error(), Record: rec.Data})
	if err == nil {
		b = append(b, '\n')
		if _, err = d.dead.Write(b); err == nil {
			err = d.dead.Sync()
		}
	}
	d.deadLettered.Add(1)
	d.log.Error("wal record cannot be written to influxdb; kept in the dead-letter file", "kind", rec.Kind.String(),
		"path", d.opts.DeadLetterPath, "error", cause, "dead_letter_error", err)
}

// deadLetter writes a line InfluxDB refused to the dead-letter file, fsynced before the
// checkpoint can move past it.
func (d *Drainer) deadLetter(line string, status int, cause error) bool {
	b, err := json.Marshal(deadLetterEntry{Time: time.Now().UTC(), Status: status, Reason: cause.Error(), Line: line})
	if err == nil {
		b = append(b, '\n')
		if _, err = d.dead.Write(b); err == nil {
			err = d.dead.Sync()
		}
	}
	if err != nil {
		d.log.Error("cannot write the dead-letter file; keeping the line in the log", "path", d.opts.DeadLetterPath, "error", err)
		return false
	}
	d.deadLettered.Add(1)
	if ok, n := d.deadLog.allow(time.Now()); ok {
		d.log.Warn("influxdb refused a point; written to the dead-letter file", "status", status, "reason", cause.Error(),
			"path", d.opts.DeadLetterPath, "dead_lettered_since_last_log", n)
	}
	return true
}

// failed logs the first write failure, then at most one line per failureLogInterval.
func (d *Drainer) failed(err error) {
	d.failMu.Lock()
	defer d.failMu.Unlock()
	now := time.Now()
	if d.failing && now.Sub(d.lastLog) < failureLogInterval {
		d.suppressed++
		return
	}
	d.log.Warn("influxdb write failed; retrying (the data waits in the wal)", "error", err, "failures_since_last_log", d.suppressed)
	d.failing, d.lastLog, d.suppressed = true, now, 0
}

func (d *Drainer) succeeded() {
	d.failMu.Lock()
	defer d.failMu.Unlock()
	if d.failing {
		d.log.Info("influxdb writes succeed again", "failures_since_last_log", d.suppressed)
		d.failing, d.suppressed = false, 0
	}
}
