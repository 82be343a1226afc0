package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
)

// FootprintEnv sets how long BenchmarkAgentFootprint measures each interval ("60s"); the
// default, 20s, is a quick look. `make bench` sets it for a steadier figure.
const FootprintEnv = "FLEETWATT_BENCH_AGENT_TIME"

// BenchmarkAgentFootprint runs the agent binary as `make build` makes it (CGO off, -trimpath,
// -ldflags '-s -w') against a copy of the 2-socket Intel fixture, sending over OTLP/gRPC to a
// real fleetwatt-collector that writes into a real InfluxDB, all on loopback. After a
// warm-up it measures, between two instants, the agent's CPU time (its process CPU clock, in
// ns: /proc/PID/stat counts in 10 ms ticks, too coarse for a few cycles, and is logged as a
// cross-check) and reads its memory from /proc/PID/status and smaps_rollup at the end.
//
// Reported per interval (--interval 1s and the default 10s):
//
//	ms-cpu/cycle  CPU time per collection cycle, everything included: reading, building,
//	              exporting, the once-a-minute self-metrics, the Go runtime's idle work
//	MB-rss        resident memory at the end (VmRSS), MiB
//	MB-peak-rss   the peak (VmHWM), start-up included, MiB
//	MB-anon       the anonymous part (RssAnon: heap, stacks, runtime), MiB
//	MB-file       the file-backed part (RssFile: the binary's own pages), MiB
//	MB-pss        proportional set size (smaps_rollup Pss), MiB
//
// It measures once whatever b.N is; ns/op is left out, as the run's length is set, not
// measured.
func BenchmarkAgentFootprint(b *testing.B) {
	window := 20 * time.Second
	if v := os.Getenv(FootprintEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("%s=%q: want a duration such as 60s", FootprintEnv, v)
		}
		window = d
	}
	influx := influxtest.Start(b)
	dir := b.TempDir()
	agent := buildRelease(b, ".", filepath.Join(dir, "fleetwatt-agent"))
	collector := buildRelease(b, "../collector", filepath.Join(dir, "fleetwatt-collector"))
	grpcAddr := startCollector(b, collector, influx)

	for _, interval := range []time.Duration{time.Second, 10 * time.Second} {
		b.Run("interval="+interval.String(), func(b *testing.B) {
			// Whole cycles, at least two.
			cycles := max(2, int(window/interval))
			fp := measureAgent(b, agent, grpcAddr, interval, cycles)
			// The run's length is set, not measured; the allocations would be the
			// benchmark's own.
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(0, "B/op")
			b.ReportMetric(0, "allocs/op")
			b.ReportMetric(fp.cpuPerCycle.Seconds()*1e3, "ms-cpu/cycle")
			b.ReportMetric(mib(fp.status["VmRSS"]), "MB-rss")
			b.ReportMetric(mib(fp.status["VmHWM"]), "MB-peak-rss")
			b.ReportMetric(mib(fp.status["RssAnon"]), "MB-anon")
			b.ReportMetric(mib(fp.status["RssFile"]), "MB-file")
			b.ReportMetric(mib(fp.pss), "MB-pss")
		})
	}
}

// footprint is what measureAgent found.
type footprint struct {
	cpuPerCycle time.Duration
	status      map[string]int64 // /proc/PID/status memory lines, kB
	pss         int64            // kB
}

func mib(kB int64) float64 { return float64(kB) / 1024 }

