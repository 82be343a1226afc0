// Package forward sends what a regional collector accepted on to a central collector over
// OTLP/HTTP, through the write-ahead log, so that a cut between a region and the centre loses
// nothing.
//
// The path: the receiver authenticates, checks and limits an export as it would before
// writing InfluxDB (package pipeline, NewForwarding); Writer appends the accepted OTLP
// request, serialized as protobuf, to the log (records of kind wal.KindOTLP) and the export
// is acknowledged once that is fsynced; Drainer reads the log in order, joins records into
// requests of up to DrainerOptions.MaxRequestBytes, and POSTs them to the central
// collector's /v1/metrics with this collector's bearer token (Client), committing the read
// position after each acknowledged request.
//
// What the central collector receives is what the agents sent, less the data points this
// collector rejected: resources (host.name, cloud.region, ...), attributes and timestamps
// unchanged. So the central collector's region-bound token check works on the agents'
// cloud.region, and it converts the data into exactly the points this collector would have
// written. A request is sent again whenever its acknowledgement is not received (a timeout,
// a cut mid-response, a restart before the commit); the central collector then writes the
// same points again, with the same measurement, tags and timestamp, which InfluxDB keeps
// once. At-least-once delivery plus idempotent points is effectively-once.
//
// Failures: connection errors, timeouts, 429, 5xx, 401, 403 and every other status are
// retried with exponential backoff and full jitter for as long as it takes (a Retry-After is
// honoured), while the log holds the backlog and, when it is full, senders are asked to retry
// later. 400 (the central collector refuses the data for good) is split down to the one
// record at fault, which goes to the dead-letter file; 413 splits the request, down to a
// single resource if need be.
package forward

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/fleetwatt/fleetwatt/internal/clientauth"
)

// MetricsPath is the OTLP/HTTP metrics path, appended to an endpoint without a path.
const MetricsPath = "/v1/metrics"

// Defaults of ClientOptions.
const (
	DefaultTimeout = 30 * time.Second
)

