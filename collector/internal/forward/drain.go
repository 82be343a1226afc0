package forward

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

	"github.com/fleetwatt/fleetwatt/collector/internal/wal"
)

// Sender sends a serialized export request: *Client. A failure that is an *Error with
// StatusCode 400 or 413 is about the data; any other failure is retried.
type Sender interface {
	Send(ctx context.Context, body []byte) (Result, error)
}

var _ Sender = (*Client)(nil)

// Drainer defaults.
const (
	// DefaultMaxRequestBytes bounds a forwarded request before compression: a quarter of the
	// 16 MiB a collector's receiver takes, so that a request is never refused for its size
	// by a central collector with default settings, and a lost one costs little to resend.
	DefaultMaxRequestBytes = 4 << 20
	DefaultMinBackoff      = time.Second
	DefaultMaxBackoff      = 30 * time.Second
	// maxRetryAfter caps a server's Retry-After, as the WAL drainer does.
	maxRetryAfter = 10 * time.Minute
	// failureLogInterval is how often repeated failures are logged.
	failureLogInterval = 30 * time.Second
)

// DrainerOptions configure a Drainer.
type DrainerOptions struct {
	// MaxRequestBytes bounds the records joined into one request; 0 means
	// DefaultMaxRequestBytes. A larger record goes alone.
	MaxRequestBytes int
	// MinBackoff and MaxBackoff bound the retry delay: attempt n waits a random time in
	// [0, min(MaxBackoff, MinBackoff·2ⁿ)) ("full jitter", so that regions recovering from one
	// cut do not hit the central collector in step), or the server's Retry-After if longer.
	// 0 means DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// DeadLetterPath is the JSON-lines file receiving the records the central collector
	// refuses for good; "" means dead-letter.jsonl beside the log's directory.
	DeadLetterPath string
}

// Drainer moves the log's OTLP records to the central collector, in order, committing the
// read position after each acknowledged request. See the package doc for what it retries.
type Drainer struct {
	wal  *wal.WAL
	send Sender
	opts DrainerOptions
	log  *slog.Logger

	stopCtx  context.Context // ends when Shutdown starts: no new requests, no more waiting
	stop     context.CancelFunc
	hardCtx  context.Context // ends when Shutdown's deadline passes: cuts the request in flight
	hardStop context.CancelFunc
	done     chan struct{}
	dead     *os.File

	requests     atomic.Int64
	sentRecords  atomic.Int64
	sentBytes    atomic.Int64
	retries      atomic.Int64
	deadLettered atomic.Int64
	rejected     atomic.Int64
	commitErrors atomic.Int64
	lastSuccess  atomic.Int64 // Unix ns

	failMu     sync.Mutex
	failing    bool
	lastLog    time.Time
	suppressed int
	rejectLog  limiter
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

// NewDrainer returns a drainer reading w and sending through s. Start starts it.
func NewDrainer(w *wal.WAL, s Sender, opts DrainerOptions, log *slog.Logger) *Drainer {
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
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
	return &Drainer{wal: w, send: s, opts: opts, log: log.With("component", "forwarder")}
}

// DrainerStats are the drainer's counters.
type DrainerStats struct {
	Requests            int64 // requests sent, retries and splits included
	SentRecords         int64 // log records (accepted exports) the central collector acknowledged
	SentBytes           int64 // their bytes, before compression
	Retries             int64 // failed requests, each followed by a backoff
	DeadLetteredRecords int64 // records refused for good, in the dead-letter file
	RejectedDataPoints  int64 // data points the central collector took the request of but left out
	CommitErrors        int64 // checkpoint writes that failed (those records are sent again)
	// LastSuccess is when the central collector last acknowledged a request; zero before.
	LastSuccess time.Time
}

// Stats returns the counters.
func (d *Drainer) Stats() DrainerStats {
	s := DrainerStats{
		Requests:            d.requests.Load(),
		SentRecords:         d.sentRecords.Load(),
		SentBytes:           d.sentBytes.Load(),
		Retries:             d.retries.Load(),
		DeadLetteredRecords: d.deadLettered.Load(),
		RejectedDataPoints:  d.rejected.Load(),
		CommitErrors:        d.commitErrors.Load(),
	}
	if ns := d.lastSuccess.Load(); ns != 0 {
		s.LastSuccess = time.Unix(0, ns)
	}
	return s
}

// Start opens the dead-letter file and starts draining in the background. It runs until
// Shutdown, not until ctx ends (ctx gives only its values), so that it keeps forwarding while
// the receivers finish their requests.
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

// Shutdown stops forwarding: a request in flight may finish until ctx ends, then it is cut
// off. What was not committed stays in the log and is sent after the next start.
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
		err = fmt.Errorf("stop forwarder: %w", ctx.Err())
	}
	d.hardStop()
	if cerr := d.dead.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close dead-letter file: %w", cerr))
	}
	return err
}

