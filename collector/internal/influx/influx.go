// Package influx writes points into InfluxDB through the v2 write API (/api/v2/write), which
// InfluxDB 1.8+ (bucket "db" or "db/rp"), 2.x, Cloud and 3.x all serve.
//
// Writes are synchronous: Write returns only once InfluxDB has answered, so the receiver can
// acknowledge an OTLP export after its data is stored and hand a failure back to the sender,
// whose retry (or spool) keeps the data. The library's asynchronous WriteAPI is not used: it
// drops the oldest batches when its retry buffer fills, retries only when new writes arrive,
// and wedges on encoding errors (influxdb-client-go#384).
//
// influxdb-client-go carries the requests (its HTTP service: authentication, timeouts, the
// parsing of InfluxDB's errors), but the Writer encodes and compresses the bodies itself, as
// WriteAPIBlocking would send them, into buffers it reuses: the library's encoder allocates
// wherever it can, and its gzip takes a new compressor (about 1 MB to allocate and clear) and
// a goroutine for every request, which for the collector's many small group-commit writes
// cost more CPU than the data they carried (BenchmarkWrite, BenchmarkEndToEndVsDirect).
//
// Failures are classified for the sender: Error.Retryable is true for anything that fixing the
// server or its configuration cures (connection errors, 5xx, 429, and also 401/403/404, so that
// a missing database or a wrong token loses nothing), false only for data InfluxDB refuses
// (400, 413 after splitting, 422).
package influx

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
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
	opts     Options
	client   influxdb2.Client
	writeURL string // /api/v2/write with org, bucket and precision
	bodies   sync.Pool
}

// body is one request's buffers: the line protocol and its gzip encoding.
type body struct {
	lines []byte
	gz    bytes.Buffer
	zw    *gzip.Writer
}

// gzipLevel trades compression for CPU: on fleetwatt's points level 2 compresses 8.0× (6.8× in
// writes of a hundred points) for about 1.2 µs a point, level 1 6.7× for about as much, the
// default level (6) 9.5× for 2.4 times the CPU: about 3 µs a point, as much as decoding and
// converting it.
const gzipLevel = 2

// maxPooledBody is the largest buffer kept for reuse: about two requests of MaxLines points.
const maxPooledBody = 4 << 20

// New returns a Writer for opts. It does not contact the server; use Ping for that.
func New(opts Options) (*Writer, error) {
	if opts.URL == "" {
		return nil, errors.New("influxdb writer: no url")
	}
	if opts.Bucket == "" {
		return nil, errors.New("influxdb writer: no bucket")
	}
	co := influxdb2.DefaultOptions().SetLogLevel(0)
	if opts.Timeout > 0 {
		co.SetHTTPRequestTimeout(uint(opts.Timeout / time.Second))
	}
	client := influxdb2.NewClientWithOptions(opts.URL, opts.Token, co)
	// The URL WriteAPIBlocking writes to, with Precision.
	u, err := url.Parse(client.HTTPService().ServerAPIURL())
	if err == nil {
		u, err = u.Parse("write")
	}
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("influxdb writer: url %q: %w", opts.URL, err)
	}
	u.RawQuery = url.Values{"org": {opts.Org}, "bucket": {opts.Bucket}, "precision": {"ms"}}.Encode()
	w := &Writer{opts: opts, client: client, writeURL: u.String()}
	w.bodies.New = func() any {
		zw, _ := gzip.NewWriterLevel(io.Discard, gzipLevel) // a valid level: no error
		return &body{zw: zw}
	}
	return w, nil
}

// Target describes where the writer writes, for logs ("http://…:8086 bucket fleetwatt").
func (w *Writer) Target() string { return w.opts.URL + " bucket " + w.opts.Bucket }

// Write writes points in requests of at most MaxLines lines. It returns nil once InfluxDB has
// accepted every request, or an *Error. After a retryable failure it stops (the sender will
// send everything again; rewriting the points already stored is harmless, as a point is
// identified by measurement, tags and time). After a permanent one it writes the remaining
// requests and returns the first permanent error.
func (w *Writer) Write(ctx context.Context, points []*write.Point) error {
	b := w.bodies.Get().(*body)
	defer w.release(b)
	var permanent error
	for chunk := range chunks(points, MaxLines) {
		var err error
		if b.lines, err = appendPoints(b.lines[:0], chunk); err != nil {
			// The points cannot be written as they are.
			err = &Error{Target: w.Target(), Points: len(chunk), Err: err}
		} else {
			err = w.post(ctx, b, len(chunk))
		}
		if err == nil {
			continue
		}
		if IsRetryable(err) {
			return err
		}
		if permanent == nil {
			permanent = err
		}
	}
	return permanent
}

// appendPoints appends the line protocol of points to dst.
func appendPoints(dst []byte, points []*write.Point) ([]byte, error) {
	for _, p := range points {
		var err error
		if dst, err = AppendPoint(dst, p); err != nil {
			return dst, fmt.Errorf("encode a point of %s: %w", p.Name(), err)
		}
	}
	return dst, nil
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
	b := w.bodies.Get().(*body)
	defer w.release(b)
	b.lines = b.lines[:0]
	for i, l := range lines {
		if i > 0 {
			b.lines = append(b.lines, '\n')
		}
		b.lines = append(b.lines, l...)
	}
	return w.post(ctx, b, len(lines))
}

// post sends b.lines, n lines, gzip-compressed, and returns nil or an *Error.
func (w *Writer) post(ctx context.Context, b *body, n int) error {
	b.gz.Reset()
	b.zw.Reset(&b.gz)
	if _, err := b.zw.Write(b.lines); err != nil {
		return &Error{Target: w.Target(), Points: n, Err: err}
	}
	if err := b.zw.Close(); err != nil {
		return &Error{Target: w.Target(), Points: n, Err: err}
	}
	start := time.Now()
	herr := w.client.HTTPService().DoPostRequest(ctx, w.writeURL, bytes.NewReader(b.gz.Bytes()),
		func(req *http.Request) {
			req.Header.Set("Content-Type", "text/plain; charset=utf-8")
			req.Header.Set("Content-Encoding", "gzip")
		},
		func(resp *http.Response) error {
			// Read to the end, so that the connection is reused.
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.Body.Close()
		})
	if w.opts.Latency != nil {
		w.opts.Latency.Observe(time.Since(start).Seconds())
	}
	if herr != nil {
		return w.classify(herr, n)
	}
	return nil
}

// release returns b to the pool, unless a very large request made it too big to keep.
func (w *Writer) release(b *body) {
	if cap(b.lines) > maxPooledBody || b.gz.Cap() > maxPooledBody {
		return
	}
	w.bodies.Put(b)
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

// classify turns the client's error for a request of points lines into an *Error.
func (w *Writer) classify(he *ihttp.Error, points int) *Error {
	e := &Error{Target: w.Target(), Points: points, Retryable: true, Err: he}
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
