package wal

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/collector/internal/pipeline"
)

// Precision is the timestamp precision of the log's line protocol, and of the drainer's
// writes: InfluxDB is told the same precision the lines were encoded with.
const Precision = time.Millisecond

// DefaultRetryAfter is how long a sender refused with ErrFull is asked to wait (s): long
// enough for the drainer to free a segment, short enough that agents' spools stay small.
const DefaultRetryAfter = 30 * time.Second

// Writer is the pipeline's Writer when the collector runs with a write-ahead log: Write
// encodes the points as line protocol and returns once they are durable in the log, so
// the receiver acknowledges an export without waiting for InfluxDB.
type Writer struct {
	wal *WAL
	// maxAppend bounds the bytes of one Append (records go to one segment at a time).
	maxAppend int

	points    atomic.Int64
	nonFinite atomic.Int64
}

var _ pipeline.Writer = (*Writer)(nil)

// NewWriter returns a Writer appending to w.
func NewWriter(w *WAL) *Writer {
	return &Writer{wal: w, maxAppend: int(w.opts.SegmentBytes / 4)}
}

// WriterStats are the Writer's counters.
type WriterStats struct {
	AppendedPoints  int64 // points made durable in the log
	NonFinitePoints int64 // points dropped because no field was left after removing NaN/±Inf
}

// Stats returns the counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{AppendedPoints: w.points.Load(), NonFinitePoints: w.nonFinite.Load()}
}

// FullError is the error Write returns when the log is full: the sender should retry after
// RetryAfter. It wraps ErrFull, and influx.IsRetryable reports true for it.
type FullError struct {
	RetryAfter time.Duration
}

func (e *FullError) Error() string {
	return fmt.Sprintf("%v: influxdb is behind; retry in %s", ErrFull, e.RetryAfter)
}

func (e *FullError) Unwrap() error { return ErrFull }

// Write appends points to the log, one record per influx.MaxLines points, and returns once
// they are fsynced. A full log gives a *FullError; nothing is written then, or (for a request
// larger than a quarter segment) only a prefix, which the sender's retry rewrites harmlessly.
func (w *Writer) Write(ctx context.Context, points []*write.Point) error {
	var group [][]byte
	size, n := 0, 0
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		err := w.wal.Append(ctx, group...)
		if errors.Is(err, ErrFull) {
			return &FullError{RetryAfter: DefaultRetryAfter}
		}
		if err != nil {
			return err
		}
		w.points.Add(int64(n))
		group, size, n = group[:0], 0, 0
		return nil
	}
	for len(points) > 0 {
		chunk := points[:min(influx.MaxLines, len(points))]
		points = points[len(chunk):]
		rec, np := w.encode(chunk)
		if np == 0 {
			continue
		}
		if size+len(rec) > w.maxAppend {
			if err := flush(); err != nil {
				return err
			}
		}
		group = append(group, rec)
		size += len(rec)
		n += np
	}
	return flush()
}

// encode returns the line protocol of points (ms precision, one line each, each ending in
// "\n") and how many lines it holds.
func (w *Writer) encode(points []*write.Point) ([]byte, int) {
	b, n, bad := appendLineProtocol(nil, points)
	w.nonFinite.Add(int64(bad))
	return b, n
}

// appendLineProtocol appends the line protocol of points to b (ms precision, one line each,
// each ending in "\n"); n is how many lines it wrote, nonFinite how many points it left out
// because no field was left after removing NaN and ±Inf.
func appendLineProtocol(b []byte, points []*write.Point) (_ []byte, n, nonFinite int) {
	for _, p := range points {
		p = finitePoint(p)
		if p == nil {
			nonFinite++
			continue
		}
		line := write.PointToLineProtocol(p, Precision)
		if len(p.TagList()) == 0 {
			// PointToLineProtocol writes the tag separator even without tags ("m, f=1"),
			// which InfluxDB refuses. The measurement escapes its commas and spaces, so the
			// first ", " is that separator.
			if i := strings.Index(line, ", "); i >= 0 {
				line = line[:i] + line[i+1:]
			}
		}
		b = append(b, line...)
		n++
	}
	return b, n, nonFinite
}

// finitePoint returns p without NaN and ±Inf fields, which InfluxDB cannot store and which
// would make it refuse the whole line; nil if no field is left. convert already leaves them
// out: this guard keeps one bad value from ever reaching the dead-letter file.
func finitePoint(p *write.Point) *write.Point {
	bad := 0
	for _, f := range p.FieldList() {
		if x, ok := f.Value.(float64); ok && (math.IsNaN(x) || math.IsInf(x, 0)) {
			bad++
		}
	}
	if bad == 0 {
		return p
	}
	if bad == len(p.FieldList()) {
		return nil
	}
	q := write.NewPointWithMeasurement(p.Name())
	for _, t := range p.TagList() {
		q.AddTag(t.Key, t.Value)
	}
	for _, f := range p.FieldList() {
		if x, ok := f.Value.(float64); ok && (math.IsNaN(x) || math.IsInf(x, 0)) {
			continue
		}
		q.AddField(f.Key, f.Value)
	}
	q.SetTime(p.Time())
	return q
}
