package export

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc/credentials"

	"github.com/fleetwatt/fleetwatt/internal/clientauth"
)

// Protocols, as OTEL_EXPORTER_OTLP_PROTOCOL spells them.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Options say where and how to send.
type Options struct {
	// Endpoint is the collector's OTLP URL ("http://collector:4317"); a bare "host:port" means
	// plain http. For HTTP without a path, /v1/metrics is used. Empty leaves the endpoint to
	// the standard OTEL_EXPORTER_OTLP_[METRICS_]ENDPOINT variables, else localhost.
	Endpoint string
	// Protocol is ProtocolGRPC or ProtocolHTTP.
	Protocol string
	// Timeout bounds one export, retries inside it included; 0 leaves the SDK's default
	// (OTEL_EXPORTER_OTLP_TIMEOUT, else 10 s).
	Timeout time.Duration
	// TLS says how to verify an https:// collector and which client certificate to present.
	// Setting any of it with an http:// endpoint is an error.
	TLS TLSOptions
	// TokenFile holds the bearer token sent as "authorization: Bearer <token>" with every
	// export. It is read once, here; the token is refused over plain http:// except to a
	// loopback address.
	TokenFile string
}

// NewExporter returns the SDK's OTLP exporter for opts. https:// endpoints verify the
// collector's certificate: against TLS.CAFile, else the system roots. The other
// OTEL_EXPORTER_OTLP_* variables (compression; headers and certificates where opts set no
// token and no TLS, which replace them) apply as the SDK defines them.
func NewExporter(ctx context.Context, opts Options) (sdkmetric.Exporter, error) {
	var u *url.URL
	if opts.Endpoint != "" {
		raw := opts.Endpoint
		if !strings.Contains(raw, "://") {
			raw = "http://" + raw
		}
		var err error
		if u, err = url.Parse(raw); err != nil || u.Host == "" {
			return nil, fmt.Errorf("endpoint %q: want a URL such as http://collector:4317", opts.Endpoint)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("endpoint %q: scheme must be http or https", opts.Endpoint)
		}
	}
	plain := u != nil && u.Scheme == "http"
	var tlsCfg *tls.Config
	if opts.TLS.set() {
		if plain {
			return nil, fmt.Errorf("endpoint %q: tls options need an https:// endpoint", opts.Endpoint)
		}
		var err error
		if tlsCfg, err = opts.TLS.clientConfig(); err != nil {
			return nil, err
		}
	}
	var headers map[string]string
	if opts.TokenFile != "" {
		if plain && !clientauth.Loopback(u.Hostname()) {
			return nil, fmt.Errorf("endpoint %q: a bearer token would travel in clear over http://; use https://", opts.Endpoint)
		}
		tok, err := clientauth.ReadToken(opts.TokenFile)
		if err != nil {
			return nil, err
		}
		headers = map[string]string{"authorization": "Bearer " + tok}
	}
	switch opts.Protocol {
	case ProtocolGRPC:
		var o []otlpmetricgrpc.Option
		if u != nil {
			o = append(o, otlpmetricgrpc.WithEndpoint(u.Host))
			if u.Scheme == "http" {
				o = append(o, otlpmetricgrpc.WithInsecure())
			}
		}
		if opts.Timeout > 0 {
			o = append(o, otlpmetricgrpc.WithTimeout(opts.Timeout))
		}
		if tlsCfg != nil {
			o = append(o, otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
		}
		if headers != nil {
			o = append(o, otlpmetricgrpc.WithHeaders(headers))
		}
		return otlpmetricgrpc.New(ctx, o...)
	case ProtocolHTTP:
		var o []otlpmetrichttp.Option
		if u != nil {
			path := u.Path
			if path == "" || path == "/" {
				path = "/v1/metrics"
			}
			o = append(o, otlpmetrichttp.WithEndpoint(u.Host), otlpmetrichttp.WithURLPath(path))
			if u.Scheme == "http" {
				o = append(o, otlpmetrichttp.WithInsecure())
			}
		}
		if opts.Timeout > 0 {
			o = append(o, otlpmetrichttp.WithTimeout(opts.Timeout))
		}
		if tlsCfg != nil {
			o = append(o, otlpmetrichttp.WithTLSClientConfig(tlsCfg))
		}
		if headers != nil {
			o = append(o, otlpmetrichttp.WithHeaders(headers))
		}
		return otlpmetrichttp.New(ctx, o...)
	default:
		return nil, fmt.Errorf("protocol %q: want %q or %q", opts.Protocol, ProtocolGRPC, ProtocolHTTP)
	}
}

// Sender sends batches through an exporter in order. A batch that fails stays at the head of
// a queue bounded in (estimated) bytes and is retried with backoff; when the queue is full the
// oldest batch is dropped and counted.
//
// With a Spool, the in-memory queue stays the fast path while the collector answers, with no
// disk I/O; the first failed export moves the queue to the spool, and while exports keep
// failing each new batch follows it there within one interval, so a crash or restart loses
// at most the batch being collected. Batches in the spool are older than those in memory and
// are sent first.
type Sender struct {
	exp      sdkmetric.Exporter
	log      *slog.Logger
	maxBytes int64
	spool    *Spool // nil: memory only

	// flushMu serializes Flush and spilling: both move the head of the queue.
	flushMu sync.Mutex

	mu     sync.Mutex
	queue  []queued
	queued int64 // bytes
	wake   chan struct{}

	sent, failed, dropped, droppedPoints atomic.Uint64
	lastSent                             atomic.Int64 // Unix ns of the last successful export; 0: none
}

type queued struct {
	rm    *metricdata.ResourceMetrics
	bytes int64
}

// Stats are a Sender's counters since it started. Dropped and DroppedPoints count the
// in-memory queue's drops; the spool's are in Spool.
type Stats struct {
	Sent, Failed, Dropped, DroppedPoints uint64
	QueuedBatches                        int
	QueuedBytes                          int64
	// LastSent is when an export last succeeded; zero before the first.
	LastSent time.Time
	// Spool is the spool's state and counters; zero without a spool.
	Spool SpoolStats
}

// NewSender returns a Sender over exp whose queue holds at most maxBytes.
func NewSender(exp sdkmetric.Exporter, maxBytes int64, log *slog.Logger) *Sender {
	return NewSpoolingSender(exp, maxBytes, nil, log)
}

// NewSpoolingSender returns a Sender over exp whose in-memory queue holds at most maxBytes
// and which keeps what the collector does not take in sp (nil: none). Batches an earlier run
// left in sp are sent first, as soon as Run starts.
func NewSpoolingSender(exp sdkmetric.Exporter, maxBytes int64, sp *Spool, log *slog.Logger) *Sender {
	s := &Sender{exp: exp, log: log, maxBytes: maxBytes, spool: sp, wake: make(chan struct{}, 1)}
	if sp != nil && sp.Len() > 0 {
		s.wake <- struct{}{}
	}
	return s
}

// Enqueue queues rm for sending and never blocks.
func (s *Sender) Enqueue(rm *metricdata.ResourceMetrics) {
	if rm == nil {
		return
	}
	size := estimateBytes(rm)
	s.mu.Lock()
	for len(s.queue) > 0 && s.queued+size > s.maxBytes {
		old := s.queue[0]
		s.queue[0] = queued{}
		s.queue = s.queue[1:]
		s.queued -= old.bytes
		if s.dropped.Add(1) == 1 {
			s.log.Warn("export queue full: dropping the oldest batches; the collector has been unreachable too long",
				"max_bytes", s.maxBytes)
		}
		s.droppedPoints.Add(uint64(Points(old.rm)))
	}
	s.queue = append(s.queue, queued{rm: rm, bytes: size})
	s.queued += size
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (s *Sender) Stats() Stats {
	s.mu.Lock()
	n, b := len(s.queue), s.queued
	s.mu.Unlock()
	st := Stats{
		Sent: s.sent.Load(), Failed: s.failed.Load(), Dropped: s.dropped.Load(),
		DroppedPoints: s.droppedPoints.Load(), QueuedBatches: n, QueuedBytes: b,
	}
	if ns := s.lastSent.Load(); ns != 0 {
		st.LastSent = time.Unix(0, ns)
	}
	if s.spool != nil {
		st.Spool = s.spool.Stats()
	}
	return st
}

// Run sends queued batches until ctx ends, backing off from 1 s to 30 s while exports fail.
// An export under way when ctx ends is let finish (the exporter's timeout bounds it): cut
// off, the collector may have stored a batch the Sender then counts as unsent and sends
// again.
func (s *Sender) Run(ctx context.Context) {
	var (
		retry   <-chan time.Time
		delay   time.Duration
		lastErr string
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			if retry != nil {
				// Backing off: the timer decides when to try again; meanwhile the new batch
				// goes to disk, where a crash cannot take it.
				s.flushMu.Lock()
				s.spill()
				s.flushMu.Unlock()
				continue
			}
		case <-retry:
			retry = nil
		}
		err := s.flush(ctx, context.WithoutCancel(ctx))
		if err == nil {
			if lastErr != "" {
				st := s.Stats()
				s.log.Info("export recovered", "sent_batches", st.Sent, "dropped_batches", st.Dropped+st.Spool.Dropped)
			}
			delay, lastErr = 0, ""
			continue
		}
		if ctx.Err() != nil {
			return
		}
		delay = min(max(2*delay, time.Second), 30*time.Second)
		retry = time.After(delay)
		if msg := err.Error(); msg != lastErr {
			lastErr = msg
			st := s.Stats()
			s.log.Warn("export failed; keeping the data and retrying", "err", err,
				"queued_batches", st.QueuedBatches, "spooled_batches", st.Spool.Batches, "retry_in", delay)
		}
	}
}

// Flush sends queued batches oldest first, the spool's before the memory queue's, and stops
// at the first failure. With a spool, a failure moves the memory queue to the spool.
func (s *Sender) Flush(ctx context.Context) error { return s.flush(ctx, ctx) }

// flush sends with exportCtx and stops between batches when ctx ends.
func (s *Sender) flush(ctx, exportCtx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	err := s.flushSpool(ctx, exportCtx)
	if err == nil {
		err = s.flushMemory(ctx, exportCtx)
	}
	if err != nil {
		s.spill()
	}
	return err
}

// flushSpool sends the spool's batches oldest first. s.flushMu is held.
func (s *Sender) flushSpool(ctx, exportCtx context.Context) error {
	if s.spool == nil {
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("send spooled batches: %w", err)
		}
		seq, rm, ok, err := s.spool.Peek()
		if err != nil || !ok {
			return err
		}
		if err := s.exp.Export(exportCtx, rm); err != nil {
			s.failed.Add(1)
			return fmt.Errorf("export spooled batch: %w", err)
		}
		s.delivered()
		if err := s.spool.Remove(seq); err != nil {
			s.log.Warn("spool: a sent batch stays on disk and will be sent again after a restart", "err", err)
		}
	}
}

