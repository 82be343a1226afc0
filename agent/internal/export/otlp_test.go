package export

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/fleetwatt/fleetwatt/agent/internal/collect"
	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpufreq"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpustat"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// metricdataEqual compares metric data: attribute sets by their content.
var metricdataEqual = cmp.Comparer(func(a, b attribute.Set) bool { return a.Equals(&b) })

// fullSample has every kind of data the Builder turns into metrics: power, CPU time (all and
// per CPU), idle states, frequency, work and rejected readings.
func fullSample() collect.Sample {
	s := sample()
	t0, t1 := s.CPU.Start, s.CPU.End
	dram := sensor.Reading{ID: "dram-0", Name: "dram", Source: semconv.SourceRAPL, Scope: semconv.ScopeDRAM, Counter: true}
	s.Power = append(s.Power, energy.Delta{Reading: dram, Start: t0, End: t1, Joules: 120.25, TotalJ: 240.5, Since: t0.Add(-10 * time.Second)})
	s.Primary = collect.Primary{Scope: semconv.ScopeCPUPackage, Source: semconv.SourceRAPL}
	s.Started = t0.Add(-10 * time.Second)
	s.CPU.PerCPU = []cpustat.CPU{{Number: 0, Times: cpustat.Times{User: 5, Idle: 5}}, {Number: 3, Times: cpustat.Times{System: 1, Idle: 9}}}
	s.CPU.PerCPUTotal = s.CPU.PerCPU
	s.Freq = &collect.Freq{MeanHz: 2.4e9, PerCPU: []cpufreq.Freq{{CPU: 0, Hz: 2.1e9}, {CPU: 3, Hz: 2.7e9}}}
	s.Idle = []collect.Idle{{State: "C6", Start: t0, End: t1, Time: 7 * time.Second, Usage: 900, TotalTime: 14 * time.Second, TotalUsage: 1800, Since: s.Started}}
	s.Work = &collect.Work{Start: t0, End: t1, Ops: 5000, TotalOps: 10000, Since: s.Started}
	s.Rejected = map[energy.Rejection]uint64{{Source: "hwmon", Reason: "negative"}: 2, {Source: "acpi", Reason: "nan"}: 1}
	return s
}

func fullResource() *resource.Resource {
	return resource.NewWithAttributes(semconv.SchemaURL,
		attribute.String(semconv.AttrHostName, "h1"),
		attribute.Int(semconv.AttrSockets, 2),
		attribute.Bool(semconv.AttrVirtual, false),
		attribute.Float64(semconv.AttrAgentInterval, 10),
	)
}

// TestOTLPRoundTrip: every metric the Builder produces, in both temporalities, comes back
// from the spool's encoding exactly as it went in.
func TestOTLPRoundTrip(t *testing.T) {
	t.Parallel()
	for _, temp := range []metricdata.Temporality{metricdata.DeltaTemporality, metricdata.CumulativeTemporality} {
		t.Run(temp.String(), func(t *testing.T) {
			t.Parallel()
			want := NewBuilder(fullResource(), "v1.2.3", temp).Build(fullSample())
			names := map[string]bool{}
			for _, m := range want.ScopeMetrics[0].Metrics {
				names[m.Name] = true
			}
			for _, n := range []string{
				semconv.MetricEnergy, semconv.MetricPower, semconv.MetricCPUTime, semconv.MetricCPUUtilization,
				semconv.MetricCPUFrequency, semconv.MetricCPUIdleTime, semconv.MetricCPUIdleUsage,
				semconv.MetricWork, semconv.MetricRejected,
			} {
				if !names[n] {
					t.Fatalf("the sample does not exercise %s", n)
				}
			}
			b, err := encodeBatch(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, metricdataEqual); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOTLPRejectsWhatItCannotCarry: data the agent never produces is an error, not a loss.
func TestOTLPRejectsWhatItCannotCarry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rm   *metricdata.ResourceMetrics
	}{
		{"int64 sum", oneMetric(metricdata.Sum[int64]{Temporality: metricdata.DeltaTemporality})},
		{"histogram", oneMetric(metricdata.Histogram[float64]{Temporality: metricdata.DeltaTemporality})},
		{"undefined temporality", oneMetric(metricdata.Sum[float64]{})},
		{"slice attribute", oneMetric(metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{{
			Attributes: attribute.NewSet(attribute.StringSlice("k", []string{"a"})),
		}}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := toOTLP(tc.rm); !errors.Is(err, errUnsupported) {
				t.Errorf("toOTLP = %v, want errUnsupported", err)
			}
		})
	}
}

func oneMetric(d metricdata.Aggregation) *metricdata.ResourceMetrics {
	return &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{{Name: "m", Data: d}}}}}
}

// FuzzDecodeBatch: whatever a spool file holds, decoding returns a batch or an error.
func FuzzDecodeBatch(f *testing.F) {
	b, err := encodeBatch(NewBuilder(fullResource(), "v1", metricdata.DeltaTemporality).Build(fullSample()))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte(spoolMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		rm, err := decodeBatch(b)
		if err == nil {
			if _, err := encodeBatch(rm); err != nil && !errors.Is(err, errUnsupported) {
				t.Errorf("re-encode a decoded batch: %v", err)
			}
		}
	})
}

// TestDecodeBatchDetectsDamage: a flipped bit or a cut anywhere is caught.
func TestDecodeBatchDetectsDamage(t *testing.T) {
	t.Parallel()
	b, err := encodeBatch(NewBuilder(fullResource(), "v1", metricdata.DeltaTemporality).Build(fullSample()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(b) {
		flipped := append([]byte(nil), b...)
		flipped[i] ^= 0x10
		if i >= 4 && i < 8 {
			continue // the point count is informational
		}
		if _, err := decodeBatch(flipped); !errors.Is(err, errCorrupt) {
			t.Fatalf("bit flip at byte %d: err %v, want errCorrupt", i, err)
		}
	}
	if _, err := decodeBatch(b[:len(b)-1]); !errors.Is(err, errCorrupt) {
		t.Errorf("truncated: err %v, want errCorrupt", err)
	}
	// The payload is plain OTLP, readable by any OTLP tool.
	var req collectormetrics.ExportMetricsServiceRequest
	if err := proto.Unmarshal(b[spoolHeader:], &req); err != nil || len(req.GetResourceMetrics()) != 1 {
		t.Errorf("payload as OTLP: %v, %d resource metrics", err, len(req.GetResourceMetrics()))
	}
}
