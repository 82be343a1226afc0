// Package limit bounds the series cardinality each sender may create in InfluxDB: every
// principal (a bearer token's name, or Anonymous when authentication is off) may write at
// most MaxSeries distinct series (measurement + tag set) per window; points of a series it
// already writes always pass, points of a new series beyond the limit are refused.
//
// InfluxDB's memory and its index grow with every series ever written, so one sender that puts
// a request ID or a timestamp into an attribute can bring the database down for everyone; the
// limit makes that sender's new series fail, counted and reported back, instead.
//
// The set of known series is exact, not a sketch: a cardinality estimator (HyperLogLog) can
// count distinct series but cannot say whether a given series is one of them, and that answer
// is what lets known series keep flowing once the limit is hit; a Bloom filter can, but its
// false positives would let new series through as the filter fills. Each series is kept as
// a 64-bit hash (hash/maphash, seeded per Series), so a principal costs at most MaxSeries map
// entries, about 2 MB at the default 100,000, whatever the length of its tags; a collision
// (about 3·10⁻¹⁰ at 100,000 series) only lets one new series through as a known one.
//
// Series that stop being written are forgotten: the set has two generations, the current
// window's and the previous one's. A series seen in either is known (and moves to the
// current one); at the end of a window the previous generation is dropped. A series written
// at least once a window therefore stays known forever, one gone for two windows frees its
// place. The two generations together never hold more than MaxSeries hashes.
package limit

import (
	"cmp"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
)

// Defaults of Options.
const (
	// DefaultMaxSeries is generous for fleetwatt itself (a host writes about 20 series: a
	// dozen power sensors, its CPUs, idle states, the host point), so a token shared by a
	// few thousand hosts fits; a runaway attribute hits it within minutes.
	DefaultMaxSeries = 100_000
	// DefaultWindow is how long an unwritten series stays known (between one and two
	// windows); a day covers every sender's interval and InfluxDB's daily shards.
	DefaultWindow = 24 * time.Hour
)

// Anonymous is the principal of requests when authentication is off.
const Anonymous = "anonymous"

// Options configure a Series limit. Zero values mean the defaults.
type Options struct {
	MaxSeries int              // distinct series per principal; 0 means DefaultMaxSeries
	Window    time.Duration    // 0 means DefaultWindow
	Now       func() time.Time // nil means time.Now
}

// Series tracks the series of each principal. It is safe for concurrent use. Its memory is
// bounded by MaxSeries hashes per principal; principals come from the tokens file (or are
// Anonymous), so their number is the operator's.
type Series struct {
	max    int
	window time.Duration
	now    func() time.Time
	seed   maphash.Seed

	mu         sync.Mutex
	principals map[string]*principal

	refused atomic.Int64
}

// principal is one sender's known series.
type principal struct {
	mu        sync.Mutex
	start     time.Time           // of the current window
	cur, prev map[uint64]struct{} // series hashes; together at most max
}

// New returns an empty Series limit.
func New(o Options) *Series {
	s := &Series{
		max:        cmp.Or(o.MaxSeries, DefaultMaxSeries),
		window:     cmp.Or(o.Window, DefaultWindow),
		now:        o.Now,
		seed:       maphash.MakeSeed(),
		principals: make(map[string]*principal),
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// MaxSeries is the limit per principal.
func (s *Series) MaxSeries() int { return s.max }

// Refused is the number of points refused since New.
func (s *Series) Refused() int64 { return s.refused.Load() }

// Len returns the number of series known for the principal name.
func (s *Series) Len(name string) int {
	s.mu.Lock()
	p := s.principals[name]
	s.mu.Unlock()
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rotate(s.now(), s.window)
	return len(p.cur) + len(p.prev)
}

// Admit reports whether the principal name may write pt: true for a series it already
// writes, and for a new one while it has fewer than MaxSeries.
func (s *Series) Admit(name string, pt *write.Point) bool {
	s.mu.Lock()
	p := s.principals[name]
	if p == nil {
		p = &principal{start: s.now(), cur: make(map[uint64]struct{})}
		s.principals[name] = p
	}
	s.mu.Unlock()

	h := s.hash(pt)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rotate(s.now(), s.window)
	if _, ok := p.cur[h]; ok {
		return true
	}
	if _, ok := p.prev[h]; ok {
		delete(p.prev, h)
		p.cur[h] = struct{}{}
		return true
	}
	if len(p.cur)+len(p.prev) >= s.max {
		s.refused.Add(1)
		return false
	}
	p.cur[h] = struct{}{}
	return true
}

// rotate starts a new window when the current one is over: the current generation becomes
// the previous one, or both are dropped after two windows without a write.
func (p *principal) rotate(now time.Time, window time.Duration) {
	elapsed := now.Sub(p.start)
	if elapsed < window {
		return
	}
	if elapsed < 2*window {
		p.prev, p.cur = p.cur, make(map[uint64]struct{}, len(p.cur))
	} else {
		p.prev, p.cur = nil, make(map[uint64]struct{})
	}
	p.start = now
}

// hash is the series key of pt: its measurement and tag set, as InfluxDB keys a series (the
// tags in the order given; the converter sorts them).
func (s *Series) hash(pt *write.Point) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(pt.Name())
	for _, t := range pt.TagList() {
		h.WriteByte(0)
		h.WriteString(t.Key)
		h.WriteByte(1)
		h.WriteString(t.Value)
	}
	return h.Sum64()
}
