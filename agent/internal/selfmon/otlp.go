package selfmon

import (
	"bytes"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fleetwatt/fleetwatt/internal/promtext"
)

// Metrics returns src's counters as OpenTelemetry metric data, to send with the agent's own
// batches: the same exposition /metrics serves, read back, so the two never disagree.
// Counters are cumulative since start, gauges values at now; build_info is left out.
func Metrics(src Sources, start, now time.Time) []metricdata.Metrics {
	var w promtext.Writer
	write(&w, src)
	fams, err := promtext.Parse(bytes.NewReader(w.Bytes()))
	if err != nil { // the writer is ours: a test keeps this from happening
		return nil
	}
	var out []metricdata.Metrics
	for _, f := range fams {
		if f.Type != promtext.Counter && f.Type != promtext.Gauge || strings.HasSuffix(f.Name, "_build_info") {
			continue
		}
		points := make([]metricdata.DataPoint[float64], 0, len(f.Samples))
		for _, s := range f.Samples {
			kvs := make([]attribute.KeyValue, 0, len(s.Labels))
			for k, v := range s.Labels {
				kvs = append(kvs, attribute.String(k, v))
			}
			p := metricdata.DataPoint[float64]{Attributes: attribute.NewSet(kvs...), Time: now, Value: s.Value}
			if f.Type == promtext.Counter {
				p.StartTime = start
			}
			points = append(points, p)
		}
		m := metricdata.Metrics{Name: f.Name, Description: f.Help}
		if f.Type == promtext.Counter {
			m.Data = metricdata.Sum[float64]{DataPoints: points, Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}
		} else {
			m.Data = metricdata.Gauge[float64]{DataPoints: points}
		}
		out = append(out, m)
	}
	return out
}
