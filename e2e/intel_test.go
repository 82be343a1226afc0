package e2e

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/internal/fleettest"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
)

// TestIntelServerEndToEnd runs the agent against the 2-socket Intel fixture (psys between the
// sockets, an MMIO duplicate of package-0, an ACPI power meter) while the test advances the RAPL counters and
// /proc/stat at known rates, once over OTLP/gRPC and once over OTLP/HTTP, through the real
// collector into a real InfluxDB, and checks the stored watts, joules, utilization and tags
// against the truth within 1%.
func TestIntelServerEndToEnd(t *testing.T) {
	s := influxtest.Start(t)
	grpcAddr, httpAddr, collector := startCollector(t, s)

	// Zone directory → W. intel-rapl:1 is psys (platform), intel-rapl:2 is package-1.
	zones := map[string]string{
		"package-0": "intel-rapl:0", "dram-0": "intel-rapl:0:0", "psys": "intel-rapl:1",
		"package-1": "intel-rapl:2", "dram-1": "intel-rapl:2:0",
	}
	watts := map[string]float64{
		"intel-rapl:0":   85,  // package-0
		"intel-rapl:0:0": 12,  // dram of socket 0
		"intel-rapl:1":   230, // psys
		"intel-rapl:2":   70,  // package-1
		"intel-rapl:2:0": 9.5, // dram of socket 1
	}
	want := map[string]sensorTruth{
		"package-0": {"cpu-package", 85},
		"dram-0":    {"dram", 12},
		"psys":      {"platform", 230},
		"package-1": {"cpu-package", 70},
		"dram-1":    {"dram", 9.5},
		// The ACPI power meter holds a steady 287 W in the fixture; its power is
		// integrated into energy.
		"ACPI000D:00": {"platform", 287},
	}
	const busy = 0.375
	agents := []struct{ host, protocol, endpoint string }{
		{"e2e-intel-grpc", "grpc", "http://" + grpcAddr},
		{"e2e-intel-http", "http/protobuf", "http://" + httpAddr},
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var procs []*fleettest.Process
	var cpus int
	machines := map[string]*machine{}
	for _, a := range agents {
		m := newMachine(t, "intel-xeon-2s", watts, busy)
		machines[a.host] = m
		wg := m.run(ctx, t)
		defer wg.Wait()
		cpus = m.cpus
		procs = append(procs, fleettest.Start(t, fleettest.Binary(t, fleettest.Agent),
			"--root", m.root, "--endpoint", a.endpoint, "--protocol", a.protocol,
			"--interval", "2s", "--region", "cn-hangzhou", "--zone", "cn-hangzhou-h",
			"--host-name", a.host))
	}
	time.Sleep(9 * time.Second) // four full intervals, then a partial one at shutdown
	for _, p := range procs {
		p.Stop(t) // flushes the last, partial interval
	}
	cancel()
	collector.Stop(t) // every acknowledged batch is in InfluxDB by now

	for _, a := range agents {
		t.Run(a.protocol, func(t *testing.T) {
			checkPower(t, s, a.host, want, machines[a.host], zones)
			checkCPU(t, s, a.host, busy, cpus, machines[a.host])
			checkTags(t, s, a.host, map[string]string{
				"host":       a.host,
				"arch":       runtime.GOARCH,
				"cpu_vendor": "GenuineIntel",
				"cpu_model":  "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
				"region":     "cn-hangzhou",
				"zone":       "cn-hangzhou-h",
				"source":     "rapl",
				"scope":      "cpu-package",
				"method":     "measured",
				"sensor":     "package-0",
				"primary":    "false", // the ACPI meter stands for the host
			})
			checkHost(t, s, a.host, 2, cpus)
		})
	}
}

type sensorTruth struct {
	scope string
	watts float64
}

// checkPower compares every stored point with the counters' increase between the instants the
// agent read them (the machine's history), within 1%, and the whole run's average power with
// the nominal rate.
func checkPower(t *testing.T, s *influxtest.Server, host string, want map[string]sensorTruth, m *machine, zones map[string]string) {
	t.Helper()
	series := s.Query(t, `SELECT energy_j, interval_s, power_w FROM power WHERE host = '`+host+`' GROUP BY sensor, scope`)
	got := map[string]bool{}
	for _, ser := range series {
		sensor := ser.Tags["sensor"]
		got[sensor] = true
		truth, ok := want[sensor]
		if !ok {
			t.Errorf("unexpected sensor %q (scope %q) stored", sensor, ser.Tags["scope"])
			continue
		}
		if ser.Tags["scope"] != truth.scope {
			t.Errorf("%s: scope %q, want %q", sensor, ser.Tags["scope"], truth.scope)
		}
		rows := ser.Rows()
		if len(rows) < 4 {
			t.Errorf("%s: %d points, want at least 4", sensor, len(rows))
		}
		var sumJ, sumS float64
		for _, r := range rows {
			j, sec, w := r["energy_j"].(float64), r["interval_s"].(float64), r["power_w"].(float64)
			sumJ, sumS = sumJ+j, sumS+sec
			wants := []float64{truth.watts * sec} // a steady sensor the test does not advance
			if zone, ok := zones[sensor]; ok {
				end := time.UnixMilli(int64(r["time"].(float64)))
				start := end.Add(-time.Duration(sec * float64(time.Second)))
				wants = m.increases(start, end, func(s snapshot) uint64 { return s.energy[zone] })
				for i := range wants {
					wants[i] /= 1e6
				}
			}
			ok, wantJ := nearAny(j, wants, 0.01)
			if !ok {
				t.Errorf("%s at %v: energy_j %.3f J over %.3f s, want %.3f ± 1%%", sensor, r["time"], j, sec, wantJ)
			}
			if !near(w, wantJ/sec, 0.01) {
				t.Errorf("%s at %v: power_w %.3f W, want %.3f ± 1%%", sensor, r["time"], w, wantJ/sec)
			}
		}
		// The run as a whole against the nominal rate: a check of units and scopes (a mW read
		// as W is off a thousandfold), loose because the writer may fall behind the clock at
		// the run's two ends on a loaded machine; the 1% checks above are against what the
		// counters really said.
		if !near(sumJ, truth.watts*sumS, 0.05) {
			t.Errorf("%s: %.2f J over %.3f s stored, want %.2f ± 5%%", sensor, sumJ, sumS, truth.watts*sumS)
		}
	}
	for sensor := range want {
		if !got[sensor] {
			t.Errorf("sensor %s: no points stored", sensor)
		}
	}
}

func checkCPU(t *testing.T, s *influxtest.Server, host string, busy float64, cpus int, m *machine) {
	t.Helper()
	series := s.Query(t, `SELECT busy_s, total_s, interval_s, utilization FROM cpu WHERE host = '`+host+`'`)
	if len(series) != 1 {
		t.Fatalf("cpu: %d series, want 1", len(series))
	}
	rows := series[0].Rows()
	if len(rows) < 4 {
		t.Errorf("cpu: %d points, want at least 4", len(rows))
	}
	var sumTotal, sumSec float64
	for _, r := range rows {
		b, tot, sec, u := r["busy_s"].(float64), r["total_s"].(float64), r["interval_s"].(float64), r["utilization"].(float64)
		if !near(b/tot, busy, 0.01) {
			t.Errorf("cpu at %v: busy_s/total_s = %.4f, want %.4f ± 1%%", r["time"], b/tot, busy)
		}
		if !near(u, busy, 0.01) {
			t.Errorf("cpu at %v: utilization %.4f, want %.4f ± 1%%", r["time"], u, busy)
		}
		end := time.UnixMilli(int64(r["time"].(float64)))
		start := end.Add(-time.Duration(sec * float64(time.Second)))
		wants := m.increases(start, end, func(s snapshot) uint64 { return s.ticks })
		for i := range wants {
			wants[i] /= 100
		}
		if ok, want := nearAny(tot, wants, 0.01); !ok {
			t.Errorf("cpu at %v: total_s %.3f CPU-seconds, want %.3f ± 1%% (what /proc/stat said)", r["time"], tot, want)
		}
		sumTotal, sumSec = sumTotal+tot, sumSec+sec
	}
	if !near(sumTotal/sumSec, float64(cpus), 0.05) {
		t.Errorf("cpu: Σtotal_s/Σinterval_s = %.3f CPUs, want %d ± 5%%", sumTotal/sumSec, cpus)
	}
}

func checkTags(t *testing.T, s *influxtest.Server, host string, want map[string]string) {
	t.Helper()
	series := s.Query(t, `SELECT last(power_w) FROM power WHERE host = '`+host+`' AND sensor = 'package-0' GROUP BY *`)
	if len(series) != 1 {
		t.Fatalf("package-0: %d series, want 1", len(series))
	}
	if diff := cmp.Diff(want, series[0].Tags); diff != "" {
		t.Errorf("tags of package-0 (-want +got):\n%s", diff)
	}
}

func checkHost(t *testing.T, s *influxtest.Server, host string, sockets, cpus int) {
	t.Helper()
	series := s.Query(t, `SELECT last(sockets) AS sockets, last(logical_cpus) AS cpus FROM host WHERE host = '`+host+`'`)
	if len(series) != 1 {
		t.Fatalf("host: %d series, want 1", len(series))
	}
	r := series[0].Rows()[0]
	if r["sockets"] != float64(sockets) || r["cpus"] != float64(cpus) {
		t.Errorf("host: sockets %v logical_cpus %v, want %d and %d", r["sockets"], r["cpus"], sockets, cpus)
	}
}