// spill moves the memory queue, oldest first, to the spool. A batch the spool cannot take
// (disk full, I/O error) stays in memory, where the queue's own bound applies. s.flushMu is
// held.
func (s *Sender) spill() {
	if s.spool == nil {
		return
	}
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			return
		}
		head := s.queue[0]
		s.mu.Unlock()
		if err := s.spool.Append(head.rm); err != nil {
			s.log.Warn("spool: cannot write a batch; keeping it in memory", "err", err)
			return
		}
		s.removeHead(head)
	}
}

// removeHead removes head from the queue unless Enqueue dropped it meanwhile.
func (s *Sender) removeHead(head queued) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 && s.queue[0].rm == head.rm {
		s.queue[0] = queued{}
		s.queue = s.queue[1:]
		s.queued -= head.bytes
	}
}

// flushMemory sends the memory queue's batches oldest first. s.flushMu is held.
func (s *Sender) flushMemory(ctx, exportCtx context.Context) error {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			return nil
		}
		head := s.queue[0]
		s.mu.Unlock()

		if err := ctx.Err(); err != nil {
			return fmt.Errorf("send queued batches: %w", err)
		}
		if err := s.exp.Export(exportCtx, head.rm); err != nil {
			s.failed.Add(1)
			return fmt.Errorf("export: %w", err)
		}
		if s.delivered() == 1 {
			s.log.Info("first batch delivered to the collector")
		}
		// Enqueue may have dropped the head while it was being sent.
		s.removeHead(head)
	}
}

