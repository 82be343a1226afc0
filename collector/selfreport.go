package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
	"github.com/fleetwatt/fleetwatt/collector/internal/pipeline"
	"github.com/fleetwatt/fleetwatt/internal/promtext"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// selfReport stores the collector's own counters in InfluxDB every interval, as OTLP metrics of
// the service fleetwatt-collector going through the same conversion as everyone's: the /metrics
// exposition, read back, is the one source of the numbers. A failure is logged once per kind
// and never stops the collector. The returned func stops it.
func selfReport(ctx context.Context, m *metrics, store pipeline.Writer, every time.Duration, log *slog.Logger) (stop func()) {
	host, _ := os.Hostname()
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		var lastErr string
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				var w promtext.Writer
				m.write(&w)
				fams, err := promtext.Parse(bytes.NewReader(w.Bytes()))
				if err == nil {
					points, _ := convert.Convert(selfMetrics(fams, host, start, now))
					err = store.Write(ctx, points)
				}
				if err != nil && err.Error() != lastErr && ctx.Err() == nil {
					lastErr = err.Error()
					log.Warn("storing the collector's own counters failed", "error", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// selfMetrics turns an exposition into OTLP: counters become cumulative sums since start,
// gauges gauges, and a histogram its _sum and _count; labels become attributes.
func selfMetrics(fams []promtext.Family, host string, start, now time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(semconv.AttrServiceName, "fleetwatt-collector")
	rm.Resource().Attributes().PutStr(semconv.AttrServiceVersion, version)
	if host != "" {
		rm.Resource().Attributes().PutStr(semconv.AttrHostName, host)
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("github.com/fleetwatt/fleetwatt/collector")
	ts, st := pcommon.NewTimestampFromTime(now), pcommon.NewTimestampFromTime(start)
	for _, f := range fams {
		for _, s := range f.Samples {
			gauge := f.Type == promtext.Gauge
			if !gauge && f.Type != promtext.Counter && !strings.HasSuffix(s.Name, "_sum") && !strings.HasSuffix(s.Name, "_count") {
				continue // a histogram's buckets: its sum and count are enough for a stored trend
			}
			m := sm.Metrics().AppendEmpty()
			m.SetName(s.Name)
			var dps pmetric.NumberDataPointSlice
			if gauge {
				dps = m.SetEmptyGauge().DataPoints()
			} else {
				sum := m.SetEmptySum()
				sum.SetIsMonotonic(true)
				sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				dps = sum.DataPoints()
			}
			dp := dps.AppendEmpty()
			dp.SetStartTimestamp(st)
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(s.Value)
			for k, v := range s.Labels {
				dp.Attributes().PutStr(k, v)
			}
		}
	}
	return md
}
