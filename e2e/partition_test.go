package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/internal/fleettest"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/promtext"
	"github.com/fleetwatt/fleetwatt/internal/tlstest"
)

// The partition test's timeline, s.
const (
	partitionWarmup = 4 * time.Second  // both regions forwarding before the cut
	partitionCut    = 12 * time.Second // region-a cut off from the centre
	partitionAfter  = 4 * time.Second  // both sending again before the fleets stop
	fleetHosts      = 3                // per region
)

// region is one regional site of the partition test: its namespace, the link to the centre,
// its collector forwarding there and its simulated fleet.
type region struct {
	name, ns   string // cloud.region, network namespace
	link       *link
	client     *http.Client // reaches the regional collector's listener, from inside ns
	collector  *fleettest.Process
	fleet      *fleettest.Process
	sentExport int64 // from the fleet's summary
	skipped    int64
}

// TestPartition runs the multi-region topology in network namespaces of its own: a central
// namespace with InfluxDB and the central collector (with its WAL), and two regions, each
// with a collector forwarding to the centre over a veth pair (TLS, region-bound token,
// through its WAL) and a simulated fleet sending to it. Region-a is cut off from the centre
// for a while and healed; once the fleets stop and the logs drain, InfluxDB must hold every
// point each fleet sent, exactly once, and region-a's collector must show the retries the
// cut cost it (region-b's none).
func TestPartition(t *testing.T) {
	needNetns(t)
	start := time.Now()
	sfx := suffix(t)
	dir := t.TempDir()

	// Topology: region-a (10.231.1.2) — (10.231.1.1) central (10.231.2.1) — (10.231.2.2) region-b.
	central := newNetns(t, "fwc-"+sfx)
	regions := []*region{
		{name: "cn-hangzhou", ns: newNetns(t, "fwa-"+sfx)},
		{name: "cn-beijing", ns: newNetns(t, "fwb-"+sfx)},
	}
	for i, r := range regions {
		n := i + 1
		r.link = newLink(t, central, fmt.Sprintf("fw%d%sc", n, sfx), fmt.Sprintf("10.231.%d.1", n),
			r.ns, fmt.Sprintf("fw%d%sr", n, sfx), fmt.Sprintf("10.231.%d.2", n))
	}

	// The centre: InfluxDB on its loopback, the collector on its veth addresses.
	ca := tlstest.NewCA(t, "fleetwatt-partition")
	centralCert := ca.ServerFor(t, "central", "10.231.1.1", "10.231.2.1", "127.0.0.1")
	centralHTTP := nsClient(central, &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}})
	s := influxtest.StartWith(t, influxtest.Options{
		Host: "127.0.0.1", HTTPPort: 8086, RPCPort: 8088,
		Wrap: []string{"ip", "netns", "exec", central}, HTTP: nsClient(central, nil),
	})
	tokens := map[string]string{} // name → token
	token := func(name string) string {
		tokens[name] = name + "-" + suffix(t) + suffix(t)
		return tokens[name]
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokensFile := func(name string, entries ...[2]string) string { // {token name, region}
		var b strings.Builder
		b.WriteString("tokens:\n")
		for _, e := range entries {
			sum := sha256.Sum256([]byte(tokens[e[0]]))
			fmt.Fprintf(&b, "  - {name: %s, sha256: %s, regions: [%s]}\n", e[0], hex.EncodeToString(sum[:]), e[1])
		}
		return write(name, b.String())
	}
	token("hangzhou-collector")
	token("beijing-collector")
	centralTokens := tokensFile("central-tokens.yaml", [2]string{"hangzhou-collector", "cn-hangzhou"}, [2]string{"beijing-collector", "cn-beijing"})
	collector := fleettest.Binary(t, fleettest.Collector)
	centralProc := startIn(t, central, nil, collector,
		"--influx-url", s.URL, "--influx-bucket", s.Bucket(), "--wal-dir", filepath.Join(dir, "central-wal"),
		"--otlp-grpc", "", "--otlp-http", "0.0.0.0:4318", "--listen", "127.0.0.1:8090", "--rollup-every", "0",
		"--tls-cert", centralCert.CertFile, "--tls-key", centralCert.KeyFile, "--auth-tokens-file", centralTokens)
	waitReady(t, centralHTTP, "https://127.0.0.1:8090", centralProc)

	// The regions: a collector forwarding to the centre, and a fleet.
	short := map[string]string{"cn-hangzhou": "hangzhou", "cn-beijing": "beijing"}
	for i, r := range regions {
		n := i + 1
		agentToken := token(short[r.name] + "-agents")
		agentTokens := tokensFile(short[r.name]+"-tokens.yaml", [2]string{short[r.name] + "-agents", r.name})
		fwdToken := write(short[r.name]+"-forward.token", tokens[short[r.name]+"-collector"]+"\n")
		cfg := write(short[r.name]+".yaml", fmt.Sprintf(`otlp:
  grpc: 127.0.0.1:4317
  http: ""
listen: 127.0.0.1:8090
auth:
  tokens_file: %s
wal:
  dir: %s
forward:
  endpoint: https://10.231.%d.1:4318
  token_file: %s
  tls:
    ca_file: %s
  timeout: 5s
  max_backoff: 2s
`, agentTokens, filepath.Join(dir, short[r.name]+"-wal"), n, fwdToken, ca.CertFile))
		r.collector = startIn(t, r.ns, nil, collector, "--config", cfg)
		r.client = nsClient(r.ns, nil)
		waitReady(t, r.client, "http://127.0.0.1:8090", r.collector)
		fleet := write(short[r.name]+"-fleet.yaml", fmt.Sprintf(`groups:
  - region: %s
    arch: arm64
    cpu_model: Ampere Altra Q80-30
    hosts: %d
    sockets: 1
    cores: 80
    idle_w: 54
    peak_w: 140
    utilization: {mean: 0.4}
`, r.name, fleetHosts))
		r.fleet = startIn(t, r.ns, []string{"OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20" + agentToken},
			fleettest.Binary(t, fleettest.Agent), "simulate", "--fleet", fleet, "--interval", "1s",
			"--endpoint", "http://127.0.0.1:4317", "--seed", strconv.Itoa(n))
	}

	t.Logf("topology up after %s (binaries built, influxd and three collectors ready)", time.Since(start).Round(100*time.Millisecond))
	// Both regions arrive.
	for _, r := range regions {
		waitFor(t, 20*time.Second, r.name+" in InfluxDB", func() bool { return powerCount(t, s, r.name) >= 2*fleetHosts })
	}
	time.Sleep(partitionWarmup)

	// Cut region-a off. Its fleet keeps sending to its collector, which keeps accepting.
	a, b := regions[0], regions[1]
	a.link.set(t, "down")
	cutAt := time.Now()
	before := metric(t, a.client, "http://127.0.0.1:8090", "fleetwatt_collector_forward_retries_total")
	time.Sleep(partitionCut)
	backlog := metric(t, a.client, "http://127.0.0.1:8090", "fleetwatt_collector_wal_pending_bytes")
	retries := metric(t, a.client, "http://127.0.0.1:8090", "fleetwatt_collector_forward_retries_total") - before
	stalled := lastPower(t, s, a.name)
	a.link.set(t, "up")
	t.Logf("region-a cut off for %s: %v retries, %v bytes waiting in its WAL, its last point in InfluxDB %s before the heal",
		time.Since(cutAt).Round(time.Millisecond), retries, backlog, time.Since(stalled).Round(time.Second))
	if retries == 0 || backlog == 0 {
		t.Errorf("during the cut region-a's collector retried %v times with %v bytes in its WAL: the cut did not bite", retries, backlog)
	}
	if stalled.After(cutAt.Add(time.Second)) {
		t.Errorf("region-a's points kept arriving during the cut (last %s, cut at %s)", stalled, cutAt)
	}
	waitFor(t, 30*time.Second, "region-a to catch up", func() bool { return time.Since(lastPower(t, s, a.name)) < 3*time.Second })
	time.Sleep(partitionAfter)

	// Stop the fleets between two ticks, so that no export is in flight: each prints what
	// it sent.
	for _, r := range regions {
		stopBetweenTicks(t, s, r)
	}
	// Every log drains: the regional collectors' into the centre, the centre's into InfluxDB.
	for _, r := range regions {
		waitFor(t, 30*time.Second, r.name+"'s WAL to drain", func() bool {
			m := metrics(t, r.client, "http://127.0.0.1:8090")
			return value(m, "fleetwatt_collector_wal_pending_bytes") == 0 &&
				value(m, "fleetwatt_collector_forward_sent_records_total") == value(m, "fleetwatt_collector_forward_appended_records_total")
		})
	}
	waitFor(t, 30*time.Second, "the central WAL to drain", func() bool {
		return metric(t, centralHTTP, "https://127.0.0.1:8090", "fleetwatt_collector_wal_pending_bytes") == 0
	})

	// Every point each fleet sent is in InfluxDB, once.
	for _, r := range regions {
		m := metrics(t, r.client, "http://127.0.0.1:8090")
		accepted := value(m, "fleetwatt_collector_requests_total")
		appended := value(m, "fleetwatt_collector_forward_appended_records_total")
		sent := value(m, "fleetwatt_collector_forward_sent_records_total")
		if accepted != float64(r.sentExport) || appended != accepted || sent != accepted {
			t.Errorf("%s: the fleet sent %d exports; its collector accepted %v, logged %v, forwarded %v",
				r.name, r.sentExport, accepted, appended, sent)
		}
		if d := value(m, "fleetwatt_collector_forward_dead_lettered_records_total"); d != 0 {
			t.Errorf("%s: %v records dead-lettered", r.name, d)
		}
		stored := checkRegion(t, s, r)
		t.Logf("%s: the fleet sent %d exports (%d hosts, %d skipped ticks); InfluxDB holds %v power points per host; forward requests %v, retries %v",
			r.name, r.sentExport, fleetHosts, r.skipped, stored, value(m, "fleetwatt_collector_forward_requests_total"),
			value(m, "fleetwatt_collector_forward_retries_total"))
	}
	if r := metric(t, b.client, "http://127.0.0.1:8090", "fleetwatt_collector_forward_retries_total"); r != 0 {
		t.Errorf("region-b, never cut off, retried %v times", r)
	}
	for _, p := range append([]*fleettest.Process{centralProc}, a.collector, b.collector) {
		p.Stop(t)
	}
	t.Logf("partition test took %s", time.Since(start).Round(time.Second))
}