// delivered counts a successful export and returns the count.
func (s *Sender) delivered() uint64 {
	s.lastSent.Store(time.Now().UnixNano())
	return s.sent.Add(1)
}

// Shutdown sends what is queued, within ctx, and shuts the exporter down. Batches it could not
// send stay in the spool for the next start; without a spool (or when it cannot take them)
// they are counted as dropped and reported in the error.
func (s *Sender) Shutdown(ctx context.Context) error {
	flushErr := s.Flush(ctx)
	if flushErr != nil && s.spool != nil {
		s.mu.Lock()
		left := len(s.queue)
		s.mu.Unlock()
		if left == 0 {
			s.log.Info("collector unreachable at shutdown: unsent batches stay in the spool for the next start",
				"spooled_batches", s.spool.Len(), "err", flushErr)
			flushErr = nil
		}
	}
	if flushErr != nil {
		s.mu.Lock()
		n := len(s.queue)
		for _, q := range s.queue {
			s.droppedPoints.Add(uint64(Points(q.rm)))
		}
		s.dropped.Add(uint64(n))
		s.queue, s.queued = nil, 0
		s.mu.Unlock()
		flushErr = fmt.Errorf("%d batches not sent at shutdown: %w", n, flushErr)
	}
	return errors.Join(flushErr, s.exp.Shutdown(ctx))
}

// Points counts the data points of rm.
func Points(rm *metricdata.ResourceMetrics) int {
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[float64]:
				n += len(d.DataPoints)
			case metricdata.Gauge[float64]:
				n += len(d.DataPoints)
			}
		}
	}
	return n
}

// estimateBytes approximates rm's size in memory: a data point with its attribute set and
// timestamps is about 200 bytes. Exact accounting would cost more than the bound is worth.
func estimateBytes(rm *metricdata.ResourceMetrics) int64 {
	return 1024 + 200*int64(Points(rm))
}
