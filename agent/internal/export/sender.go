package export

import (
	"context"
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
}

// NewExporter returns the SDK's OTLP exporter for opts. The other OTEL_EXPORTER_OTLP_*
// variables (headers, certificates, compression) apply as the SDK defines them.
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
		return otlpmetrichttp.New(ctx, o...)
	default:
		return nil, fmt.Errorf("protocol %q: want %q or %q", opts.Protocol, ProtocolGRPC, ProtocolHTTP)
	}
}

// Sender sends batches through an exporter in order. A batch that fails stays at the head of
// a queue bounded in (estimated) bytes and is retried with backoff; when the queue is full the
// oldest batch is dropped and counted.
type Sender struct {
	exp      sdkmetric.Exporter
	log      *slog.Logger
	maxBytes int64

	mu     sync.Mutex
	queue  []queued
	queued int64 // bytes
	wake   chan struct{}

	sent, failed, dropped, droppedPoints atomic.Uint64
}

type queued struct {
	rm    *metricdata.ResourceMetrics
	bytes int64
}

// Stats are a Sender's counters since it started.
type Stats struct {
	Sent, Failed, Dropped, DroppedPoints uint64
	QueuedBatches                        int
	QueuedBytes                          int64
}

// NewSender returns a Sender over exp whose queue holds at most maxBytes.
func NewSender(exp sdkmetric.Exporter, maxBytes int64, log *slog.Logger) *Sender {
	return &Sender{exp: exp, log: log, maxBytes: maxBytes, wake: make(chan struct{}, 1)}
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
	return Stats{
		Sent: s.sent.Load(), Failed: s.failed.Load(), Dropped: s.dropped.Load(),
		DroppedPoints: s.droppedPoints.Load(), QueuedBatches: n, QueuedBytes: b,
	}
}

// Run sends queued batches until ctx ends, backing off from 1 s to 30 s while exports fail.
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
				continue // backing off: the timer decides
			}
		case <-retry:
			retry = nil
		}
		err := s.Flush(ctx)
		if err == nil {
			if lastErr != "" {
				s.log.Info("export recovered", "sent_batches", s.sent.Load(), "dropped_batches", s.dropped.Load())
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
				"queued_batches", st.QueuedBatches, "retry_in", delay)
		}
	}
}

// Flush sends queued batches oldest first and stops at the first failure.
func (s *Sender) Flush(ctx context.Context) error {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			return nil
		}
		head := s.queue[0]
		s.mu.Unlock()

		if err := s.exp.Export(ctx, head.rm); err != nil {
			s.failed.Add(1)
			return fmt.Errorf("export: %w", err)
		}
		if s.sent.Add(1) == 1 {
			s.log.Info("first batch delivered to the collector")
		}
		s.mu.Lock()
		// Enqueue may have dropped the head while it was being sent; remove it only if it is
		// still there.
		if len(s.queue) > 0 && s.queue[0].rm == head.rm {
			s.queue[0] = queued{}
			s.queue = s.queue[1:]
			s.queued -= head.bytes
		}
		s.mu.Unlock()
	}
}

// Shutdown sends what is queued, within ctx, and shuts the exporter down. Batches it could not
// send are counted as dropped and reported in the error.
func (s *Sender) Shutdown(ctx context.Context) error {
	flushErr := s.Flush(ctx)
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
