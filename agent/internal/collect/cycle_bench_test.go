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
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/registry"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
)

// BenchmarkCycle is one agent collection cycle on the 2-socket Intel server: read five RAPL
// zones, the ACPI power meter and /proc/stat, compute the intervals, and build the OTLP
// metric data.
func BenchmarkCycle(b *testing.B) {
	fs := sysfs.New(fixture.Root(b, "intel-xeon-2s"))
	sources, _ := registry.Open(context.Background(), registry.Env{FS: fs})
	now := time.Unix(1_700_000_000, 0)
	c := collect.New(fs, sources, collect.Options{Now: func() time.Time { return now }}, slog.New(slog.DiscardHandler))
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