// startIn starts bin in the network namespace ns, with env added to this process's, and
// kills it at cleanup (`ip netns exec` execs bin, so the process is bin itself).
func startIn(t *testing.T, ns string, env []string, bin string, args ...string) *fleettest.Process {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return fleettest.StartCmd(t, cmd)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitReady(t *testing.T, c *http.Client, base string, p *fleettest.Process) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not ready within 30s: %v\n%s", err, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func metrics(t *testing.T, c *http.Client, base string) []promtext.Family {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET %s/metrics: %v", base, err)
	}
	defer resp.Body.Close()
	fams, err := promtext.Parse(resp.Body)
	if err != nil {
		t.Fatalf("parse %s/metrics: %v", base, err)
	}
	return fams
}

func value(fams []promtext.Family, name string) float64 {
	f := promtext.Find(fams, name)
	if f == nil {
		return -1
	}
	v, _ := f.Value()
	return v
}

func metric(t *testing.T, c *http.Client, base, name string) float64 {
	t.Helper()
	v := value(metrics(t, c, base), name)
	if v < 0 {
		t.Fatalf("%s/metrics has no %s", base, name)
	}
	return v
}

func powerCount(t *testing.T, s *influxtest.Server, region string) int {
	t.Helper()
	series := s.Query(t, fmt.Sprintf(`SELECT count(energy_j) FROM power WHERE region = '%s'`, region))
	if len(series) == 0 || len(series[0].Values) == 0 {
		return 0
	}
	n, _ := series[0].Values[0][1].(float64)
	return int(n)
}