func (d *Drainer) run() {
	var carry *wal.Record
	for {
		var rec wal.Record
		if carry != nil {
			rec, carry = *carry, nil
		} else {
			var err error
			if rec, err = d.wal.Next(d.stopCtx); err != nil {
				return // shutting down, or the log closed
			}
		}
		if rec.Kind != wal.KindOTLP {
			// The collector wrote InfluxDB before; main refuses to start forwarding with
			// such records pending, so this is a log switched under it.
			d.deadLetterLines(rec)
			d.commit(rec.End)
			continue
		}
		recs, size, end := [][]byte{rec.Data}, len(rec.Data), rec.End
		// Join what else is durable, up to the request bound; a record that does not fit
		// starts the next request.
		for size < d.opts.MaxRequestBytes {
			r, ok, err := d.wal.TryNext()
			if err != nil || !ok {
				break
			}
			if r.Kind != wal.KindOTLP || size+len(r.Data) > d.opts.MaxRequestBytes {
				carry = &r
				break
			}
			recs, size, end = append(recs, r.Data), size+len(r.Data), r.End
		}
		before := d.deadLettered.Load()
		if !d.deliver(recs) {
			return
		}
		d.sentRecords.Add(int64(len(recs)) - (d.deadLettered.Load() - before))
		d.commit(end)
	}
}

func (d *Drainer) commit(end wal.Position) {
	if err := d.wal.Commit(end); err != nil {
		// Not a loss: the records stay in the log and are sent again.
		d.commitErrors.Add(1)
		d.log.Error("wal commit failed", "error", err)
	}
}

