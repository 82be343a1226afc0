// Package export turns collection samples into OpenTelemetry metric data and sends them over
// OTLP (gRPC or HTTP/protobuf) with the OpenTelemetry Go SDK's exporters.
//
// The agent builds the SDK's metricdata itself rather than recording through Meter
// instruments: the data then carries the exact instants at which the sensors were read
// (StartTime = the previous reading, Time = this one), every metric of a cycle shares one
// timestamp (so the collector stores them as one point), and the simulator can send data for
// past times through the very same path. Failed exports wait in a bounded queue and are sent
// again, oldest first, when the collector answers; with a Spool they wait on disk instead,
// encoded as OTLP protobuf (otlp.go), and survive a restart of the agent.
package export

import (
	"cmp"
	"maps"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/fleetwatt/fleetwatt/agent/internal/collect"
	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Builder turns samples into ResourceMetrics for one host.
type Builder struct {
	res         *resource.Resource
	scope       instrumentation.Scope
	temporality metricdata.Temporality
}

// NewBuilder returns a Builder for the host described by res. Counters are sent with
// temporality (metricdata.DeltaTemporality or CumulativeTemporality).
func NewBuilder(res *resource.Resource, version string, temporality metricdata.Temporality) *Builder {
	return &Builder{
		res:         res,
		scope:       instrumentation.Scope{Name: semconv.InstrumentationScope, Version: version, SchemaURL: semconv.SchemaURL},
		temporality: temporality,
	}
}

// Build returns the metrics of one sample, or nil when the sample holds nothing.
func (b *Builder) Build(s collect.Sample) *metricdata.ResourceMetrics {
	var metrics []metricdata.Metrics
	if len(s.Power) > 0 {
		// Energy and power of a sensor share one attribute set.
		attrs := make([]attribute.Set, len(s.Power))
		for i := range s.Power {
			attrs[i] = powerAttrs(&s.Power[i], s.Primary)
		}
		metrics = append(metrics, b.energy(s, attrs), power(s, attrs))
	}
	if s.CPU != nil {
		metrics = append(metrics, b.cpuTime(s.CPU), cpuUtilization(s.CPU))
	}
	if s.Freq != nil {
		metrics = append(metrics, frequency(s))
	}
	if len(s.Idle) > 0 {
		metrics = append(metrics, b.idle(s)...)
	}
	if s.Work != nil {
		metrics = append(metrics, b.work(s.Work))
	}
	if len(s.Rejected) > 0 {
		metrics = append(metrics, rejected(s))
	}
	if len(metrics) == 0 {
		return nil
	}
	return &metricdata.ResourceMetrics{
		Resource:     b.res,
		ScopeMetrics: []metricdata.ScopeMetrics{{Scope: b.scope, Metrics: metrics}},
	}
}

func powerAttrs(d *energy.Delta, primary collect.Primary) attribute.Set {
	r := d.Reading
	return attribute.NewSet(
		attribute.Bool(semconv.AttrPrimary, primary.Is(r)),
		attribute.String(semconv.AttrHwID, r.ID),
		attribute.String(semconv.AttrHwName, r.Name),
		attribute.String(semconv.AttrHwType, r.Scope.HwType()),
		attribute.String(semconv.AttrSource, r.Source),
		attribute.String(semconv.AttrScope, string(r.Scope)),
		attribute.String(semconv.AttrMethod, r.Method()),
	)
}

func (b *Builder) energy(s collect.Sample, attrs []attribute.Set) metricdata.Metrics {
	points := make([]metricdata.DataPoint[float64], len(s.Power))
	for i := range s.Power {
		d := &s.Power[i]
		p := metricdata.DataPoint[float64]{Attributes: attrs[i], StartTime: d.Start, Time: d.End, Value: d.Joules}
		if b.temporality == metricdata.CumulativeTemporality {
			p.StartTime, p.Value = d.Since, d.TotalJ
		}
		points[i] = p
	}
	return metricdata.Metrics{
		Name:        semconv.MetricEnergy,
		Description: "Energy consumed by the component, as its sensor measured it",
		Unit:        semconv.UnitJoule,
		Data:        metricdata.Sum[float64]{DataPoints: points, Temporality: b.temporality, IsMonotonic: true},
	}
}

func power(s collect.Sample, attrs []attribute.Set) metricdata.Metrics {
	points := make([]metricdata.DataPoint[float64], len(s.Power))
	for i := range s.Power {
		d := &s.Power[i]
		points[i] = metricdata.DataPoint[float64]{Attributes: attrs[i], StartTime: d.Start, Time: d.End, Value: d.Watts()}
	}
	return metricdata.Metrics{
		Name:        semconv.MetricPower,
		Description: "Average power of the component over the collection interval",
		Unit:        semconv.UnitWatt,
		Data:        metricdata.Gauge[float64]{DataPoints: points},
	}
}

var modeAttrs = func() [7]attribute.KeyValue {
	var kv [7]attribute.KeyValue
	for i, m := range semconv.CPUModes {
		kv[i] = attribute.String(semconv.AttrCPUMode, m)
	}
	return kv
}()

// modeSets are the attribute sets of the host's CPU time, the same every cycle.
var modeSets = func() [7]attribute.Set {
	var sets [7]attribute.Set
	for i, kv := range modeAttrs {
		sets[i] = attribute.NewSet(kv)
	}
	return sets
}()

func (b *Builder) cpuTime(c *collect.CPU) metricdata.Metrics {
	all, perCPU, start := c.All, c.PerCPU, c.Start
	if b.temporality == metricdata.CumulativeTemporality {
		all, perCPU, start = c.AllTotal, c.PerCPUTotal, c.Since
	}
	points := make([]metricdata.DataPoint[float64], 0, 7*(1+len(perCPU)))
	for i, v := range all.Modes() {
		points = append(points, metricdata.DataPoint[float64]{Attributes: modeSets[i], StartTime: start, Time: c.End, Value: v})
	}
	for _, p := range perCPU {
		cpu := attribute.Int(semconv.AttrCPUNumber, p.Number)
		for i, v := range p.Modes() {
			points = append(points, metricdata.DataPoint[float64]{
				Attributes: attribute.NewSet(cpu, modeAttrs[i]),
				StartTime:  start, Time: c.End, Value: v,
			})
		}
	}
	return metricdata.Metrics{
		Name:        semconv.MetricCPUTime,
		Description: "CPU time spent in each mode, all logical CPUs together unless cpu.logical_number is set",
		Unit:        semconv.UnitSecond,
		Data:        metricdata.Sum[float64]{DataPoints: points, Temporality: b.temporality, IsMonotonic: true},
	}
}

func cpuUtilization(c *collect.CPU) metricdata.Metrics {
	points := []metricdata.DataPoint[float64]{{StartTime: c.Start, Time: c.End, Value: c.Utilization()}}
	for _, p := range c.PerCPU {
		u := 0.0
		if total := p.Total(); total > 0 {
			u = p.Busy() / total
		}
		points = append(points, metricdata.DataPoint[float64]{
			Attributes: attribute.NewSet(attribute.Int(semconv.AttrCPUNumber, p.Number)),
			StartTime:  c.Start, Time: c.End, Value: u,
		})
	}
	return metricdata.Metrics{
		Name:        semconv.MetricCPUUtilization,
		Description: "Busy fraction (every mode but idle and iowait) of the logical CPUs over the collection interval",
		Unit:        semconv.UnitRatio,
		Data:        metricdata.Gauge[float64]{DataPoints: points},
	}
}

// rejected reports the readings rejected as implausible. It is always cumulative: it is a
// count since the agent started, and a total survives a lost export.
func rejected(s collect.Sample) metricdata.Metrics {
	keys := slices.SortedFunc(maps.Keys(s.Rejected), func(a, b energy.Rejection) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Reason, b.Reason))
	})
	points := make([]metricdata.DataPoint[float64], 0, len(keys))
	for _, k := range keys {
		points = append(points, metricdata.DataPoint[float64]{
			Attributes: attribute.NewSet(attribute.String(semconv.AttrSource, k.Source), attribute.String(semconv.AttrReason, k.Reason)),
			StartTime:  s.Started, Time: s.At, Value: float64(s.Rejected[k]),
		})
	}
	return metricdata.Metrics{
		Name:        semconv.MetricRejected,
		Description: "Power readings rejected as physically implausible (negative, NaN, error sentinels, above the component's maximum)",
		Unit:        "{reading}",
		Data:        metricdata.Sum[float64]{DataPoints: points, Temporality: metricdata.CumulativeTemporality, IsMonotonic: true},
	}
}