// lastPower returns the time of a region's latest power point.
func lastPower(t *testing.T, s *influxtest.Server, region string) time.Time {
	t.Helper()
	series := s.Query(t, fmt.Sprintf(`SELECT last(energy_j) FROM power WHERE region = '%s'`, region))
	if len(series) == 0 || len(series[0].Values) == 0 {
		return time.Time{}
	}
	ms, _ := series[0].Values[0][0].(float64)
	return time.UnixMilli(int64(ms))
}

var (
	sentExportsRe  = regexp.MustCompile(`live simulation stopped.* sent_exports=(\d+)`)
	skippedTicksRe = regexp.MustCompile(`live simulation stopped.* skipped_ticks=(\d+)`)
)

// stopBetweenTicks sends the fleet SIGTERM half an interval after a tick, when every export
// of that tick is long acknowledged and the next is not due (a cancelled export might be
// stored without being counted as sent), and reads what it sent from its summary.
func stopBetweenTicks(t *testing.T, s *influxtest.Server, r *region) {
	t.Helper()
	// The fleet's ticks are 1 s apart from its start, and its points carry their tick's time.
	next := lastPower(t, s, r.name).Add(500 * time.Millisecond)
	for next.Before(time.Now().Add(50 * time.Millisecond)) {
		next = next.Add(time.Second)
	}
	time.Sleep(time.Until(next))
	r.fleet.Stop(t)
	out := r.fleet.Output()
	m := sentExportsRe.FindStringSubmatch(out)
	k := skippedTicksRe.FindStringSubmatch(out)
	if m == nil || k == nil {
		t.Fatalf("%s fleet printed no summary:\n%s", r.name, out)
	}
	r.sentExport, _ = strconv.ParseInt(m[1], 10, 64)
	r.skipped, _ = strconv.ParseInt(k[1], 10, 64)
}

