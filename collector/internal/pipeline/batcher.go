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
// costs InfluxDB a thousand HTTP requests, while one write of their points costs one (and
// influxd spends about half the CPU on a point in a request of 5,000 as in one of 500).
// Nothing waits for a batch to fill while InfluxDB is idle: a lone request is written at once.
// Requests that arrive while a write is in flight gather into the next batch, which is
// written when that write ends, or at once by another flusher as soon as it is full
// (maxPoints), so batches grow with the load and the flushers write in parallel only when one
// cannot keep up. Each caller still returns only when its own points are stored.
type Batcher struct {
	w         Writer
	maxPoints int
	timeout   time.Duration
	queue     chan *pending
	batches   chan []*pending // unbuffered: a batch is handed over when a flusher is free
	written   chan struct{}   // a flusher finished a batch
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
		queue:   make(chan *pending, 4*flushers),
		batches: make(chan []*pending),
		written: make(chan struct{}, flushers),
	}
	b.wg.Go(b.gather)
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

// gather groups queued requests into batches and hands them to the flushers: a batch at once
// while no write is in flight, else once it is full. A request that would take a batch beyond
// maxPoints waits for the next one, so that the writer never has to split a batch into a full
// request and a small one (a single request larger than maxPoints is a batch of its own).
func (b *Batcher) gather() {
	defer close(b.batches)
	queue := b.queue
	var batch []*pending
	var next *pending // the request that did not fit
	n, writing := 0, 0
	for {
		full := n >= b.maxPoints || next != nil
		in, out := queue, b.batches
		if full {
			in = nil
		}
		if len(batch) == 0 || !full && writing > 0 {
			out = nil
		}
		if in == nil && out == nil && writing == 0 {
			return // closed and drained
		}
		select {
		case p, ok := <-in:
			switch {
			case !ok:
				queue = nil
			case len(batch) > 0 && n+len(p.points) > b.maxPoints:
				next = p
			default:
				batch, n = append(batch, p), n+len(p.points)
			}
		case out <- batch:
			writing++
			batch, n = nil, 0
			if next != nil {
				batch, n, next = []*pending{next}, len(next.points), nil
			}
		case <-b.written:
			writing--
		}
	}
}

// flush writes the batches gather hands it.
func (b *Batcher) flush() {
	for batch := range b.batches {
		n := 0
		for _, p := range batch {
			n += len(p.points)
		}
		b.write(batch, n)
		b.written <- struct{}{}
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
