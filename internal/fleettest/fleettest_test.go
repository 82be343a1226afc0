package fleettest_test

import (
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/internal/fleettest"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
)

func TestMain(m *testing.M) { fleettest.Main(m) }

// TestLoad loads two hours of a two-host fleet and finds every reading and rollup in InfluxDB.
func TestLoad(t *testing.T) {
	s := influxtest.Start(t)
	const fleet = `
groups:
  - {region: cn-shenzhen, zone: cn-shenzhen-a, arch: arm64, cpu_model: Ampere Altra Q80-30, hosts: 1,
     sockets: 1, cores: 80, scope: wall, idle_w: 54, peak_w: 140, curve: linear,
     utilization: {mean: 0.40}, ops_per_core_second: 1050}
  - {region: cn-shenzhen, zone: cn-shenzhen-a, arch: amd64, cpu_model: AMD EPYC 7763 64-Core Processor, hosts: 1,
     sockets: 2, cores: 256, scope: wall, idle_w: 102, peak_w: 455, curve: linear,
     utilization: {mean: 0.40}, ops_per_core_second: 1000}
`
	f := fleettest.Load(t, s, fleettest.Options{Backfill: 2 * time.Hour, Interval: 10 * time.Minute, FleetYAML: fleet})
	if !f.From.Before(f.To) {
		t.Fatalf("range %v..%v", f.From, f.To)
	}
	// 2 h at 10 min is 12 intervals per host, one primary power point each.
	got := s.Query(t, `SELECT count(energy_j) FROM power WHERE "primary" = 'true' GROUP BY host`)
	if len(got) != 2 {
		t.Fatalf("power series for %d hosts, want 2: %+v", len(got), got)
	}
	for _, series := range got {
		if n := series.Values[0][1].(float64); n != 12 {
			t.Errorf("host %s: %v power points, want 12", series.Tags["host"], n)
		}
	}
	// The rollups cover the range: 2 or 3 hours touched, per host.
	roll := s.Query(t, `SELECT count(energy_j) FROM host_1h GROUP BY host`)
	if len(roll) != 2 {
		t.Fatalf("rollups for %d hosts, want 2", len(roll))
	}
	for _, series := range roll {
		if n := series.Values[0][1].(float64); n < 2 || n > 3 {
			t.Errorf("host %s: %v hourly rollups, want 2 or 3", series.Tags["host"], n)
		}
	}
}