// deliver sends recs as one request until the central collector acknowledges it, or the
// records it refuses for good are in the dead-letter file. It returns false only when the
// drainer is shutting down.
func (d *Drainer) deliver(recs [][]byte) bool {
	body := join(recs)
	for attempt := 0; ; attempt++ {
		if d.stopCtx.Err() != nil {
			return false
		}
		d.requests.Add(1)
		res, err := d.send.Send(d.hardCtx, body)
		if err == nil {
			d.sentBytes.Add(int64(len(body)))
			d.lastSuccess.Store(time.Now().UnixNano())
			d.succeeded()
			if res.RejectedDataPoints > 0 {
				d.rejected.Add(res.RejectedDataPoints)
				if ok, n := d.rejectLog.allow(time.Now()); ok {
					d.log.Warn("the central collector left data points out", "rejected_data_points", res.RejectedDataPoints,
						"message", res.Message, "rejections_since_last_log", n)
				}
			}
			return true
		}
		var fe *Error
		status, retryAfter := 0, time.Duration(0)
		if errors.As(err, &fe) {
			status, retryAfter = fe.StatusCode, fe.RetryAfter
		}
		if status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge {
			// 400: some record is bad; 413: the request is too large. Halves either fit or
			// narrow the search down to the record at fault.
			if len(recs) > 1 {
				half := len(recs) / 2
				return d.deliver(recs[:half]) && d.deliver(recs[half:])
			}
			if status == http.StatusRequestEntityTooLarge {
				if fs, ferr := fields(recs[0]); ferr == nil && len(fs) > 1 {
					half := len(fs) / 2
					return d.deliver([][]byte{join(fs[:half])}) && d.deliver([][]byte{join(fs[half:])})
				}
			}
			if d.deadLetter(recs[0], status, err) {
				return true
			}
			// The dead-letter file cannot be written: keep the record, retry later.
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

// deadLetterEntry is one line of the dead-letter file. An OTLP record is kept as OTLP/JSON,
// so that it can be sent again as it is:
//
//	jq -c .otlp dead-letter.jsonl | while read -r r; do
//	  curl -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" --data "$r" https://central:4318/v1/metrics
//	done
type deadLetterEntry struct {
	Time   time.Time       `json:"time"`
	Status int             `json:"status"` // HTTP status; 0 if the central collector was not asked
	Reason string          `json:"reason"`
	OTLP   json.RawMessage `json:"otlp,omitempty"`   // the record as an OTLP/JSON export request
	Record []byte          `json:"record,omitempty"` // a record that does not decode, as it is (base64)
	Line   string          `json:"line,omitempty"`   // line protocol, as the WAL drainer writes it
}

// deadLetter writes a record the central collector refused to the dead-letter file, fsynced
// before the checkpoint can move past it.
func (d *Drainer) deadLetter(rec []byte, status int, cause error) bool {
	e := deadLetterEntry{Time: time.Now().UTC(), Status: status, Reason: cause.Error()}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(rec); err != nil {
		e.Record = rec
	} else if e.OTLP, err = req.MarshalJSON(); err != nil {
		e.Record, e.OTLP = rec, nil
	}
	if err := d.writeDead(e); err != nil {
		d.log.Error("cannot write the dead-letter file; keeping the record in the log", "path", d.opts.DeadLetterPath, "error", err)
		return false
	}
	d.deadLettered.Add(1)
	d.log.Warn("the central collector refused a record for good; written to the dead-letter file", "status", status,
		"reason", cause.Error(), "path", d.opts.DeadLetterPath)
	return true
}

// deadLetterLines keeps a line-protocol record, which cannot be forwarded, as the WAL
// drainer keeps lines InfluxDB refused: `influx write` or /api/v2/write take them back.
func (d *Drainer) deadLetterLines(rec wal.Record) {
	reason := "line protocol written while this collector wrote InfluxDB cannot be forwarded over OTLP; write it into InfluxDB yourself"
	var err error
	for line := range strings.Lines(string(rec.Data)) {
		if line = strings.TrimSuffix(line, "\n"); line != "" {
			err = errors.Join(err, d.writeDead(deadLetterEntry{Time: time.Now().UTC(), Reason: reason, Line: line}))
		}
	}
	d.deadLettered.Add(1)
	d.log.Error("a line-protocol record in a forwarding collector's log; written to the dead-letter file",
		"path", d.opts.DeadLetterPath, "error", err)
}

func (d *Drainer) writeDead(e deadLetterEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if _, err := d.dead.Write(b); err != nil {
		return err
	}
	return d.dead.Sync()
}

// failed logs the first failure, then at most one line per failureLogInterval.
func (d *Drainer) failed(err error) {
	d.failMu.Lock()
	defer d.failMu.Unlock()
	now := time.Now()
	if d.failing && now.Sub(d.lastLog) < failureLogInterval {
		d.suppressed++
		return
	}
	d.log.Warn("forwarding to the central collector failed; retrying (the data waits in the wal)", "error", err,
		"failures_since_last_log", d.suppressed)
	d.failing, d.lastLog, d.suppressed = true, now, 0
}

func (d *Drainer) succeeded() {
	d.failMu.Lock()
	defer d.failMu.Unlock()
	if d.failing {
		d.log.Info("forwarding to the central collector succeeds again", "failures_since_last_log", d.suppressed)
		d.failing, d.suppressed = false, 0
	}
}
