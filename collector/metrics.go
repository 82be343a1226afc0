package main

import (
	"maps"
	"net/http"
	"slices"

	"github.com/fleetwatt/fleetwatt/collector/internal/forward"
	"github.com/fleetwatt/fleetwatt/collector/internal/pipeline"
	"github.com/fleetwatt/fleetwatt/collector/internal/receive"
	"github.com/fleetwatt/fleetwatt/collector/internal/wal"
	"github.com/fleetwatt/fleetwatt/internal/promtext"
)

// influxLatencyBuckets are the upper bounds of the InfluxDB write latency histogram, s: a
// healthy local write takes milliseconds, a 5000-line batch to a busy server a second or
// two, and the client gives up at 20 s.
var influxLatencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20}

// metrics is the collector's own /metrics (docs/operations.md, "What to watch"). Its fields
// are set in run() before the listener serves; the WAL ones stay nil without a WAL.
type metrics struct {
	influxLatency  *promtext.Hist
	forwardLatency *promtext.Hist
	pipeline       *pipeline.Pipeline
	receiver       *receive.Receiver
	wal            *wal.WAL
	walWriter      *wal.Writer
	drainer        *wal.Drainer
	forwardWriter  *forward.Writer  // set when forwarding, like forwarder
	forwarder      *forward.Drainer // nil unless forwarding
}

func newMetrics() *metrics {
	return &metrics{
		influxLatency: promtext.NewHist(influxLatencyBuckets...),
		// The same bounds serve a request to a central collector: milliseconds nearby, a
		// second or two across a continent, and the 30 s timeout.
		forwardLatency: promtext.NewHist(append(slices.Clone(influxLatencyBuckets), 30)...),
	}
}

// handler serves the counters in the Prometheus text format.
func (m *metrics) handler() http.Handler { return promtext.Handler(m.write) }

const prefix = "fleetwatt_collector_"

