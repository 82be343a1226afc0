package export

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fleetwatt/fleetwatt/agent/internal/collect"
	"github.com/fleetwatt/fleetwatt/agent/internal/config"
	"github.com/fleetwatt/fleetwatt/agent/internal/identity"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpufreq"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpuidle"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/registry"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
)

// TestSpoolDefaultHoldsADay keeps config.DefaultSpoolBytes honest: a day of batches of the
// 2-socket Intel fixture at 10 s, as the live agent builds them (its resource, frequency, idle
// states; host totals), fits in the default with at least 50% to spare.
func TestSpoolDefaultHoldsADay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fs := sysfs.New(fixture.Root(t, "intel-xeon-2s"))
	host, err := identity.Detect(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	sources, _ := registry.Open(ctx, registry.Env{FS: fs, Host: host})
	freq, err := cpufreq.Open(fs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = freq.Close() })
	idle, err := cpuidle.Open(fs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idle.Close() })
	now := time.Unix(1_700_000_000, 0)
	c := collect.New(fs, sources, collect.Options{Freq: freq, Idle: idle, Now: func() time.Time { return now }}, discard)
	res := NewResource(host, Place{Region: "cn-hangzhou", Zone: "cn-hangzhou-h", Datacenter: "hz-dc1"}, "v1.2.3", 10*time.Second)
	b := NewBuilder(res, "v1.2.3", metricdata.DeltaTemporality)
	c.Collect(ctx)
	now = now.Add(10 * time.Second)
	enc, err := encodeBatch(b.Build(c.Collect(ctx)))
	if err != nil {
		t.Fatal(err)
	}
	const perDay = 24 * 60 * 60 / 10
	day := perDay * diskSize(int64(len(enc)))
	t.Logf("a batch: %d bytes, %d on disk; a day: %d MiB; default: %d MiB", len(enc), diskSize(int64(len(enc))), day>>20, config.DefaultSpoolBytes>>20)
	if def := int64(config.DefaultSpoolBytes); def < day*3/2 {
		t.Errorf("default spool bound %d bytes holds less than 1.5 days of %d bytes", def, day)
	}
}
