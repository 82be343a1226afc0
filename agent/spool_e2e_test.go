package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// TestSpoolThroughOutageAndRestart runs the real agent binary against a copy of the Intel
// fixture whose RAPL counters the test advances, sending to a real OTLP gRPC endpoint. The
// endpoint goes away; the agent keeps collecting into its spool, is stopped with SIGTERM and
// started again on the same spool during the outage; then the endpoint returns. Every joule
// the counters gained must arrive, exactly once: the sum of hw.energy per sensor equals the
// counter's increase, in µJ, and no interval arrives twice.
func TestSpoolThroughOutageAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary for about 15 s")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	bin := buildAgent(t)
	root := fixture.Copy(t, "intel-xeon-2s")
	spoolDir := filepath.Join(t.TempDir(), "spool")
	rapl := newRAPL(t, root, map[string]float64{ // zone directory → W
		"intel-rapl:0": 85, "intel-rapl:0:0": 12, "intel-rapl:1": 230, "intel-rapl:2": 70, "intel-rapl:2:0": 9.5,
	})
	hwID := map[string]string{
		"intel-rapl:0": "package-0", "intel-rapl:0:0": "dram-0", "intel-rapl:1": "psys",
		"intel-rapl:2": "package-1", "intel-rapl:2:0": "dram-1",
	}
	stopAdvancing := rapl.start()
	defer stopAdvancing()

	recv := &otlpReceiver{}
	addr := recv.serve(t, "127.0.0.1:0")
	cfgPath := filepath.Join(t.TempDir(), "agent.yaml")
	cfg := fmt.Sprintf("root: %s\nendpoint: http://%s\ninterval: 200ms\nhost_name: spool-e2e\n"+
		"spool: {dir: %s}\nsources: {disable: [hwmon, acpi, ipmi, redfish, nvml, model]}\nlog: {level: debug}\n",
		root, addr, spoolDir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// The counters stand still until the agent has taken its baseline, shown by its first
	// batch, so every increase falls inside an interval the agent measures.
	a := startAgent(t, bin, cfgPath)
	waitFor(t, "the first batch", func() bool { return recv.count() > 0 })
	rapl.resume()
	time.Sleep(time.Second)

	recv.stop() // the outage begins
	time.Sleep(1500 * time.Millisecond)

	// Restart during the outage: the counters pause so that the new agent's baseline is the
	// old one's last reading.
	rapl.pause()
	a.stop(t)
	if !strings.Contains(a.out.String(), "unsent batches stay in the spool") {
		t.Errorf("the agent did not say it kept its batches in the spool")
	}
	left := spoolFiles(t, spoolDir)
	if left == 0 {
		t.Fatal("nothing in the spool after stopping during the outage")
	}
	b := startAgent(t, bin, cfgPath)
	waitFor(t, "the restarted agent's first spooled batch", func() bool { return spoolFiles(t, spoolDir) > left })
	rapl.resume()
	time.Sleep(1500 * time.Millisecond)

	recv.serve(t, addr) // the collector returns
	time.Sleep(time.Second)
	rapl.pause()
	want := map[string]int64{}
	for zone, inc := range rapl.increases() {
		want[hwID[zone]] = inc
	}
	waitFor(t, "every joule", func() bool { return cmp.Equal(want, recv.energy(t)) })
	b.stop(t)

	if diff := cmp.Diff(want, recv.energy(t)); diff != "" {
		t.Errorf("hw.energy received per sensor, µJ (-counter increase +received):\n%s", diff)
	}
	if n := spoolFiles(t, spoolDir); n != 0 {
		t.Errorf("%d batches left in the spool, want none", n)
	}
	recv.stop()
}

// buildAgent builds this package's binary, as shipped (CGO off).
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fleetwatt-agent")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func spoolFiles(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".batch") {
			n++
		}
	}
	return n
}

// agentProcess is a running agent whose output is kept for the failure message.
type agentProcess struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startAgent(t *testing.T, bin, cfgPath string) *agentProcess {
	t.Helper()
	p := &agentProcess{cmd: exec.Command(bin, "--config", cfgPath), out: &lockedBuffer{}, done: make(chan error, 1)}
	// The test's own OTEL_ and FLEETWATT_ variables must not reach the agent; a short export
	// timeout keeps each failed try during the outage short.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "FLEETWATT_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, "OTEL_EXPORTER_OTLP_TIMEOUT=1000")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start agent: %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done //nolint:errcheck // killed: the error says nothing
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", p.out)
		}
	})
	return p
}

// stop sends SIGTERM and wants a clean exit.
func (p *agentProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("agent exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop within 30 s of SIGTERM")
	}
}

