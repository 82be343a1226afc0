package export

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// flakyExporter stands in for the network: it fails while down is set and records what it
// delivered, in order.
type flakyExporter struct {
	sdkmetric.Exporter // only Export and Shutdown are called

	mu        sync.Mutex
	down      bool
	delivered []time.Time
}

func (f *flakyExporter) Export(_ context.Context, rm *metricdata.ResourceMetrics) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("connection refused")
	}
	f.delivered = append(f.delivered, stamp(rm))
	return nil
}

func (f *flakyExporter) Shutdown(context.Context) error { return nil }

func (f *flakyExporter) set(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *flakyExporter) got() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.delivered...)
}

// batch is a one-point batch identified by its timestamp.
func batch(at time.Time) *metricdata.ResourceMetrics {
	return &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{{
		Name: "hw.energy",
		Data: metricdata.Sum[float64]{Temporality: metricdata.DeltaTemporality, DataPoints: []metricdata.DataPoint[float64]{{Time: at, Value: 1}}},
	}}}}}
}

func stamp(rm *metricdata.ResourceMetrics) time.Time {
	return rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Sum[float64]).DataPoints[0].Time
}

var discard = slog.New(slog.DiscardHandler)

// TestSenderKeepsOrderThroughAnOutage: batches made while the collector is down are delivered,
// oldest first and none lost, once it is back.
func TestSenderKeepsOrderThroughAnOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exp := &flakyExporter{down: true}
		s := NewSender(exp, 1<<20, discard)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()

		t0 := time.Unix(1_700_000_000, 0)
		var want []time.Time
		for i := range 30 { // five minutes of 10 s batches, all while down
			at := t0.Add(time.Duration(i) * 10 * time.Second)
			want = append(want, at)
			s.Enqueue(batch(at))
			time.Sleep(10 * time.Second)
		}
		if got := exp.got(); len(got) != 0 {
			t.Fatalf("delivered %d batches while down", len(got))
		}
		exp.set(false)
		time.Sleep(31 * time.Second) // the longest backoff
		synctest.Wait()
		got := exp.got()
		if len(got) != len(want) {
			t.Fatalf("delivered %d batches, want %d", len(got), len(want))
		}
		for i := range want {
			if !got[i].Equal(want[i]) {
				t.Fatalf("batch %d delivered out of order: %v, want %v", i, got[i], want[i])
			}
		}
		st := s.Stats()
		if st.Sent != 30 || st.Dropped != 0 || st.QueuedBatches != 0 || st.Failed == 0 {
			t.Errorf("stats %+v, want 30 sent, 0 dropped, 0 queued, some failures", st)
		}
		cancel()
		<-done
	})
}

// TestSenderDropsOldestWhenFull: the queue is bounded; the oldest batches go first and are
// counted.
func TestSenderDropsOldestWhenFull(t *testing.T) {
	t.Parallel()
	exp := &flakyExporter{down: true}
	one := estimateBytes(batch(time.Time{}))
	s := NewSender(exp, 3*one, discard) // room for three batches
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 5 {
		s.Enqueue(batch(t0.Add(time.Duration(i) * time.Second)))
	}
	st := s.Stats()
	if st.QueuedBatches != 3 || st.Dropped != 2 || st.DroppedPoints != 2 {
		t.Fatalf("stats %+v, want 3 queued, 2 dropped batches of 1 point", st)
	}
	exp.set(false)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := exp.got()
	if len(got) != 3 || !got[0].Equal(t0.Add(2*time.Second)) {
		t.Errorf("delivered %v, want the three newest batches from %v", got, t0.Add(2*time.Second))
	}
}

// TestSenderShutdownCountsWhatItCouldNotSend.
func TestSenderShutdownCountsWhatItCouldNotSend(t *testing.T) {
	t.Parallel()
	exp := &flakyExporter{down: true}
	s := NewSender(exp, 1<<20, discard)
	s.Enqueue(batch(time.Unix(1, 0)))
	s.Enqueue(batch(time.Unix(2, 0)))
	err := s.Shutdown(context.Background())
	if err == nil {
		t.Fatal("Shutdown = nil, want an error saying 2 batches were not sent")
	}
	if st := s.Stats(); st.Dropped != 2 || st.QueuedBatches != 0 {
		t.Errorf("stats %+v, want 2 dropped and an empty queue", st)
	}
}
