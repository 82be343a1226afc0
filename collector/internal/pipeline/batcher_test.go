package pipeline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
)

// slowWriter stands in for InfluxDB: each write takes a while, and a point whose measurement
// is "bad" makes the write fail permanently, as a field type conflict does.
type slowWriter struct {
	delay time.Duration

	mu     sync.Mutex
	writes [][]*write.Point
}

func (s *slowWriter) Write(_ context.Context, points []*write.Point) error {
	time.Sleep(s.delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range points {
		if p.Name() == "bad" {
			return &influx.Error{StatusCode: 400, Err: errors.New("partial write: field type conflict")}
		}
	}
	s.writes = append(s.writes, points)
	return nil
}

func points(name string, n int) []*write.Point {
	ps := make([]*write.Point, n)
	for i := range ps {
		ps[i] = write.NewPoint(name, nil, map[string]any{"v": float64(i)}, time.Unix(int64(i), 0))
	}
	return ps
}

// TestBatcherGroupsConcurrentRequests: 100 concurrent requests of 10 points become a few
// writes, and every point is written exactly once.
func TestBatcherGroupsConcurrentRequests(t *testing.T) {
	t.Parallel()
	w := &slowWriter{delay: 20 * time.Millisecond}
	b := NewBatcher(w, 5000, 1, 10*time.Second)
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if err := b.Write(context.Background(), points("power", 10)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	b.Close()
	total := 0
	for _, wr := range w.writes {
		total += len(wr)
	}
	if total != 1000 {
		t.Errorf("%d points written, want 1000", total)
	}
	if len(w.writes) > 50 {
		t.Errorf("%d writes for 100 concurrent requests: no batching", len(w.writes))
	}
}

// TestBatcherKeepsWritesWithinMax: requests are grouped up to maxPoints, never beyond, so the
// writer never has to split a group into a full request and a small one; a single request
// larger than maxPoints is written whole (the writer splits it).
func TestBatcherKeepsWritesWithinMax(t *testing.T) {
	t.Parallel()
	w := &slowWriter{delay: 20 * time.Millisecond}
	b := NewBatcher(w, 1000, 2, 10*time.Second)
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			n := 300
			if i == 30 {
				n = 1500
			}
			if err := b.Write(context.Background(), points("power", n)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	b.Close()
	total, grouped := 0, 0
	for _, wr := range w.writes {
		total += len(wr)
		if len(wr) > 1000 && len(wr) != 1500 {
			t.Errorf("a write of %d points, above the maximum of 1000", len(wr))
		}
		if len(wr) > 300 && len(wr) != 1500 {
			grouped++
		}
	}
	if total != 59*300+1500 {
		t.Errorf("%d points written, want %d", total, 59*300+1500)
	}
	if grouped == 0 {
		t.Error("no write grouped several requests")
	}
}

// TestBatcherRefusesOnlyTheBadRequest: a permanent failure in a shared write is retried per
// request, so the good requests are stored and only the bad one is refused.
func TestBatcherRefusesOnlyTheBadRequest(t *testing.T) {
	t.Parallel()
	w := &slowWriter{delay: 50 * time.Millisecond}
	b := NewBatcher(w, 5000, 1, 10*time.Second)
	defer b.Close()
	// Occupy the flusher so that the next three requests queue up and form one batch.
	go func() { _ = b.Write(context.Background(), points("power", 1)) }()
	time.Sleep(10 * time.Millisecond)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, name := range []string{"power", "bad", "cpu"} {
		wg.Go(func() { errs[i] = b.Write(context.Background(), points(name, 2)) })
	}
	wg.Wait()
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("good requests failed: %v, %v", errs[0], errs[2])
	}
	if errs[1] == nil || influx.IsRetryable(errs[1]) {
		t.Errorf("bad request: %v, want a permanent error", errs[1])
	}
}

func TestBatcherClosed(t *testing.T) {
	t.Parallel()
	b := NewBatcher(&slowWriter{}, 10, 2, time.Second)
	b.Close()
	if err := b.Write(context.Background(), points("power", 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	b.Close() // twice is fine
}