// otlpReceiver is an OTLP gRPC metrics endpoint that keeps every request, across restarts.
type otlpReceiver struct {
	collectormetrics.UnimplementedMetricsServiceServer
	mu   sync.Mutex
	reqs []*collectormetrics.ExportMetricsServiceRequest
	srv  *grpc.Server
	wg   sync.WaitGroup
}

func (r *otlpReceiver) Export(_ context.Context, req *collectormetrics.ExportMetricsServiceRequest) (*collectormetrics.ExportMetricsServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	return &collectormetrics.ExportMetricsServiceResponse{}, nil
}

// serve listens on addr (again, after stop) and returns the address.
func (r *otlpReceiver) serve(t *testing.T, addr string) string {
	t.Helper()
	var l net.Listener
	waitFor(t, "listen on "+addr, func() bool {
		var err error
		l, err = net.Listen("tcp", addr)
		return err == nil
	})
	srv := grpc.NewServer()
	collectormetrics.RegisterMetricsServiceServer(srv, r)
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	r.wg.Go(func() { _ = srv.Serve(l) })
	t.Cleanup(r.stop)
	return l.Addr().String()
}

// stop closes the listener and every connection. It lets a request under way finish first:
// cut off mid-request, the endpoint may keep a batch whose answer never reaches the agent,
// which then (rightly) sends it again, and this test counts duplicates.
func (r *otlpReceiver) stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.GracefulStop()
	}
	r.wg.Wait()
}

func (r *otlpReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// energy sums the hw.energy received per hw.id, in µJ (each point rounded to the counter's
// unit, so the sum is exact), and fails the test on an interval received twice or
// overlapping another.
func (r *otlpReceiver) energy(t *testing.T) map[string]int64 {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	type interval struct {
		start, end uint64
		req        int
	}
	sum := map[string]int64{}
	seen := map[string][]interval{}
	for i, req := range r.reqs {
		for _, rm := range req.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					if m.GetName() != semconv.MetricEnergy {
						continue
					}
					for _, p := range m.GetSum().GetDataPoints() {
						var id string
						for _, kv := range p.GetAttributes() {
							if kv.GetKey() == semconv.AttrHwID {
								id = kv.GetValue().GetStringValue()
							}
						}
						sum[id] += int64(math.Round(p.GetAsDouble() * 1e6))
						seen[id] = append(seen[id], interval{p.GetStartTimeUnixNano(), p.GetTimeUnixNano(), i})
					}
				}
			}
		}
	}
	for id, ivs := range seen {
		sort.Slice(ivs, func(i, j int) bool { return ivs[i].start < ivs[j].start })
		for i := 1; i < len(ivs); i++ {
			if ivs[i].start < ivs[i-1].end {
				t.Fatalf("%s: interval %v received twice or overlapping %v (of %d requests)", id, ivs[i], ivs[i-1], len(r.reqs))
			}
		}
	}
	return sum
}

// raplCounters advances the energy_uj counters of RAPL zones at fixed powers while running.
type raplCounters struct {
	t     *testing.T
	root  string
	watts map[string]float64

	mu      sync.Mutex // held while writing: pause returns only once writes have stopped
	base    map[string]uint64
	now     map[string]uint64
	running bool
	active  time.Duration // time spent running
	last    time.Time
}

func newRAPL(t *testing.T, root string, watts map[string]float64) *raplCounters {
	t.Helper()
	r := &raplCounters{t: t, root: root, watts: watts, base: map[string]uint64{}, now: map[string]uint64{}}
	for zone := range watts {
		b, err := os.ReadFile(filepath.Join(root, "sys/class/powercap", zone, "energy_uj"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatalf("%s energy_uj: %v", zone, err)
		}
		r.base[zone], r.now[zone] = v, v
	}
	return r
}

// start advances the counters every 5 ms while running, until the returned func is called.
func (r *raplCounters) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				r.advance(now)
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

func (r *raplCounters) advance(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return
	}
	r.active += now.Sub(r.last)
	r.last = now
	for zone, w := range r.watts {
		v := r.base[zone] + uint64(w*r.active.Seconds()*1e6)
		if err := fixture.WriteFile(r.root, filepath.Join("sys/class/powercap", zone, "energy_uj"), fmt.Appendf(nil, "%d\n", v)); err != nil {
			r.t.Errorf("advance %s: %v", zone, err)
			return
		}
		r.now[zone] = v
	}
}

func (r *raplCounters) resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running, r.last = true, time.Now()
}

func (r *raplCounters) pause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running = false
}

// increases returns each zone's increase so far, µJ.
func (r *raplCounters) increases() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int64{}
	for zone, v := range r.now {
		out[zone] = int64(v - r.base[zone]) //nolint:gosec // G115: seconds of watts, far below 2^63
	}
	return out
}