// measureAgent starts the agent, lets it warm up, and measures cycles intervals.
func measureAgent(b *testing.B, bin, grpcAddr string, interval time.Duration, cycles int) footprint {
	b.Helper()
	root := fixture.Copy(b, "intel-xeon-2s")
	cmd := exec.Command(bin, "--root", root, "--endpoint", "http://"+grpcAddr,
		"--interval", interval.String(), "--host-name", "bench-footprint")
	for _, kv := range os.Environ() { // the bench's own settings must not reach the agent
		if !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "FLEETWATT_") && !strings.HasPrefix(kv, "GO") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start agent: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("agent exited with %v\n%s", err, out)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			b.Errorf("agent did not stop within 30 s of SIGTERM\n%s", out)
		}
	}()
	pid := cmd.Process.Pid

	// The first batch goes out right after the first tick; the window then starts half an
	// interval after a later tick, so no cycle straddles its ends, and the start-up (init,
	// host detection, the gRPC connection, the first self-metrics) is behind it.
	deadline := time.Now().Add(30*time.Second + interval)
	for !strings.Contains(out.String(), "first batch delivered") {
		if time.Now().After(deadline) {
			b.Fatalf("no batch delivered within %s\n%s", 30*time.Second+interval, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	warmUp := max(2*interval, 3*time.Second)
	time.Sleep(warmUp.Truncate(interval) + interval/2)

	cpu0, ticks0 := processCPU(b, pid), statTicks(b, pid)
	time.Sleep(time.Duration(cycles) * interval)
	cpu1, ticks1 := processCPU(b, pid), statTicks(b, pid)

	fp := footprint{
		cpuPerCycle: (cpu1 - cpu0) / time.Duration(cycles),
		status:      procStatus(b, pid),
		pss:         rollupPss(b, pid),
	}
	b.Logf("%d cycles of %s: %v CPU (process clock), %d ticks of 10 ms in /proc/%d/stat; VmRSS %d kB, VmHWM %d kB, RssAnon %d kB, RssFile %d kB, Pss %d kB",
		cycles, interval, cpu1-cpu0, ticks1-ticks0, pid,
		fp.status["VmRSS"], fp.status["VmHWM"], fp.status["RssAnon"], fp.status["RssFile"], fp.pss)
	if strings.Contains(out.String(), "export failed") {
		b.Errorf("exports failed during the run: the figures include retries\n%s", out)
	}
	return fp
}

// buildRelease builds pkg as `make build` does and returns the binary's path.
func buildRelease(b *testing.B, pkg, bin string) string {
	b.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "grpcnotrace", "-ldflags", "-s -w -X main.version=bench", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// startCollector starts the collector writing into influx and returns its OTLP/gRPC address.
func startCollector(b *testing.B, bin string, influx *influxtest.Server) string {
	b.Helper()
	grpcAddr, httpAddr, listen := freeAddr(b), freeAddr(b), freeAddr(b)
	cmd := exec.Command(bin, "--influx-url", influx.URL, "--influx-bucket", influx.Bucket(),
		"--otlp-grpc", grpcAddr, "--otlp-http", httpAddr, "--listen", listen, "--rollup-every", "0")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start collector: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("collector exited with %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done //nolint:errcheck // killed: the error says nothing
		}
		if b.Failed() {
			b.Logf("collector output:\n%s", out)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return grpcAddr
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("collector not ready within 30 s: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// processCPU reads the CPU time of every thread of process pid, living and exited, from its
// process CPU clock (clock_getcpuclockid(3): clock id ^pid<<3 | CPUCLOCK_SCHED).
func processCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	const cpuClockSched = 2
	clock := int64(^pid)<<3 | cpuClockSched
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, uintptr(clock), uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		b.Fatalf("clock_gettime(CPU clock of %d): %v", pid, errno)
	}
	return time.Duration(ts.Nano())
}

// statTicks reads utime+stime, in clock ticks, from /proc/PID/stat.
func statTicks(b *testing.B, pid int) int64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces; the fields after it are fixed:
	// state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		b.Fatalf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		b.Fatalf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		b.Fatalf("/proc/%d/stat: %v", pid, err)
	}
	return utime + stime
}

// procStatus reads the kB lines of /proc/PID/status ("VmRSS:  18000 kB").
func procStatus(b *testing.B, pid int) map[string]int64 {
	b.Helper()
	return kBLines(b, fmt.Sprintf("/proc/%d/status", pid))
}

// rollupPss reads the Pss of /proc/PID/smaps_rollup, in kB.
func rollupPss(b *testing.B, pid int) int64 {
	b.Helper()
	return kBLines(b, fmt.Sprintf("/proc/%d/smaps_rollup", pid))["Pss"]
}

func kBLines(b *testing.B, path string) map[string]int64 {
	b.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	m := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		f := strings.Fields(rest)
		if !ok || len(f) != 2 || f[1] != "kB" {
			continue
		}
		if v, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			m[name] = v
		}
	}
	return m
}
