// Package fleettest fills a real InfluxDB with a simulated fleet the way a user would: it
// builds the real fleetwatt-agent and fleetwatt-collector binaries, starts the collector,
// backfills the fleet with `fleetwatt-agent simulate --backfill` over OTLP, and computes the
// hourly rollups with `fleetwatt-collector rollup`. Dashboard, web page and API tests use it
// for data shaped exactly like production's.
//
//	func TestMain(m *testing.M) { fleettest.Main(m) }
//
//	s := influxtest.Start(t)
//	fleet := fleettest.Load(t, s, fleettest.Options{Backfill: 6 * time.Hour})
//	c := fleettest.StartCollector(t, s) // its API and web page over the loaded data
package fleettest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/internal/influxtest"
)

// Binaries the package builds.
const (
	Agent     = "fleetwatt-agent"
	Collector = "fleetwatt-collector"
)

var (
	binDirOnce sync.Once
	binDir     string
	binErr     error
)

// build builds both binaries into a temporary directory, once per test process.
func build() (string, error) {
	binDirOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "fleetwatt-bin-")
		if binErr != nil {
			return
		}
		for name, pkg := range map[string]string{
			Agent:     "github.com/fleetwatt/fleetwatt/agent",
			Collector: "github.com/fleetwatt/fleetwatt/collector",
		} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
				return
			}
		}
	})
	return binDir, binErr
}

// Main runs the package's tests and removes the binaries built for them.
func Main(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// Binary returns the path of a built binary (Agent or Collector), building both on first use.
func Binary(t testing.TB, name string) string {
	t.Helper()
	dir, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// FreeAddr returns a loopback address with a port free at the time of the call.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Process is a started binary; its output is printed when the test fails.
type Process struct {
	Cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

// Output is what the process printed so far, stdout and stderr together.
func (p *Process) Output() string { return p.out.String() }

// Start starts bin with args, killed at the end of the test if still running.
func Start(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	return StartCmd(t, exec.Command(bin, args...))
}

// StartCmd starts cmd (its Env and Dir as set, its output kept), killed at the end of the
// test if still running.
func StartCmd(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, out: &syncBuffer{}, done: make(chan error, 1)}
	p.Cmd.Stdout, p.Cmd.Stderr = p.out, p.out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", strings.Join(cmd.Args, " "), err)
	}
	go func() { p.done <- p.Cmd.Wait() }()
	t.Cleanup(func() {
		if p.Cmd.ProcessState == nil {
			_ = p.Cmd.Process.Kill()
			<-p.done //nolint:errcheck // a killed process exits with an error that says nothing
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", strings.Join(cmd.Args, " "), p.out)
		}
	})
	return p
}

// Stop sends SIGTERM and waits up to 30 s for a clean exit.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("%s exited with %v\n%s", filepath.Base(p.Cmd.Path), err, p.out)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30 s of SIGTERM", filepath.Base(p.Cmd.Path))
	}
}

// Wait waits up to timeout for the process to exit by itself and fails the test unless it
// exits with status 0.
func (p *Process) Wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(p.Cmd.Args, " "), err, p.out)
		}
	case <-time.After(timeout):
		t.Fatalf("%s did not finish within %s\n%s", strings.Join(p.Cmd.Args, " "), timeout, p.out)
	}
}

// CollectorProcess is a running fleetwatt-collector.
type CollectorProcess struct {
	*Process
	// GRPC and HTTP are the OTLP receivers' addresses; Listen is the API's, "127.0.0.1:PORT".
	GRPC, HTTP, Listen string
}

// URL is the base URL of the collector's API and web page.
func (c *CollectorProcess) URL() string { return "http://" + c.Listen }

// StartCollector starts fleetwatt-collector writing into s (no WAL, no periodic rollups, so
// the data is exactly what was sent) with extra flags appended, and waits until it is ready.
func StartCollector(t testing.TB, s *influxtest.Server, extra ...string) *CollectorProcess {
	t.Helper()
	c := &CollectorProcess{GRPC: FreeAddr(t), HTTP: FreeAddr(t), Listen: FreeAddr(t)}
	args := append([]string{
		"--influx-url", s.URL, "--influx-bucket", s.Bucket(),
		"--otlp-grpc", c.GRPC, "--otlp-http", c.HTTP, "--listen", c.Listen, "--rollup-every", "0",
	}, extra...)
	c.Process = Start(t, Binary(t, Collector), args...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(c.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not ready within 30 s: %v\n%s", err, c.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Options say what to load.
type Options struct {
	// Backfill is how far back the fleet's data goes, ending now; 0 means 6 h.
	Backfill time.Duration
	// Interval is the time between a host's readings; 0 means 5 min.
	Interval time.Duration
	// FleetYAML is a fleet spec (docs/simulate.md); "" means the built-in six-region fleet.
	FleetYAML string
	// Seed seeds the simulator; 0 means its default.
	Seed uint64
}

// Fleet is what Load put into InfluxDB.
type Fleet struct {
	// From and To bound the backfilled range.
	From, To time.Time
	// Summary is the simulator's closing report (hosts, exports, points).
	Summary string
}

// Load backfills a simulated fleet into s through a real collector over OTLP, waits until
// the collector has written everything, and computes the hourly rollups of the range.
func Load(t testing.TB, s *influxtest.Server, opts Options) Fleet {
	t.Helper()
	if opts.Backfill <= 0 {
		opts.Backfill = 6 * time.Hour
	}
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Minute
	}
	c := StartCollector(t, s)
	args := []string{
		"simulate", "--backfill", opts.Backfill.String(), "--interval", opts.Interval.String(),
		"--endpoint", "http://" + c.GRPC, "--concurrency", "8",
	}
	if opts.FleetYAML != "" {
		path := filepath.Join(t.TempDir(), "fleet.yaml")
		if err := os.WriteFile(path, []byte(opts.FleetYAML), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--fleet", path)
	}
	if opts.Seed != 0 {
		args = append(args, "--seed", fmt.Sprint(opts.Seed))
	}
	to := time.Now()
	sim := Start(t, Binary(t, Agent), args...)
	sim.Wait(t, 5*time.Minute)
	// The collector acknowledges an export once InfluxDB has it; stopping it flushes the rest.
	c.Stop(t)

	rollup := Start(t, Binary(t, Collector), "rollup", "--influx-url", s.URL, "--influx-bucket", s.Bucket(),
		"--since", (opts.Backfill + time.Hour).String())
	rollup.Wait(t, 5*time.Minute)
	return Fleet{From: to.Add(-opts.Backfill), To: to, Summary: sim.Output()}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
