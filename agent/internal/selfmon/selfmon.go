// Package selfmon serves the agent's own counters on /metrics in the Prometheus text format:
// what was sent, failed and dropped, how full the queue and the spool are, and which readings
// the sources failed or the plausibility checks rejected, so that an operator sees a drop
// the moment it happens (docs/operations.md, "What to watch").
package selfmon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/collect"
	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
	"github.com/fleetwatt/fleetwatt/agent/internal/export"
	"github.com/fleetwatt/fleetwatt/internal/promtext"
)

// Sender is what the metrics need of the export path; *export.Sender is one.
type Sender interface {
	Stats() export.Stats
}

// Collector is what the metrics need of the collection cycle; *collect.Collector is one.
// Counters must be safe to call while a cycle runs.
type Collector interface {
	Counters() collect.Counters
}

var (
	_ Sender    = (*export.Sender)(nil)
	_ Collector = (*collect.Collector)(nil)
)

// Sources are where the counters come from. Collector may be nil.
type Sources struct {
	Sender    Sender
	Collector Collector
	Version   string
}

const prefix = "fleetwatt_agent_"

// Handler serves src's counters.
func Handler(src Sources) http.Handler {
	return promtext.Handler(func(w *promtext.Writer) { write(w, src) })
}

func write(w *promtext.Writer, src Sources) {
	w.Family(prefix+"build_info", "The agent's version; always 1.", promtext.Gauge)
	w.Sample(prefix+"build_info", 1, "version", src.Version)

	st := src.Sender.Stats()
	w.Counter(prefix+"batches_sent_total", "Batches the collector accepted.", float64(st.Sent))
	w.Counter(prefix+"batches_failed_total", "Export attempts that failed (the batch is kept and retried).", float64(st.Failed))
	w.Family(prefix+"batches_dropped_total", "Batches deleted unsent, by queue: memory (the queue bound or shutdown without a spool) or spool (its disk bound).", promtext.Counter)
	w.Sample(prefix+"batches_dropped_total", float64(st.Dropped), "queue", "memory")
	w.Sample(prefix+"batches_dropped_total", float64(st.Spool.Dropped), "queue", "spool")
	w.Family(prefix+"points_dropped_total", "Data points in the dropped batches, by queue.", promtext.Counter)
	w.Sample(prefix+"points_dropped_total", float64(st.DroppedPoints), "queue", "memory")
	w.Sample(prefix+"points_dropped_total", float64(st.Spool.DroppedPoints), "queue", "spool")
	w.Gauge(prefix+"queue_batches", "Batches waiting in memory.", float64(st.QueuedBatches))
	w.Gauge(prefix+"queue_bytes", "Estimated bytes waiting in memory.", float64(st.QueuedBytes))
	w.Gauge(prefix+"spool_batches", "Batches waiting in the disk spool.", float64(st.Spool.Batches))
	w.Gauge(prefix+"spool_bytes", "Disk use of the spool, bytes.", float64(st.Spool.Bytes))
	w.Counter(prefix+"spool_batches_written_total", "Batches written to the disk spool.", float64(st.Spool.Written))
	w.Counter(prefix+"spool_corrupt_files_total", "Spool files found torn or altered and skipped.", float64(st.Spool.Corrupt))
	var last float64
	if !st.LastSent.IsZero() {
		last = float64(st.LastSent.UnixNano()) / float64(time.Second)
	}
	w.Gauge(prefix+"last_export_timestamp_seconds", "When an export last succeeded, Unix time in s; 0 before the first.", last)

	if src.Collector == nil {
		return
	}
	c := src.Collector.Counters()
	w.Counter(prefix+"source_read_errors_total", "Failed reads of power sources and of /proc/stat.", float64(c.ReadErrors))
	if len(c.Rejected) == 0 {
		return // a labelled family without children is left out, as client libraries do
	}
	w.Family(prefix+"readings_rejected_total", "Power readings rejected as implausible, by source and reason.", promtext.Counter)
	keys := slices.SortedFunc(maps.Keys(c.Rejected), func(a, b energy.Rejection) int {
		if a.Source != b.Source {
			return cmp.Compare(a.Source, b.Source)
		}
		return cmp.Compare(a.Reason, b.Reason)
	})
	for _, k := range keys {
		w.Sample(prefix+"readings_rejected_total", float64(c.Rejected[k]), "source", k.Source, "reason", k.Reason)
	}
}

// Server serves Handler on its own listener. Start it once, then Shutdown.
type Server struct {
	addr string
	h    http.Handler
	log  *slog.Logger

	srv  *http.Server
	ln   net.Listener
	wg   sync.WaitGroup
	errs chan error
}

// NewServer returns a server for src on addr ("127.0.0.1:9464").
func NewServer(addr string, src Sources, log *slog.Logger) *Server {
	return &Server{addr: addr, h: Handler(src), log: log}
}

// Start listens and serves in the background; an address that cannot be bound is an error.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen for /metrics on %s: %w", s.addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.h)
	s.ln = ln
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.errs = make(chan error, 1)
	s.wg.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics endpoint stopped", "error", err)
			s.errs <- err
		}
	})
	s.log.Info("serving the agent's metrics", "address", ln.Addr().String(), "path", "/metrics")
	return nil
}

// Addr is the address listened on; nil before Start.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops serving, letting scrapes in flight finish within ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	s.wg.Wait()
	select {
	case serveErr := <-s.errs:
		err = errors.Join(err, serveErr)
	default:
	}
	if err != nil {
		return fmt.Errorf("shut down /metrics: %w", err)
	}
	return nil
}
