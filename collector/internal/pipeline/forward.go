package pipeline

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
)

// MetricsWriter stores the OTLP metrics of an accepted request rather than their points: a
// regional collector forwarding to a central one (package forward) keeps resources,
// attributes and timestamps as the sender made them, so that the central collector converts
// them into the very points this one would have written. A failure is retryable unless
// receive.IsPermanent or influx.IsRetryable says otherwise.
type MetricsWriter interface {
	WriteMetrics(ctx context.Context, md pmetric.Metrics) error
}

// NewForwarding returns a pipeline that checks and limits requests exactly as NewWithOptions
// does (the sender gets the same partial successes) and stores the accepted OTLP metrics in
// w: the request without the data points the conversion rejected.
func NewForwarding(w MetricsWriter, log *slog.Logger, o Options) *Pipeline {
	p := NewWithOptions(nil, log, o)
	p.mw = w
	return p
}

// accepted returns md without the data points opts.Convert rejects, judged one metric at a
// time and, in a metric with both kinds, one data point at a time, each with its resource
// and scope. It runs only for requests with rejections (the sender's bug or the series
// limit), so the common request is forwarded as it came, untouched. A resource keeps its
// attributes even when the series limit refused its host point (which has no data points of
// its own to reject): the central collector's own limit decides about that series.
func accepted(opts convert.Options, md pmetric.Metrics) pmetric.Metrics {
	if opts.Now == nil {
		// One clock for every probe: a point at the edge of max_future or max_age must be
		// judged as the whole request was.
		now := time.Now()
		opts.Now = func() time.Time { return now }
	}
	out := pmetric.NewMetrics()
	md.CopyTo(out)
	rms := out.ResourceMetrics()
	for i := range rms.Len() {
		rm := rms.At(i)
		sms := rm.ScopeMetrics()
		for j := range sms.Len() {
			sm := sms.At(j)
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				probe, pm := newProbe(rm, sm)
				m.CopyTo(pm)
				_, cs := opts.Convert(probe)
				switch {
				case cs.Rejected == 0:
					return false
				case cs.Rejected >= cs.DataPoints:
					return true
				}
				removeDataPoints(m, func(fill func(pmetric.Metric)) bool {
					probe, pm := newProbe(rm, sm)
					fill(pm)
					_, cs := opts.Convert(probe)
					return cs.Rejected > 0
				})
				return dataPointCount(m) == 0
			})
		}
		sms.RemoveIf(func(sm pmetric.ScopeMetrics) bool { return sm.Metrics().Len() == 0 })
	}
	rms.RemoveIf(func(rm pmetric.ResourceMetrics) bool { return rm.ScopeMetrics().Len() == 0 })
	return out
}

// newProbe returns metrics holding a copy of rm's resource and sm's scope, and the empty
// metric to fill.
func newProbe(rm pmetric.ResourceMetrics, sm pmetric.ScopeMetrics) (pmetric.Metrics, pmetric.Metric) {
	probe := pmetric.NewMetrics()
	prm := probe.ResourceMetrics().AppendEmpty()
	rm.Resource().CopyTo(prm.Resource())
	prm.SetSchemaUrl(rm.SchemaUrl())
	psm := prm.ScopeMetrics().AppendEmpty()
	sm.Scope().CopyTo(psm.Scope())
	psm.SetSchemaUrl(sm.SchemaUrl())
	return probe, psm.Metrics().AppendEmpty()
}

// removeDataPoints removes the data points of m for which drop reports true. drop gets a
// func that makes a metric like m holding only that data point.
func removeDataPoints(m pmetric.Metric, drop func(fill func(dst pmetric.Metric)) bool) {
	head := func(dst pmetric.Metric) {
		dst.SetName(m.Name())
		dst.SetDescription(m.Description())
		dst.SetUnit(m.Unit())
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		m.Gauge().DataPoints().RemoveIf(func(dp pmetric.NumberDataPoint) bool {
			return drop(func(dst pmetric.Metric) {
				head(dst)
				dp.CopyTo(dst.SetEmptyGauge().DataPoints().AppendEmpty())
			})
		})
	case pmetric.MetricTypeSum:
		m.Sum().DataPoints().RemoveIf(func(dp pmetric.NumberDataPoint) bool {
			return drop(func(dst pmetric.Metric) {
				head(dst)
				s := dst.SetEmptySum()
				s.SetAggregationTemporality(m.Sum().AggregationTemporality())
				s.SetIsMonotonic(m.Sum().IsMonotonic())
				dp.CopyTo(s.DataPoints().AppendEmpty())
			})
		})
	case pmetric.MetricTypeHistogram:
		m.Histogram().DataPoints().RemoveIf(func(dp pmetric.HistogramDataPoint) bool {
			return drop(func(dst pmetric.Metric) {
				head(dst)
				h := dst.SetEmptyHistogram()
				h.SetAggregationTemporality(m.Histogram().AggregationTemporality())
				dp.CopyTo(h.DataPoints().AppendEmpty())
			})
		})
	case pmetric.MetricTypeExponentialHistogram:
		m.ExponentialHistogram().DataPoints().RemoveIf(func(dp pmetric.ExponentialHistogramDataPoint) bool {
			return drop(func(dst pmetric.Metric) {
				head(dst)
				h := dst.SetEmptyExponentialHistogram()
				h.SetAggregationTemporality(m.ExponentialHistogram().AggregationTemporality())
				dp.CopyTo(h.DataPoints().AppendEmpty())
			})
		})
	case pmetric.MetricTypeSummary:
		m.Summary().DataPoints().RemoveIf(func(dp pmetric.SummaryDataPoint) bool {
			return drop(func(dst pmetric.Metric) {
				head(dst)
				dp.CopyTo(dst.SetEmptySummary().DataPoints().AppendEmpty())
			})
		})
	}
}

func dataPointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}