func frequency(s collect.Sample) metricdata.Metrics {
	points := []metricdata.DataPoint[float64]{{Time: s.At, Value: s.Freq.MeanHz}}
	for _, f := range s.Freq.PerCPU {
		points = append(points, metricdata.DataPoint[float64]{
			Attributes: attribute.NewSet(attribute.Int(semconv.AttrCPUNumber, f.CPU)),
			Time:       s.At, Value: f.Hz,
		})
	}
	return metricdata.Metrics{
		Name:        semconv.MetricCPUFrequency,
		Description: "Current CPU frequency, the mean over the logical CPUs unless cpu.logical_number is set",
		Unit:        semconv.UnitHertz,
		Data:        metricdata.Gauge[float64]{DataPoints: points},
	}
}

// idle returns the time and entries per cpuidle state, all CPUs summed.
func (b *Builder) idle(s collect.Sample) []metricdata.Metrics {
	timePts := make([]metricdata.DataPoint[float64], len(s.Idle))
	usagePts := make([]metricdata.DataPoint[float64], len(s.Idle))
	for i, st := range s.Idle {
		attrs := attribute.NewSet(attribute.String(semconv.AttrIdleState, st.State))
		start, t, n := st.Start, st.Time, st.Usage
		if b.temporality == metricdata.CumulativeTemporality {
			start, t, n = st.Since, st.TotalTime, st.TotalUsage
		}
		timePts[i] = metricdata.DataPoint[float64]{Attributes: attrs, StartTime: start, Time: st.End, Value: t.Seconds()}
		usagePts[i] = metricdata.DataPoint[float64]{Attributes: attrs, StartTime: start, Time: st.End, Value: float64(n)}
	}
	return []metricdata.Metrics{
		{
			Name:        semconv.MetricCPUIdleTime,
			Description: "Time the logical CPUs spent in each cpuidle state, all CPUs summed",
			Unit:        semconv.UnitSecond,
			Data:        metricdata.Sum[float64]{DataPoints: timePts, Temporality: b.temporality, IsMonotonic: true},
		},
		{
			Name:        semconv.MetricCPUIdleUsage,
			Description: "Entries into each cpuidle state, all logical CPUs summed",
			Unit:        "{entry}",
			Data:        metricdata.Sum[float64]{DataPoints: usagePts, Temporality: b.temporality, IsMonotonic: true},
		},
	}
}

func (b *Builder) work(w *collect.Work) metricdata.Metrics {
	p := metricdata.DataPoint[float64]{StartTime: w.Start, Time: w.End, Value: w.Ops}
	if b.temporality == metricdata.CumulativeTemporality {
		p.StartTime, p.Value = w.Since, w.TotalOps
	}
	return metricdata.Metrics{
		Name:        semconv.MetricWork,
		Description: "Useful work done: operations (requests, transactions, benchmark ops)",
		Unit:        "{operation}",
		Data: metricdata.Sum[float64]{
			DataPoints: []metricdata.DataPoint[float64]{p}, Temporality: b.temporality, IsMonotonic: true,
		},
	}
}
