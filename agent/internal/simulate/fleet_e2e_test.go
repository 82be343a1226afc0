package simulate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/export"
	"github.com/fleetwatt/fleetwatt/agent/internal/simulate"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
)

// fleetSpec is two regions with an x86 and an ARM pool each, linear power curves, realistic
// idle and peak watts, noisy sensors and utilization, and work.
const fleetSpec = `groups:
  - {region: cn-hangzhou, zone: cn-hangzhou-h, arch: amd64, cpu_model: AMD EPYC 7763, hosts: 5, sockets: 2, cores: 256,
     scope: wall, idle_w: 102, peak_w: 455, curve: linear,
     utilization: {mean: 0.40, diurnal_amplitude: 0.20, noise: 0.03}, ops_per_core_second: 1000, sensor_noise: 0.01}
  - {region: cn-hangzhou, zone: cn-hangzhou-h, arch: arm64, cpu_model: Ampere Altra Q80-30, hosts: 5, sockets: 1, cores: 80,
     scope: wall, idle_w: 54, peak_w: 140, curve: linear,
     utilization: {mean: 0.40, diurnal_amplitude: 0.20, noise: 0.03}, ops_per_core_second: 1050, sensor_noise: 0.01}
  - {region: us-west-1, zone: us-west-1a, arch: amd64, cpu_model: Intel Xeon Platinum 8380, hosts: 4, sockets: 2, cores: 160,
     scope: wall, idle_w: 121, peak_w: 620, curve: linear,
     utilization: {mean: 0.32, diurnal_amplitude: 0.20, noise: 0.03}, ops_per_core_second: 1150, sensor_noise: 0.01}
  - {region: us-west-1, zone: us-west-1a, arch: arm64, cpu_model: NVIDIA Grace, hosts: 4, sockets: 2, cores: 144,
     scope: wall, idle_w: 298, peak_w: 619, curve: linear,
     utilization: {mean: 0.32, diurnal_amplitude: 0.20, noise: 0.03}, ops_per_core_second: 1500, sensor_noise: 0.01}
`

