package pipeline

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
)

// ErrClosed is returned for writes after the Batcher was closed.
var ErrClosed = errors.New("collector is shutting down")

// Batcher is a Writer that groups the points of concurrent requests into shared writes (a
// group commit). A thousand agents send a thousand small requests; writing each on its own
// costs InfluxDB a thousand HTTP requests, while one write of their points costs one. Nothing
// waits for a batch to fill: a flusher takes whatever has queued while the previous write was
// in flight, so a lone request is written at once and batches grow only under load. Each
// caller still returns only when its own points are stored.
type Batcher struct {
	w         Writer
	maxPoints int
	timeout   time.Duration
	queue     chan *pending
	wg        sync.WaitGroup

	mu     sync.RWMutex // held for reading while queueing, for writing to close the queue
	closed bool
}

type pending struct {
	points []*write.Point
	done   chan error
}

var _ Writer = (*Batcher)(nil)

// NewBatcher starts flushers goroutines writing through w, each write at most maxPoints
// points (more when a single request is larger) and bounded by timeout. Close stops them.
func NewBatcher(w Writer, maxPoints, flushers int, timeout time.Duration) *Batcher {
	b := &Batcher{
		w:         w,
		maxPoints: maxPoints,
		timeout:   timeout,
		// Bounded: when InfluxDB is slower than the senders, requests wait here and then in
		// their Write call, and the senders see backpressure instead of the collector
		// growing without limit.
		queue: make(chan *pending, 4*flushers),
	}
	for range flushers {
		b.wg.Go(b.flush)
	}
	return b
}

// Write queues points and returns once they are written, with the write's error, or when ctx
// ends. A caller that gives up early may still find its points stored: writes are idempotent,
// so its retry does no harm.
func (b *Batcher) Write(ctx context.Context, points []*write.Point) error {
	p := &pending{points: points, done: make(chan error, 1)}
	if err := b.enqueue(ctx, p); err != nil {
		return err
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Batcher) enqueue(ctx context.Context, p *pending) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	select {
	case b.queue <- p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued and stops the flushers. Writes after Close fail with ErrClosed.
func (b *Batcher) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *Batcher) flush() {
	for p := range b.queue {
		batch, n := []*pending{p}, len(p.points)
	gather:
		for n < b.maxPoints {
			select {
			case q, ok := <-b.queue:
				if !ok {
					break gather
				}
				batch, n = append(batch, q), n+len(q.points)
			default:
				break gather
			}
		}
		b.write(batch, n)
	}
}

// write stores a batch. A permanent failure (data InfluxDB refuses) is not everybody's: the
// requests are then written one by one, so that only the request at fault is refused.
func (b *Batcher) write(batch []*pending, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	if len(batch) == 1 {
		batch[0].done <- b.w.Write(ctx, batch[0].points)
		return
	}
	points := make([]*write.Point, 0, n)
	for _, p := range batch {
		points = append(points, p.points...)
	}
	err := b.w.Write(ctx, points)
	if err == nil || influx.IsRetryable(err) {
		for _, p := range batch {
			p.done <- err
		}
		return
	}
	for _, p := range batch {
		p.done <- b.w.Write(ctx, p.points)
	}
}
