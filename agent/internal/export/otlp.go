package export

import (
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

// The spool keeps batches as OTLP ExportMetricsServiceRequest protobuf: the SDK's metricdata
// types cannot be serialized as such, and OTLP is the one encoding every tool (otel-cli,
// the collector's own decoder) can read back. A replayed batch is turned back into metricdata
// and goes through the SDK's exporter like a fresh one, so the wire sees no difference.
//
// Only what the Builder produces is supported: Sum[float64] and Gauge[float64] whose
// attributes are strings, ints, bools and float64s. Anything else is an error, not a silent
// loss: a new metric kind must be added here and to the round-trip test.

// errUnsupported marks data the spool's encoding does not carry.
var errUnsupported = errors.New("unsupported by the spool encoding")

// toOTLP encodes rm as an OTLP export request.
func toOTLP(rm *metricdata.ResourceMetrics) (*collectormetrics.ExportMetricsServiceRequest, error) {
	out := &metricspb.ResourceMetrics{Resource: &resourcepb.Resource{}}
	if rm.Resource != nil {
		attrs, err := keyValuesToOTLP(rm.Resource.Attributes())
		if err != nil {
			return nil, fmt.Errorf("resource: %w", err)
		}
		out.Resource.Attributes = attrs
		out.SchemaUrl = rm.Resource.SchemaURL()
	}
	for _, sm := range rm.ScopeMetrics {
		scopeAttrs, err := keyValuesToOTLP(sm.Scope.Attributes.ToSlice())
		if err != nil {
			return nil, fmt.Errorf("scope %s: %w", sm.Scope.Name, err)
		}
		psm := &metricspb.ScopeMetrics{
			Scope:     &commonpb.InstrumentationScope{Name: sm.Scope.Name, Version: sm.Scope.Version, Attributes: scopeAttrs},
			SchemaUrl: sm.Scope.SchemaURL,
		}
		for _, m := range sm.Metrics {
			pm, err := metricToOTLP(m)
			if err != nil {
				return nil, fmt.Errorf("metric %s: %w", m.Name, err)
			}
			psm.Metrics = append(psm.Metrics, pm)
		}
		out.ScopeMetrics = append(out.ScopeMetrics, psm)
	}
	return &collectormetrics.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{out}}, nil
}

func metricToOTLP(m metricdata.Metrics) (*metricspb.Metric, error) {
	pm := &metricspb.Metric{Name: m.Name, Description: m.Description, Unit: m.Unit}
	switch d := m.Data.(type) {
	case metricdata.Sum[float64]:
		temp, err := temporalityToOTLP(d.Temporality)
		if err != nil {
			return nil, err
		}
		points, err := pointsToOTLP(d.DataPoints)
		if err != nil {
			return nil, err
		}
		pm.Data = &metricspb.Metric_Sum{Sum: &metricspb.Sum{
			DataPoints: points, AggregationTemporality: temp, IsMonotonic: d.IsMonotonic,
		}}
	case metricdata.Gauge[float64]:
		points, err := pointsToOTLP(d.DataPoints)
		if err != nil {
			return nil, err
		}
		pm.Data = &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: points}}
	default:
		return nil, fmt.Errorf("data %T: %w", m.Data, errUnsupported)
	}
	return pm, nil
}

func temporalityToOTLP(t metricdata.Temporality) (metricspb.AggregationTemporality, error) {
	switch t {
	case metricdata.DeltaTemporality:
		return metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA, nil
	case metricdata.CumulativeTemporality:
		return metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE, nil
	default:
		return 0, fmt.Errorf("temporality %v: %w", t, errUnsupported)
	}
}

func pointsToOTLP(points []metricdata.DataPoint[float64]) ([]*metricspb.NumberDataPoint, error) {
	out := make([]*metricspb.NumberDataPoint, len(points))
	for i, p := range points {
		if len(p.Exemplars) > 0 {
			return nil, fmt.Errorf("exemplars: %w", errUnsupported)
		}
		attrs, err := keyValuesToOTLP(p.Attributes.ToSlice())
		if err != nil {
			return nil, err
		}
		out[i] = &metricspb.NumberDataPoint{
			Attributes:        attrs,
			StartTimeUnixNano: unixNano(p.StartTime),
			TimeUnixNano:      unixNano(p.Time),
			Value:             &metricspb.NumberDataPoint_AsDouble{AsDouble: p.Value},
		}
	}
	return out, nil
}

func keyValuesToOTLP(kvs []attribute.KeyValue) ([]*commonpb.KeyValue, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make([]*commonpb.KeyValue, len(kvs))
	for i, kv := range kvs {
		v := &commonpb.AnyValue{}
		switch kv.Value.Type() {
		case attribute.STRING:
			v.Value = &commonpb.AnyValue_StringValue{StringValue: kv.Value.AsString()}
		case attribute.INT64:
			v.Value = &commonpb.AnyValue_IntValue{IntValue: kv.Value.AsInt64()}
		case attribute.BOOL:
			v.Value = &commonpb.AnyValue_BoolValue{BoolValue: kv.Value.AsBool()}
		case attribute.FLOAT64:
			v.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: kv.Value.AsFloat64()}
		default:
			return nil, fmt.Errorf("attribute %s of type %s: %w", kv.Key, kv.Value.Type(), errUnsupported)
		}
		out[i] = &commonpb.KeyValue{Key: string(kv.Key), Value: v}
	}
	return out, nil
}