// checkRegion checks that InfluxDB holds each of the region's hosts' power and cpu points
// once per export its fleet sent: the counts add up to the exports, no timestamp twice, and
// with no skipped tick every host has the same number. It returns each host's power points.
func checkRegion(t *testing.T, s *influxtest.Server, r *region) map[string]int {
	t.Helper()
	perHost := map[string]int{}
	for _, m := range []string{"power", "cpu"} {
		series := s.Query(t, fmt.Sprintf(`SELECT * FROM %s WHERE region = '%s' GROUP BY host`, m, r.name))
		if len(series) != fleetHosts {
			t.Errorf("%s: %s points of %d hosts, want %d", r.name, m, len(series), fleetHosts)
		}
		sum := 0
		for _, sr := range series {
			host := sr.Tags["host"]
			seen := map[float64]bool{}
			for _, v := range sr.Values {
				ts, _ := v[0].(float64)
				if seen[ts] {
					t.Errorf("%s %s: a point at %v twice", m, host, ts)
				}
				seen[ts] = true
			}
			n := len(sr.Values)
			sum += n
			if r.skipped == 0 && int64(n*fleetHosts) != r.sentExport {
				t.Errorf("%s %s: %d points, want %d (the fleet sent %d exports for %d hosts, skipping no tick)",
					m, host, n, r.sentExport/fleetHosts, r.sentExport, fleetHosts)
			}
			if m == "power" {
				perHost[host] = n
			}
		}
		if int64(sum) != r.sentExport {
			t.Errorf("%s: %d %s points in InfluxDB, the fleet sent %d exports", r.name, sum, m, r.sentExport)
		}
	}
	return perHost
}
