// Package influx writes points into InfluxDB through the v2 write API (/api/v2/write), which
// InfluxDB 1.8+ (bucket "db" or "db/rp"), 2.x, Cloud and 3.x all serve.
//
// Writes are synchronous (influxdb-client-go's WriteAPIBlocking): Write returns only once
// InfluxDB has answered, so the receiver can acknowledge an OTLP export after its data is
// stored and hand a failure back to the sender, whose retry (or spool) keeps the data. The
// library's asynchronous WriteAPI is not used: it drops the oldest batches when its retry
// buffer fills, retries only when new writes arrive, and wedges on encoding errors
// (influxdb-client-go#384).
//
// Failures are classified for the sender: Error.Retryable is true for anything that fixing the
// server or its configuration cures (connection errors, 5xx, 429, and also 401/403/404, so that
// a missing database or a wrong token loses nothing), false only for data InfluxDB refuses
// (400, 413 after splitting, 422).
package influx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
)

// MaxLines is the most points (lines) one write request carries: InfluxDB's recommended batch
// size, and far below 1.x's 25 MB body limit for fleetwatt's points.
const MaxLines = 5000

// Options configure a Writer.
type Options struct {
	URL    string // "http://127.0.0.1:8086"
	Token  string // API token on 2.x/3.x, "user:password" on 1.x, "" without authentication
	Org    string // ignored by 1.x
	Bucket string // 2.x bucket; "db" or "db/rp" on 1.x
	// Timeout bounds each HTTP request; 0 means 20 s.
	Timeout time.Duration
	// Latency, when set, observes the duration of every write request, s, failed or not.
	Latency Observer
}

// Observer records one value; *promtext.Hist is one.
type Observer interface {
	Observe(v float64)
}

// Writer writes points to one bucket. It is safe for concurrent use; each Write uses its own
// connection from the client's pool.
type Writer struct {
	opts   Options
	client influxdb2.Client
	api    api.WriteAPIBlocking
}

// New returns a Writer for opts. It does not contact the server; use Ping for that.
func New(opts Options) (*Writer, error) {
	if opts.URL == "" {
		return nil, errors.New("influxdb writer: no url")
	}
	if opts.Bucket == "" {
		return nil, errors.New("influxdb writer: no bucket")
	}
	co := influxdb2.DefaultOptions().
		SetUseGZip(true).
		SetPrecision(time.Millisecond).
		SetBatchSize(MaxLines).
		SetLogLevel(0)
	if opts.Timeout > 0 {
		co.SetHTTPRequestTimeout(uint(opts.Timeout / time.Second))
	}
	client := influxdb2.NewClientWithOptions(opts.URL, opts.Token, co)
	return &Writer{opts: opts, client: client, api: client.WriteAPIBlocking(opts.Org, opts.Bucket)}, nil
}

// Target describes where the writer writes, for logs ("http://…:8086 bucket fleetwatt").
func (w *Writer) Target() string { return w.opts.URL + " bucket " + w.opts.Bucket }

// Write writes points in requests of at most MaxLines lines. It returns nil once InfluxDB has
// accepted every request, or an *Error. After a retryable failure it stops (the sender will
// send everything again; rewriting the points already stored is harmless, as a point is
// identified by measurement, tags and time). After a permanent one it writes the remaining
// requests and returns the first permanent error.
func (w *Writer) Write(ctx context.Context, points []*write.Point) error {
	var permanent error
	for chunk := range chunks(points, MaxLines) {
		start := time.Now()
		err := w.api.WritePoint(ctx, chunk...)
		w.observe(start)
		if err == nil {
			continue
		}
		e := w.classify(err, len(chunk))
		if e.Retryable {
			return e
		}
		if permanent == nil {
			permanent = e
		}
	}
	return permanent
}

// WriteLines writes lines of line protocol (timestamps in ms, no trailing newline) in one
// request, as they are: the collector's write-ahead log keeps lines, not points, so that a
// replay sends InfluxDB the very bytes that were acknowledged. The caller keeps a request at
// MaxLines lines or fewer and decides what a failure means (split on 413, dead-letter on 400);
// it returns nil or an *Error.
func (w *Writer) WriteLines(ctx context.Context, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	start := time.Now()
	err := w.api.WriteRecord(ctx, lines...)
	w.observe(start)
	if err != nil {
		return w.classify(err, len(lines))
	}
	return nil
}

func (w *Writer) observe(start time.Time) {
	if w.opts.Latency != nil {
		w.opts.Latency.Observe(time.Since(start).Seconds())
	}
}

func chunks(points []*write.Point, n int) func(func([]*write.Point) bool) {
	return func(yield func([]*write.Point) bool) {
		for len(points) > 0 {
			c := points[:min(n, len(points))]
			points = points[len(c):]
			if !yield(c) {
				return
			}
		}
	}
}

// Ping checks that InfluxDB answers (GET /ping, served by 1.8, 2.x and 3.x).
func (w *Writer) Ping(ctx context.Context) error {
	if _, err := w.client.Ping(ctx); err != nil {
		return fmt.Errorf("ping influxdb %s: %w", w.opts.URL, err)
	}
	return nil
}

// Close releases the client's idle connections. Writes must have returned.
func (w *Writer) Close() { w.client.Close() }

// Error is a failed write.
type Error struct {
	Target     string        // URL and bucket
	Points     int           // points in the failed request
	StatusCode int           // HTTP status; 0 for a connection error
	Retryable  bool          // whether sending the same points again can succeed
	RetryAfter time.Duration // the server's Retry-After, if any
	Hint       string        // what the operator should do, if known
	Err        error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "write %d points to influxdb %s: ", e.Points, e.Target)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d: ", e.StatusCode)
	}
	b.WriteString(e.Err.Error())
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is a write failure that sending the same points again may
// cure. Errors that are not an *Error (a cancelled context, say) count as retryable: data must
// not be dropped for them.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable
	}
	return true
}

func (w *Writer) classify(err error, points int) *Error {
	e := &Error{Target: w.Target(), Points: points, Retryable: true, Err: err}
	var he *ihttp.Error
	if !errors.As(err, &he) {
		// An encoding error: the points cannot be written as they are.
		e.Retryable = false
		return e
	}
	e.StatusCode = he.StatusCode
	e.RetryAfter = time.Duration(he.RetryAfter) * time.Second
	if he.Err == nil && he.Message == "" && he.Code == "" {
		e.Err = errors.New(http.StatusText(he.StatusCode))
	}
	switch code := he.StatusCode; {
	case code == 0: // connection refused, timeout, DNS
		e.Hint = "is influxdb running and reachable at " + w.opts.URL + "?"
	case code == http.StatusNotFound:
		db, _, _ := strings.Cut(w.opts.Bucket, "/")
		e.Hint = fmt.Sprintf("create the database: CREATE DATABASE %s on influxdb 1.x, or the bucket %q on 2.x", db, w.opts.Bucket)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		e.Hint = "check the token (influx.token_file, FLEETWATT_INFLUX_TOKEN or INFLUX_TOKEN; user:password on 1.x) and its write permission on the bucket"
	case code == http.StatusTooManyRequests || code >= 500:
	case code == http.StatusRequestEntityTooLarge:
		e.Retryable = false
		e.Hint = "the request exceeds influxdb's max-body-size"
	default: // 400 bad data or partial write, 422 unprocessable
		e.Retryable = false
	}
	return e
}
