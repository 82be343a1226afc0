package forward

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/fleetwatt/fleetwatt/collector/internal/pipeline"
	"github.com/fleetwatt/fleetwatt/collector/internal/receive"
	"github.com/fleetwatt/fleetwatt/collector/internal/wal"
)

// Writer is the pipeline's MetricsWriter on a forwarding collector: it appends each accepted
// request to the log, as a serialized OTLP export request, and returns once it is fsynced.
type Writer struct {
	wal *wal.WAL
	// maxRecord bounds one record (bytes): a quarter segment, as wal.Writer's appends.
	maxRecord int

	records atomic.Int64
	bytes   atomic.Int64
}

var _ pipeline.MetricsWriter = (*Writer)(nil)

// NewWriter returns a Writer appending to w, which must have been opened with
// wal.KindOTLP.
func NewWriter(w *wal.WAL, segmentBytes int64) *Writer {
	if segmentBytes <= 0 {
		segmentBytes = wal.DefaultSegmentBytes
	}
	return &Writer{wal: w, maxRecord: int(segmentBytes / 4)}
}

// WriterStats are the Writer's counters.
type WriterStats struct {
	AppendedRecords int64 // records made durable
	AppendedBytes   int64 // their bytes
}

// Stats returns the counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{AppendedRecords: w.records.Load(), AppendedBytes: w.bytes.Load()}
}

// WriteMetrics appends md to the log and returns once it is durable. A request larger than a
// record may be is split between its resources, into records that each hold whole resources;
// a full log gives a *wal.FullError, and nothing is written then (or, for a split request,
// only a prefix, which the sender's retry rewrites harmlessly).
func (w *Writer) WriteMetrics(ctx context.Context, md pmetric.Metrics) error {
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		return receive.Permanent(fmt.Errorf("encode otlp request: %w", err))
	}
	recs, err := splitRequest(b, w.maxRecord)
	if err != nil {
		return receive.Permanent(err)
	}
	for _, r := range recs {
		err := w.wal.Append(ctx, r)
		if errors.Is(err, wal.ErrFull) {
			return &wal.FullError{RetryAfter: wal.DefaultRetryAfter}
		}
		if err != nil {
			return err
		}
		w.records.Add(1)
		w.bytes.Add(int64(len(r)))
	}
	return nil
}

// fields returns the top-level fields of a serialized ExportMetricsServiceRequest: its
// resource_metrics, each a valid request on its own. Requests join by concatenation, as
// protobuf merges repeated fields.
func fields(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		num, typ, tagLen := protowire.ConsumeTag(b)
		if tagLen < 0 {
			return nil, fmt.Errorf("otlp request: %w", protowire.ParseError(tagLen))
		}
		valLen := protowire.ConsumeFieldValue(num, typ, b[tagLen:])
		if valLen < 0 {
			return nil, fmt.Errorf("otlp request: %w", protowire.ParseError(valLen))
		}
		out = append(out, b[:tagLen+valLen])
		b = b[tagLen+valLen:]
	}
	return out, nil
}

// splitRequest cuts a serialized request into requests of at most limit bytes, between
// resources; a single resource over the limit is an error.
func splitRequest(b []byte, limit int) ([][]byte, error) {
	if len(b) <= limit {
		return [][]byte{b}, nil
	}
	fs, err := fields(b)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	start, size := 0, 0
	for i, f := range fs {
		if len(f) > limit {
			return nil, fmt.Errorf("one resource's metrics take %d bytes, more than the %d a write-ahead log record may: send fewer metrics per resource, or raise wal.segment_bytes", len(f), limit)
		}
		if size+len(f) > limit {
			out = append(out, join(fs[start:i]))
			start, size = i, 0
		}
		size += len(f)
	}
	return append(out, join(fs[start:])), nil
}

// join concatenates serialized requests (or their fields) into one request.
func join(parts [][]byte) []byte {
	if len(parts) == 1 {
		return parts[0]
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