// TestFleetAccuracy backfills a day of a simulated fleet with known power curves through the
// real collector into a real InfluxDB, computes the rollups, and checks that the report
// recovers each pool's idle and peak power within 3%, watts per busy CPU within 2% and the
// ARM/x86 ratio within 1% of the truth computed from the simulated hosts; and that the plan's
// yearly kWh saving matches a hand calculation from the report's own pools.
func TestFleetAccuracy(t *testing.T) {
	spec, err := simulate.Load(strings.NewReader(fleetSpec))
	if err != nil {
		t.Fatal(err)
	}
	const seed = 7
	hosts, err := simulate.NewHosts(spec, seed)
	if err != nil {
		t.Fatal(err)
	}
	s := influxtest.Start(t)
	collector, grpcAddr := startCollector(t, s)

	// A day ending at a whole hour plus a bit, so that the report's 23 whole hours are
	// entirely inside the backfill; and in the past (30 to 90 minutes ago), since the
	// collector refuses timestamps more than 10 minutes ahead of its clock.
	now := time.Now().UTC().Add(-time.Hour).Truncate(time.Hour).Add(30 * time.Minute)
	err = simulate.Run(context.Background(), simulate.Options{
		Spec: spec, Seed: seed, Backfill: 24 * time.Hour, Interval: 5 * time.Minute,
		Export: export.Options{Endpoint: "http://" + grpcAddr, Protocol: export.ProtocolGRPC},
		Now:    func() time.Time { return now }, Version: "test",
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	from := now.Add(-23 * time.Hour).Truncate(time.Hour)
	to := now.Truncate(time.Hour)
	influx := []string{"--influx-url", s.URL, "--influx-bucket", s.Bucket()}
	run(t, collector, append([]string{"rollup", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339)}, influx...)...)
	out := run(t, collector, append([]string{
		"report", "--format", "json", "--from", from.Format(time.RFC3339),
		"--to", to.Format(time.RFC3339), "--by", "region,arch,cpu_model,scope",
	}, influx...)...)
	var rep struct {
		Groups []struct {
			Region       string  `json:"region"`
			Arch         string  `json:"arch"`
			Model        string  `json:"cpu_model"`
			Scope        string  `json:"scope"`
			Hosts        int     `json:"hosts"`
			IdleW        float64 `json:"idle_w"`
			PeakW        float64 `json:"peak_w"`
			WPerBusyCore float64 `json:"w_per_busy_core"`
		} `json:"groups"`
		Comparisons []struct {
			Region       string   `json:"region"`
			Scope        string   `json:"scope"`
			AtUtil       *float64 `json:"at_util"`
			WPerBusyCore *struct {
				RelDiff float64 `json:"rel_diff"`
			} `json:"w_per_busy_core"`
		} `json:"comparisons"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("report json: %v\n%s", err, out)
	}
	if len(rep.Groups) != 4 {
		t.Fatalf("report has %d groups, want 4:\n%s", len(rep.Groups), out)
	}

	// The truth per pool: the hosts' true curves, and their energy and busy time integrated
	// over the report's range before any sensor noise.
	type truth struct{ idle, peak, power, busy, n float64 }
	truths := map[string]*truth{}
	for _, h := range hosts {
		key := h.Group.Region + "/" + h.Group.Arch
		tr := truths[key]
		if tr == nil {
			tr = &truth{}
			truths[key] = tr
		}
		in := h.Integrate(from, to)
		secs := to.Sub(from).Seconds()
		tr.idle += h.IdleW
		tr.peak += h.PeakW
		tr.power += in.EnergyJ / secs
		tr.busy += in.BusyCPUSeconds / secs
		tr.n++
	}
	for _, g := range rep.Groups {
		tr := truths[g.Region+"/"+g.Arch]
		if tr == nil || g.Scope != "wall" || g.Hosts != int(tr.n) {
			t.Errorf("group %s/%s %s: scope %s, %d hosts: unexpected", g.Region, g.Arch, g.Model, g.Scope, g.Hosts)
			continue
		}
		within(t, g.Region+" "+g.Model+" idle_w", g.IdleW, tr.idle/tr.n, 0.03)
		within(t, g.Region+" "+g.Model+" peak_w", g.PeakW, tr.peak/tr.n, 0.03)
		within(t, g.Region+" "+g.Model+" w_per_busy_core", g.WPerBusyCore, tr.power/tr.busy, 0.02)
	}
	if len(rep.Comparisons) != 2 {
		t.Fatalf("%d comparisons, want one per region", len(rep.Comparisons))
	}
	for _, c := range rep.Comparisons {
		if c.Scope != "wall" || c.AtUtil == nil || c.WPerBusyCore == nil {
			t.Errorf("comparison %s: %+v", c.Region, c)
			continue
		}
		// The truth at the utilization the report matched: each host's true linear curve.
		u := *c.AtUtil
		atU := func(arch string) float64 {
			var p, busy float64
			for _, h := range hosts {
				if h.Group.Region == c.Region && h.Group.Arch == arch {
					p += h.PowerW(u)
					busy += u * float64(h.Group.Cores)
				}
			}
			return p / busy
		}
		want := atU("arm64") / atU("amd64")
		within(t, c.Region+" ARM/x86 W per busy CPU", 1+c.WPerBusyCore.RelDiff, want, 0.01)
	}

	// The plan: half of Hangzhou's EPYC load to the Altra pool at 60%.
	out = run(t, collector, append([]string{
		"plan", "--region", "cn-hangzhou", "--from", "amd64", "--to", "arm64",
		"--share", "0.5", "--target-util", "0.6", "--format", "json",
		"--from-time", from.Format(time.RFC3339), "--to-time", to.Format(time.RFC3339),
	}, influx...)...)
	var p struct {
		From, To struct {
			Hosts        int     `json:"hosts"`
			CoresPerHost float64 `json:"cores_per_host"`
			AvgUtil      float64 `json:"avg_util"`
			IdleW        float64 `json:"idle_w"`
			PeakW        float64 `json:"peak_w"`
		}
		HostsRemoved int     `json:"hosts_removed"`
		HostsAdded   int     `json:"hosts_added"`
		KWhPerYear   float64 `json:"kwh_per_year_saved"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("plan json: %v\n%s", err, out)
	}
	// By hand: round(0.5 × 5) = 3 EPYC hosts go with their busy CPUs; Altras at 60% take them.
	removed := 3
	busy := float64(removed) * p.From.CoresPerHost * p.From.AvgUtil
	added := int(math.Ceil(busy/(p.To.CoresPerHost*0.6) - 1e-9))
	uTo := busy / (float64(added) * p.To.CoresPerHost)
	before := float64(removed) * (p.From.IdleW + (p.From.PeakW-p.From.IdleW)*p.From.AvgUtil)
	after := float64(added) * (p.To.IdleW + (p.To.PeakW-p.To.IdleW)*uTo)
	kwh := (before - after) / 1000 * 8766
	if p.HostsRemoved != removed || p.HostsAdded != added {
		t.Errorf("plan: %d hosts removed, %d added; by hand %d and %d", p.HostsRemoved, p.HostsAdded, removed, added)
	}
	within(t, "plan kWh per year saved", p.KWhPerYear, kwh, 1e-6)
}

func within(t *testing.T, what string, got, want, rel float64) {
	t.Helper()
	if math.Abs(got-want) > rel*math.Abs(want) {
		t.Errorf("%s = %.4f, want %.4f ± %g%%", what, got, want, rel*100)
	} else {
		t.Logf("%s = %.4f (truth %.4f, %+.3f%%)", what, got, want, 100*(got/want-1))
	}
}

// startCollector builds fleetwatt-collector, starts it against s and waits until it is ready.
func startCollector(t *testing.T, s *influxtest.Server) (bin, grpcAddr string) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), "fleetwatt-collector")
	build := exec.Command("go", "build", "-o", bin, "github.com/fleetwatt/fleetwatt/collector")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build collector: %v\n%s", err, out)
	}
	grpcAddr, httpAddr, listen := freeAddr(t), freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "--influx-url", s.URL, "--influx-bucket", s.Bucket(),
		"--otlp-grpc", grpcAddr, "--otlp-http", httpAddr, "--listen", listen, "--rollup-every", "0")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("collector log:\n%s", logs.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + listen + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return bin, grpcAddr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not ready:\n%s", logs.String())
		}
	}
}

func run(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