// unixNano is t in ns since the Unix epoch, 0 for the zero time (an unset StartTime), as the
// SDK's own transform writes it.
func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(max(0, t.UnixNano())) //nolint:gosec // G115: negative clamped to 0
}

// fromUnixNano reverses unixNano: 0 is the zero time, so an unset StartTime stays unset.
func fromUnixNano(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	if ns > math.MaxInt64 {
		ns = math.MaxInt64
	}
	return time.Unix(0, int64(ns))
}

// fromOTLP decodes a request that toOTLP wrote back into the SDK's metric data. It expects
// exactly one ResourceMetrics, as the agent sends one per batch.
func fromOTLP(req *collectormetrics.ExportMetricsServiceRequest) (*metricdata.ResourceMetrics, error) {
	if n := len(req.GetResourceMetrics()); n != 1 {
		return nil, fmt.Errorf("%d resource metrics, want 1", n)
	}
	prm := req.GetResourceMetrics()[0]
	resAttrs, err := keyValuesFromOTLP(prm.GetResource().GetAttributes())
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	rm := &metricdata.ResourceMetrics{Resource: resource.NewWithAttributes(prm.GetSchemaUrl(), resAttrs...)}
	for _, psm := range prm.GetScopeMetrics() {
		scopeAttrs, err := keyValuesFromOTLP(psm.GetScope().GetAttributes())
		if err != nil {
			return nil, fmt.Errorf("scope %s: %w", psm.GetScope().GetName(), err)
		}
		sm := metricdata.ScopeMetrics{Scope: instrumentation.Scope{
			Name: psm.GetScope().GetName(), Version: psm.GetScope().GetVersion(),
			SchemaURL: psm.GetSchemaUrl(), Attributes: attribute.NewSet(scopeAttrs...),
		}}
		for _, pm := range psm.GetMetrics() {
			m, err := metricFromOTLP(pm)
			if err != nil {
				return nil, fmt.Errorf("metric %s: %w", pm.GetName(), err)
			}
			sm.Metrics = append(sm.Metrics, m)
		}
		rm.ScopeMetrics = append(rm.ScopeMetrics, sm)
	}
	return rm, nil
}

func metricFromOTLP(pm *metricspb.Metric) (metricdata.Metrics, error) {
	m := metricdata.Metrics{Name: pm.GetName(), Description: pm.GetDescription(), Unit: pm.GetUnit()}
	switch d := pm.GetData().(type) {
	case *metricspb.Metric_Sum:
		var temp metricdata.Temporality
		switch d.Sum.GetAggregationTemporality() {
		case metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA:
			temp = metricdata.DeltaTemporality
		case metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE:
			temp = metricdata.CumulativeTemporality
		default:
			return m, fmt.Errorf("temporality %v: %w", d.Sum.GetAggregationTemporality(), errUnsupported)
		}
		points, err := pointsFromOTLP(d.Sum.GetDataPoints())
		if err != nil {
			return m, err
		}
		m.Data = metricdata.Sum[float64]{DataPoints: points, Temporality: temp, IsMonotonic: d.Sum.GetIsMonotonic()}
	case *metricspb.Metric_Gauge:
		points, err := pointsFromOTLP(d.Gauge.GetDataPoints())
		if err != nil {
			return m, err
		}
		m.Data = metricdata.Gauge[float64]{DataPoints: points}
	default:
		return m, fmt.Errorf("data %T: %w", pm.GetData(), errUnsupported)
	}
	return m, nil
}

func pointsFromOTLP(points []*metricspb.NumberDataPoint) ([]metricdata.DataPoint[float64], error) {
	out := make([]metricdata.DataPoint[float64], len(points))
	for i, p := range points {
		v, ok := p.GetValue().(*metricspb.NumberDataPoint_AsDouble)
		if !ok {
			return nil, fmt.Errorf("point value %T: %w", p.GetValue(), errUnsupported)
		}
		attrs, err := keyValuesFromOTLP(p.GetAttributes())
		if err != nil {
			return nil, err
		}
		out[i] = metricdata.DataPoint[float64]{
			Attributes: attribute.NewSet(attrs...),
			StartTime:  fromUnixNano(p.GetStartTimeUnixNano()),
			Time:       fromUnixNano(p.GetTimeUnixNano()),
			Value:      v.AsDouble,
		}
	}
	return out, nil
}

func keyValuesFromOTLP(kvs []*commonpb.KeyValue) ([]attribute.KeyValue, error) {
	out := make([]attribute.KeyValue, len(kvs))
	for i, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			out[i] = attribute.String(kv.GetKey(), v.StringValue)
		case *commonpb.AnyValue_IntValue:
			out[i] = attribute.Int64(kv.GetKey(), v.IntValue)
		case *commonpb.AnyValue_BoolValue:
			out[i] = attribute.Bool(kv.GetKey(), v.BoolValue)
		case *commonpb.AnyValue_DoubleValue:
			out[i] = attribute.Float64(kv.GetKey(), v.DoubleValue)
		default:
			return nil, fmt.Errorf("attribute %s of type %T: %w", kv.GetKey(), kv.GetValue().GetValue(), errUnsupported)
		}
	}
	return out, nil
}
