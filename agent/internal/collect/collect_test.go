package collect

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpufreq"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpuidle"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/registry"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// advance adds uj to a zone's energy_uj in the tree at root.
func advance(t *testing.T, root, zone string, uj uint64) {
	t.Helper()
	path := filepath.Join(root, "sys/class/powercap", zone, "energy_uj")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fmt.Appendf(nil, "%d\n", v+uj), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCycleOnIntelServer advances the Intel fixture's counters by known amounts between two
// cycles and expects exactly that energy and CPU time back.
func TestCycleOnIntelServer(t *testing.T) {
	t.Parallel()
	root := fixture.Copy(t, "intel-xeon-2s")
	fs := sysfs.New(root)
	sources, _ := registry.Open(context.Background(), registry.Env{FS: fs})
	if len(sources) != 2 {
		t.Fatalf("sources on the Intel fixture: %v, want rapl and acpi", sources)
	}
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	var logs bytes.Buffer
	c := New(fs, sources, Options{PerCPU: true, Now: clk.now}, slog.New(slog.NewTextHandler(&logs, nil)))

	if s := c.Collect(context.Background()); len(s.Power) != 0 || s.CPU != nil {
		t.Fatalf("first cycle = %+v, want only baselines", s)
	}
	// Ten seconds at 85 W on package-0 and 230 W on psys; the MMIO duplicate moves too, and
	// must not show up.
	advance(t, root, "intel-rapl:0", 850_000_000)
	advance(t, root, "intel-rapl:1", 2_300_000_000)
	advance(t, root, "intel-rapl-mmio:0", 999_000_000)
	stat, err := os.ReadFile(filepath.Join(root, "proc/stat"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "proc/stat"), addTicks(t, stat, 300, 700), 0o644); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(10 * time.Second)
	s := c.Collect(context.Background())

	got := map[string]float64{}
	for _, d := range s.Power {
		got[d.Reading.Key()] = d.Watts()
	}
	want := map[string]float64{
		"rapl/package-0": 85, "rapl/psys": 230, "rapl/package-1": 0, "rapl/dram-0": 0, "rapl/dram-1": 0,
		"acpi/ACPI000D:00": 287, // the ACPI power meter, averaged over its 1 s interval
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v W, want %v", k, got[k], w)
		}
	}
	if s.CPU == nil {
		t.Fatal("no CPU delta on the second cycle")
	}
	// Every CPU got 3 s busy (user) and 7 s idle: 30% busy on 16 CPUs.
	if b, tot := s.CPU.All.Busy(), s.CPU.All.Total(); b != 48 || tot != 160 || s.CPU.Utilization() != 0.3 {
		t.Errorf("busy %v s of %v s, utilization %v; want 48 of 160, 0.3", b, tot, s.CPU.Utilization())
	}
	if len(s.CPU.PerCPU) != 16 || s.CPU.PerCPU[3].Busy() != 3 {
		t.Errorf("per-CPU deltas %+v, want 16 CPUs with 3 s busy", s.CPU.PerCPU)
	}
	if want := (Primary{semconv.ScopePlatform, semconv.SourceACPI}); s.Primary != want {
		t.Errorf("primary %+v, want %+v: the ACPI meter covers more than RAPL's packages", s.Primary, want)
	}
	if c.ReadErrors != 0 || logs.Len() != 0 {
		t.Errorf("read errors %d, logs %q; want none", c.ReadErrors, logs.String())
	}
}

// addTicks adds busy user ticks and idle ticks to every cpuN line and the cpu line of a
// /proc/stat (USER_HZ 100).
func addTicks(t *testing.T, stat []byte, user, idle uint64) []byte {
	t.Helper()
	lines := strings.Split(string(stat), "\n")
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "cpu") && !strings.HasPrefix(l, "cpu ") {
			n++
		}
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "cpu") {
			continue
		}
		f := strings.Fields(l)
		k := uint64(1)
		if f[0] == "cpu" {
			k = uint64(n)
		}
		u, _ := strconv.ParseUint(f[1], 10, 64)
		id, _ := strconv.ParseUint(f[4], 10, 64)
		f[1], f[4] = strconv.FormatUint(u+k*user, 10), strconv.FormatUint(id+k*idle, 10)
		lines[i] = strings.Join(f, " ")
	}
	return []byte(strings.Join(lines, "\n"))
}

// TestFailingSourceReportedOnce: an unreadable counter is logged when it starts failing and
// not again every cycle.
func TestFailingSourceReportedOnce(t *testing.T) {
	t.Parallel()
	root := fixture.Copy(t, "amd-epyc")
	fs := sysfs.New(root)
	sources, _ := registry.Open(context.Background(), registry.Env{FS: fs})
	var logs bytes.Buffer
	c := New(fs, sources, Options{}, slog.New(slog.NewTextHandler(&logs, nil)))
	path := filepath.Join(root, "sys/class/powercap/intel-rapl:0/energy_uj")
	if err := os.WriteFile(path, nil, 0o644); err != nil { // a driver showing an empty attribute
		t.Fatal(err)
	}
	for range 5 {
		c.Collect(context.Background())
	}
	if n := strings.Count(logs.String(), "source read failed"); n != 1 {
		t.Errorf("logged %d failures in 5 cycles, want 1:\n%s", n, logs.String())
	}
	if c.ReadErrors != 5 {
		t.Errorf("ReadErrors = %d, want 5", c.ReadErrors)
	}
	if err := os.WriteFile(path, []byte("123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Collect(context.Background())
	if !strings.Contains(logs.String(), "source recovered") {
		t.Errorf("no recovery logged:\n%s", logs.String())
	}
}

// TestCPUStateOnIntelServer: frequency is the mean of the CPUs' scaling_cur_freq, and idle
// residency the exact increase of the cpuidle counters, summed over the CPUs.
func TestCPUStateOnIntelServer(t *testing.T) {
	t.Parallel()
	root := fixture.Copy(t, "intel-xeon-2s")
	fs := sysfs.New(root)
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
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	c := New(fs, nil, Options{Now: clk.now, Freq: freq, Idle: idle}, slog.New(slog.DiscardHandler))
	c.Collect(context.Background())
	// Each of the 16 CPUs spends 2.5 ms more in C6 over 3 entries.
	for cpu := range 16 {
		dir := filepath.Join(root, "sys/devices/system/cpu", fmt.Sprintf("cpu%d", cpu), "cpuidle/state3")
		for file, add := range map[string]uint64{"time": 2500, "usage": 3} {
			b, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, file), fmt.Appendf(nil, "%d\n", v+add), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	clk.t = clk.t.Add(10 * time.Second)
	s := c.Collect(context.Background())
	if s.Freq == nil || math.Abs(s.Freq.MeanHz-2.2874994375e9) > 1 { // the mean of the 16 scaling_cur_freq files
		t.Errorf("frequency %+v, want a mean of 2.2874994375 GHz", s.Freq)
	}
	got := map[string]Idle{}
	for _, st := range s.Idle {
		got[st.State] = st
	}
	if c6 := got["C6"]; c6.Time != 40*time.Millisecond || c6.Usage != 48 || c6.TotalTime != 40*time.Millisecond {
		t.Errorf("C6 %+v, want 40 ms over 48 entries", c6)
	}
	if len(got) != 4 || got["C1"].Time != 0 {
		t.Errorf("idle states %v, want POLL, C1, C1E, C6 with only C6 moving", got)
	}
}
