package collect_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/fleetwatt/fleetwatt/agent/internal/collect"
	"github.com/fleetwatt/fleetwatt/agent/internal/export"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpufreq"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpuidle"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/registry"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
)

// BenchmarkCycle is one agent collection cycle on the 2-socket Intel server, as run.go runs
// it: read five RAPL zones, the ACPI power meter, /proc/stat, the frequency of 16 CPUs and
// their 4 idle states each, compute the intervals, and build the OTLP metric data.
func BenchmarkCycle(b *testing.B) {
	fs := sysfs.New(fixture.Root(b, "intel-xeon-2s"))
	sources, _ := registry.Open(context.Background(), registry.Env{FS: fs})
	freq, err := cpufreq.Open(fs)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = freq.Close() })
	idle, err := cpuidle.Open(fs)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = idle.Close() })
	now := time.Unix(1_700_000_000, 0)
	c := collect.New(fs, sources, collect.Options{Freq: freq, Idle: idle, Now: func() time.Time { return now }},
		slog.New(slog.DiscardHandler))
	builder := export.NewBuilder(resource.Empty(), "bench", metricdata.DeltaTemporality)
	ctx := context.Background()
	c.Collect(ctx)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(10 * time.Second)
		if rm := builder.Build(c.Collect(ctx)); rm == nil {
			b.Fatal("empty cycle")
		}
	}
}