// Compression values.
const (
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// TLS says how to verify the central collector and which certificate to present.
type TLS struct {
	CAFile   string // CA certificates (PEM) the central collector's certificate must chain to; "" means the system roots
	CertFile string // client certificate (PEM), for a central collector that requires mutual TLS
	KeyFile  string // its private key (PEM)
}

func (t TLS) set() bool { return t != TLS{} }

// Observer takes the duration of a request, s.
type Observer interface {
	Observe(seconds float64)
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// Endpoint is the central collector's OTLP/HTTP URL, "https://central.example.com:4318";
	// MetricsPath is used when it has no path.
	Endpoint string
	// TokenFile holds the bearer token the central collector knows this collector by; ""
	// sends none. Read once, by NewClient.
	TokenFile string
	// TLS applies to an https:// endpoint; setting it with http:// is an error.
	TLS TLS
	// Timeout bounds one request, the response included; 0 means DefaultTimeout.
	Timeout time.Duration
	// Compression is CompressionGzip ("" too) or CompressionNone.
	Compression string
	// UserAgent names this collector in the central collector's logs.
	UserAgent string
	// Latency, when set, observes every request's duration, failed or not.
	Latency Observer
}

// Client sends OTLP export requests to a central collector.
type Client struct {
	url     string
	auth    string // "Bearer <token>", or ""
	gzip    bool
	ua      string
	timeout time.Duration
	latency Observer
	hc      *http.Client
}

// NewClient checks opts, reads the token and the TLS files, and returns a client.
func NewClient(opts ClientOptions) (*Client, error) {
	u, err := ParseEndpoint(opts.Endpoint)
	if err != nil {
		return nil, err
	}
	if opts.TLS.set() && u.Scheme != "https" {
		return nil, fmt.Errorf("forward: tls settings need an https:// endpoint, not %s", u.Redacted())
	}
	c := &Client{url: u.String(), ua: opts.UserAgent, timeout: opts.Timeout, latency: opts.Latency}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	switch opts.Compression {
	case "", CompressionGzip:
		c.gzip = true
	case CompressionNone:
	default:
		return nil, fmt.Errorf("forward: compression %q: want gzip or none", opts.Compression)
	}
	if opts.TokenFile != "" {
		tok, err := clientauth.ReadToken(opts.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("forward %w", err)
		}
		if u.Scheme != "https" && !clientauth.Loopback(u.Hostname()) {
			return nil, fmt.Errorf("forward: the token would cross the network in clear to %s: use an https:// endpoint", u.Host)
		}
		c.auth = "Bearer " + tok
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	tr.ResponseHeaderTimeout = c.timeout
	if u.Scheme == "https" {
		if tr.TLSClientConfig, err = opts.TLS.clientConfig(); err != nil {
			return nil, err
		}
		tr.ForceAttemptHTTP2 = true
		// A silent cut (a link down, a firewall dropping packets) leaves an HTTP/2
		// connection open for as long as TCP retransmits, every request on it waiting for
		// its timeout: a ping unanswered within the timeout closes it.
		tr.HTTP2 = &http.HTTP2Config{SendPingTimeout: c.timeout, PingTimeout: c.timeout}
	}
	c.hc = &http.Client{Transport: tr}
	return c, nil
}

// ParseEndpoint parses a central collector's URL, adding MetricsPath when it has no path.
func ParseEndpoint(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("forward endpoint: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("forward endpoint %q: want http:// or https://", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("forward endpoint %q: no host", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("forward endpoint %s: credentials in the URL; use the token file", u.Redacted())
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = MetricsPath
	}
	return u, nil
}

// URL is where requests go.
func (c *Client) URL() string { return c.url }

// Close closes idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Result is the central collector's answer to a request it took.
type Result struct {
	// RejectedDataPoints the central collector left out (OTLP partial success): data it will
	// never take, so they are counted, not sent again.
	RejectedDataPoints int64
	Message            string
}

// Error is a request the central collector did not take.
type Error struct {
	URL        string
	StatusCode int           // HTTP status; 0 when no answer came (connection, timeout)
	RetryAfter time.Duration // the answer's Retry-After, if any
	Message    string        // the answer's google.rpc.Status message, or the start of its body
	Err        error         // the transport error when StatusCode is 0
}

func (e *Error) Error() string {
	if e.StatusCode == 0 {
		return fmt.Sprintf("forward to %s: %v", e.URL, e.Err)
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("forward to %s: HTTP %d: %s", e.URL, e.StatusCode, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Send POSTs body, a serialized ExportMetricsServiceRequest, and returns once the central
// collector answered or the client's timeout passed. A failure is an *Error.
func (c *Client) Send(ctx context.Context, body []byte) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	payload := body
	if c.gzip {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
		if _, err := zw.Write(body); err != nil {
			return Result{}, &Error{URL: c.url, Err: err}
		}
		if err := zw.Close(); err != nil {
			return Result{}, &Error{URL: c.url, Err: err}
		}
		payload = b.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(payload))
	if err != nil {
		return Result{}, &Error{URL: c.url, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if c.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if c.ua != "" {
		req.Header.Set("User-Agent", c.ua)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err == nil {
		defer resp.Body.Close()
	}
	var b []byte
	if err == nil {
		// An answer is small; a huge one is not an OTLP answer.
		b, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	}
	if c.latency != nil {
		c.latency.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		// The connection may be dead without knowing it (a cut mid-request): the next
		// attempt dials afresh instead of waiting on it again.
		c.hc.CloseIdleConnections()
		return Result{}, &Error{URL: c.url, Err: err}
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode == http.StatusOK {
		return parseResult(ct, b), nil
	}
	return Result{}, &Error{
		URL: c.url, StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Message: statusMessage(ct, b),
	}
}

// parseResult reads the partial success of an ExportMetricsServiceResponse; an answer that
// does not parse is taken as a full success, since the status said so.
func parseResult(ct string, b []byte) Result {
	resp := pmetricotlp.NewExportResponse()
	var err error
	switch ct {
	case "application/x-protobuf":
		err = resp.UnmarshalProto(b)
	case "application/json":
		err = resp.UnmarshalJSON(b)
	default:
		return Result{}
	}
	if err != nil {
		return Result{}
	}
	ps := resp.PartialSuccess()
	return Result{RejectedDataPoints: ps.RejectedDataPoints(), Message: ps.ErrorMessage()}
}

// statusMessage returns the message of a google.rpc.Status body, as OTLP/HTTP servers answer
// failures, or the start of a body of another kind.
func statusMessage(ct string, b []byte) string {
	if ct == "application/x-protobuf" {
		var st spb.Status
		if proto.Unmarshal(b, &st) == nil && st.GetMessage() != "" {
			return st.GetMessage()
		}
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date. 0 when absent or bad.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		return time.Duration(max(n, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// clientConfig loads the TLS files.
func (t TLS) clientConfig() (*tls.Config, error) {
	cfg, err := clientauth.TLSConfig(t.CAFile, t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("forward %w", err)
	}
	return cfg, nil
}
