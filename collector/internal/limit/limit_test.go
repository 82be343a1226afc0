package limit

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
)

func point(measurement string, tags ...string) *write.Point {
	p := write.NewPointWithMeasurement(measurement)
	for i := 0; i+1 < len(tags); i += 2 {
		p.AddTag(tags[i], tags[i+1])
	}
	return p.AddField("value", 1.0)
}

func TestAdmit(t *testing.T) {
	t.Parallel()
	s := New(Options{MaxSeries: 2})
	steps := []struct {
		who  string
		p    *write.Point
		want bool
	}{
		{"a", point("power", "host", "h1"), true},
		{"a", point("power", "host", "h2"), true},
		{"a", point("power", "host", "h3"), false}, // the third series
		{"a", point("power", "host", "h1"), true},  // known series keep flowing
		{"a", point("power", "host", "h2", "sensor", "x"), false},
		{"a", point("cpu", "host", "h1"), false},  // another measurement is another series
		{"b", point("power", "host", "h3"), true}, // another principal, its own budget
		{"a", point("power", "host", "h2"), true},
	}
	for i, st := range steps {
		if got := s.Admit(st.who, st.p); got != st.want {
			t.Errorf("step %d: Admit(%s, %s) = %v, want %v", i, st.who, write.PointToLineProtocol(st.p, time.Second), got, st.want)
		}
	}
	if s.Len("a") != 2 || s.Len("b") != 1 || s.Len("c") != 0 {
		t.Errorf("Len a, b, c = %d, %d, %d; want 2, 1, 0", s.Len("a"), s.Len("b"), s.Len("c"))
	}
	if s.Refused() != 3 {
		t.Errorf("Refused = %d, want 3", s.Refused())
	}
}

// TestWindows: a series written in every window stays known; one unwritten for two windows
// frees its place.
func TestWindows(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(Options{MaxSeries: 2, Window: time.Hour, Now: func() time.Time { return now }})
	steady, old, late := point("m", "k", "steady"), point("m", "k", "old"), point("m", "k", "late")
	admit := func(p *write.Point, want bool) {
		t.Helper()
		if got := s.Admit("a", p); got != want {
			t.Errorf("at %s: Admit(%s) = %v, want %v", now.Format(time.TimeOnly), write.PointToLineProtocol(p, time.Second), got, want)
		}
	}
	admit(steady, true)
	admit(old, true)
	admit(late, false)
	now = now.Add(70 * time.Minute) // window 2: both moved to the previous generation
	admit(steady, true)
	admit(late, false)              // old is still known
	now = now.Add(70 * time.Minute) // window 3: old, unwritten in window 2, is forgotten
	admit(steady, true)
	admit(late, true)
	admit(old, false)
	now = now.Add(5 * time.Hour) // nothing written for two windows: all forgotten
	if s.Len("a") != 0 {
		t.Errorf("Len after 5 h = %d, want 0", s.Len("a"))
	}
	admit(old, true)
}

// TestBounded: however many series a principal sends, it keeps at most MaxSeries.
func TestBounded(t *testing.T) {
	t.Parallel()
	s := New(Options{MaxSeries: 1000})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				s.Admit(Anonymous, point("m", "id", fmt.Sprintf("%d-%d", g, i)))
			}
		})
	}
	wg.Wait()
	if n := s.Len(Anonymous); n != 1000 {
		t.Errorf("Len = %d, want 1000", n)
	}
	if r := s.Refused(); r != 8*2000-1000 {
		t.Errorf("Refused = %d, want %d", r, 8*2000-1000)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	if s := New(Options{}); s.MaxSeries() != DefaultMaxSeries || s.window != DefaultWindow {
		t.Errorf("defaults: %d series, window %s", s.MaxSeries(), s.window)
	}
}

func BenchmarkAdmit(b *testing.B) {
	s := New(Options{})
	points := make([]*write.Point, 1000)
	for i := range points {
		points[i] = point("power", "host", fmt.Sprintf("web-%d", i), "sensor", "hwmon0/power1", "region", "cn-hangzhou")
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range points {
			s.Admit("a", p)
		}
	}
}