func (m *metrics) write(w *promtext.Writer) {
	w.Family(prefix+"build_info", "The collector's version; always 1.", promtext.Gauge)
	w.Sample(prefix+"build_info", 1, "version", version)

	if m.pipeline != nil {
		s := m.pipeline.Stats()
		w.Counter(prefix+"requests_total", "OTLP export requests consumed (authenticated and allowed).", float64(s.Requests))
		w.Counter(prefix+"data_points_received_total", "OTLP data points received.", float64(s.DataPoints))
		// Absent until the first rejection, as client libraries leave a labelled family
		// without children out.
		if other := s.DataPointsRejected - sum(s.RejectedByReason); s.DataPointsRejected > 0 {
			w.Family(prefix+"data_points_rejected_total", "OTLP data points left out by the conversion, by reason.", promtext.Counter)
			for _, r := range slices.Sorted(maps.Keys(s.RejectedByReason)) {
				w.Sample(prefix+"data_points_rejected_total", float64(s.RejectedByReason[r]), "reason", r)
			}
			if other > 0 {
				w.Sample(prefix+"data_points_rejected_total", float64(other), "reason", "other")
			}
		}
		w.Counter(prefix+"points_written_total",
			"InfluxDB points stored: in InfluxDB without a write-ahead log, durable in the log with one.", float64(s.PointsWritten))
		w.Family(prefix+"write_failures_total", "Export requests whose write failed, by kind: retryable (the sender retries) or permanent (refused).", promtext.Counter)
		w.Sample(prefix+"write_failures_total", float64(s.WriteFailures-s.PermanentFailures), "kind", "retryable")
		w.Sample(prefix+"write_failures_total", float64(s.PermanentFailures), "kind", "permanent")
		w.Counter(prefix+"points_refused_total", "Points in permanently failed writes: lost.", float64(s.PointsRefused))
	}
	if m.receiver != nil {
		s := m.receiver.Stats()
		w.Family(prefix+"auth_refusals_total", "Export requests refused by authentication, by reason.", promtext.Counter)
		w.Sample(prefix+"auth_refusals_total", float64(s.Unauthenticated), "reason", "unauthenticated")
		w.Sample(prefix+"auth_refusals_total", float64(s.Forbidden), "reason", "forbidden")
		w.Counter(prefix+"busy_refusals_total", "Export requests answered \"try later\" because the most requests allowed at once were being processed.", float64(s.Busy))
	}
	w.Histogram(prefix+"influx_write_duration_seconds", "Duration of InfluxDB write requests, failed or not, s.", m.influxLatency)

	if m.wal != nil {
		s := m.wal.Stats()
		w.Gauge(prefix+"wal_bytes", "Write-ahead log segment bytes on disk, drained or not.", float64(s.Bytes))
		w.Gauge(prefix+"wal_segments", "Write-ahead log segment files on disk.", float64(s.Segments))
		w.Gauge(prefix+"wal_pending_bytes", "Write-ahead log bytes not yet drained: the backlog.", float64(s.PendingBytes))
		w.Counter(prefix+"wal_appended_records_total", "Records appended to the write-ahead log.", float64(s.AppendedRecords))
		w.Counter(prefix+"wal_appended_bytes_total", "Payload bytes appended to the write-ahead log.", float64(s.AppendedBytes))
		w.Counter(prefix+"wal_syncs_total", "fsyncs of appended data.", float64(s.Syncs))
		w.Counter(prefix+"wal_full_refusals_total", "Appends refused because the log was full (senders told to retry later).", float64(s.FullRefusals))
		w.Counter(prefix+"wal_torn_tails_total", "Torn segment tails truncated at start (a crash during a write).", float64(s.TornTails))
		w.Counter(prefix+"wal_truncated_bytes_total", "Bytes removed by torn-tail truncation.", float64(s.TruncatedBytes))
		w.Counter(prefix+"wal_corrupt_bytes_total", "Bytes skipped while reading because a record failed its CRC.", float64(s.CorruptBytes))
	}
	if m.walWriter != nil {
		s := m.walWriter.Stats()
		w.Counter(prefix+"wal_appended_points_total", "Points made durable in the write-ahead log.", float64(s.AppendedPoints))
		w.Counter(prefix+"wal_non_finite_points_total", "Points dropped because no field was left after removing NaN and ±Inf.", float64(s.NonFinitePoints))
	}
	if m.drainer != nil {
		s := m.drainer.Stats()
		w.Counter(prefix+"drain_written_points_total", "Points the drainer wrote into InfluxDB.", float64(s.WrittenPoints))
		w.Counter(prefix+"drain_write_requests_total", "Write requests the drainer sent, retries and splits included.", float64(s.WriteRequests))
		w.Counter(prefix+"drain_retries_total", "Retryable InfluxDB write failures, each followed by a backoff.", float64(s.Retries))
		w.Counter(prefix+"drain_dead_lettered_points_total", "Points InfluxDB refused for good, written to the dead-letter file.", float64(s.DeadLetteredPoints))
		w.Counter(prefix+"drain_commit_errors_total", "Checkpoint writes that failed (those points are written again).", float64(s.CommitErrors))
	}
	if m.forwardWriter != nil {
		s := m.forwardWriter.Stats()
		w.Counter(prefix+"forward_appended_records_total", "Accepted exports made durable in the write-ahead log, to be forwarded.", float64(s.AppendedRecords))
	}
	if m.forwarder != nil {
		s := m.forwarder.Stats()
		w.Counter(prefix+"forward_requests_total", "Requests sent to the central collector, retries and splits included.", float64(s.Requests))
		w.Counter(prefix+"forward_sent_records_total", "Write-ahead log records (accepted exports) the central collector acknowledged.", float64(s.SentRecords))
		w.Counter(prefix+"forward_sent_bytes_total", "Bytes of those records, before compression.", float64(s.SentBytes))
		w.Counter(prefix+"forward_retries_total", "Failed requests to the central collector (unreachable, 429, 5xx, 401/403), each followed by a backoff.", float64(s.Retries))
		w.Counter(prefix+"forward_dead_lettered_records_total", "Records the central collector refused for good (400, a single resource over 413), in the dead-letter file.", float64(s.DeadLetteredRecords))
		w.Counter(prefix+"forward_rejected_data_points_total", "Data points the central collector left out of requests it took (OTLP partial success).", float64(s.RejectedDataPoints))
		w.Counter(prefix+"forward_commit_errors_total", "Checkpoint writes that failed (those records are sent again).", float64(s.CommitErrors))
		var last float64
		if !s.LastSuccess.IsZero() {
			last = float64(s.LastSuccess.UnixNano()) / 1e9
		}
		w.Gauge(prefix+"forward_last_success_timestamp_seconds", "Unix time the central collector last acknowledged a request; 0 before the first.", last)
		w.Histogram(prefix+"forward_request_duration_seconds", "Duration of requests to the central collector, failed or not, s.", m.forwardLatency)
	}
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
