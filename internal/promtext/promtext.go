// Package promtext writes the Prometheus text exposition format (version 0.0.4) by hand:
// counters, gauges and fixed-bucket histograms, enough for fleetwatt's own /metrics without
// the Prometheus client library. Parse reads the format back, strictly, for tests.
package promtext

import (
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
)

// ContentType is the media type of the text format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Type is a metric family's type.
type Type string

// The types this package writes.
const (
	Counter   Type = "counter"
	Gauge     Type = "gauge"
	Histogram Type = "histogram"
)

// Writer appends the exposition to a buffer; WriteTo hands it on. The caller keeps the
// format's rules: Family once per name, its samples right after it. A Writer is not safe for
// concurrent use.
type Writer struct {
	buf []byte
}

// Family starts a metric family: its # HELP and # TYPE lines.
func (w *Writer) Family(name, help string, t Type) {
	w.buf = append(w.buf, "# HELP "...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, ' ')
	w.buf = appendEscaped(w.buf, help, false)
	w.buf = append(w.buf, "\n# TYPE "...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, t...)
	w.buf = append(w.buf, '\n')
}

// Sample writes one sample line. labels are name, value pairs; an odd one out is ignored.
func (w *Writer) Sample(name string, v float64, labels ...string) {
	w.buf = append(w.buf, name...)
	if len(labels) >= 2 {
		w.buf = append(w.buf, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = append(w.buf, labels[i]...)
			w.buf = append(w.buf, `="`...)
			w.buf = appendEscaped(w.buf, labels[i+1], true)
			w.buf = append(w.buf, '"')
		}
		w.buf = append(w.buf, '}')
	}
	w.buf = append(w.buf, ' ')
	w.buf = AppendValue(w.buf, v)
	w.buf = append(w.buf, '\n')
}

// Counter writes a family holding one unlabelled counter.
func (w *Writer) Counter(name, help string, v float64) {
	w.Family(name, help, Counter)
	w.Sample(name, v)
}

// Gauge writes a family holding one unlabelled gauge.
func (w *Writer) Gauge(name, help string, v float64) {
	w.Family(name, help, Gauge)
	w.Sample(name, v)
}

// Histogram writes a family holding h: its cumulative buckets, _sum and _count.
func (w *Writer) Histogram(name, help string, h *Hist) {
	w.Family(name, help, Histogram)
	s := h.Snapshot()
	var cum uint64
	for i, c := range s.Counts {
		cum += c
		le := "+Inf"
		if i < len(s.Bounds) {
			le = string(AppendValue(nil, s.Bounds[i]))
		}
		w.Sample(name+"_bucket", float64(cum), "le", le)
	}
	w.Sample(name+"_sum", s.Sum)
	w.Sample(name+"_count", float64(cum))
}

// Bytes returns the exposition written so far.
func (w *Writer) Bytes() []byte { return w.buf }

// WriteTo writes the exposition to dst.
func (w *Writer) WriteTo(dst io.Writer) (int64, error) {
	n, err := dst.Write(w.buf)
	return int64(n), err
}

// AppendValue appends v as the format writes numbers: integers without an exponent up to
// 2⁵³, +Inf, -Inf and NaN by name.
func AppendValue(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case v == math.Trunc(v) && math.Abs(v) < 1<<53:
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendEscaped escapes \ and newline (HELP text), and " too in label values.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// Handler serves what write writes, fresh at each request.
func Handler(write func(*Writer)) http.Handler {
	pool := sync.Pool{New: func() any { return new(Writer) }}
	return http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		w := pool.Get().(*Writer)
		w.buf = w.buf[:0]
		write(w)
		rw.Header().Set("Content-Type", ContentType)
		rw.Header().Set("Content-Length", strconv.Itoa(len(w.buf)))
		_, _ = w.WriteTo(rw)
		pool.Put(w)
	})
}

// Hist is a histogram with fixed bucket bounds, safe for concurrent use; Observe does not
// allocate.
type Hist struct {
	bounds []float64 // upper bounds, ascending; +Inf implied

	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
}

// NewHist returns a histogram with the given upper bounds (sorted, duplicates removed).
func NewHist(bounds ...float64) *Hist {
	b := slices.Clone(bounds)
	b = slices.DeleteFunc(b, func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 1) })
	slices.Sort(b)
	b = slices.Compact(b)
	return &Hist{bounds: b, counts: make([]uint64, len(b)+1)}
}

// Observe records v.
func (h *Hist) Observe(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v) // the first bound >= v: le is inclusive
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.mu.Unlock()
}

// HistSnapshot is a Hist at one instant.
type HistSnapshot struct {
	Bounds []float64 // upper bounds, +Inf excluded
	Counts []uint64  // per bucket, not cumulative; one more than Bounds (+Inf)
	Sum    float64
}

// Snapshot returns the histogram's state; its counts and sum agree.
func (h *Hist) Snapshot() HistSnapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HistSnapshot{Bounds: h.bounds, Counts: slices.Clone(h.counts), Sum: h.sum}
}

var _ io.WriterTo = (*Writer)(nil)
