// Package e2e runs fleetwatt as a user would: the real agent binary against a fixture tree of
// a real machine whose energy counters and CPU times the test advances at known rates, the
// real collector binary, and a real InfluxDB; then it checks that what InfluxDB holds equals
// the truth.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/fleettest"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
)

func TestMain(m *testing.M) { fleettest.Main(m) }

// startCollector starts the collector writing into s and waits until it is ready.
func startCollector(t *testing.T, s *influxtest.Server) (grpcAddr, httpAddr string, p *fleettest.Process) {
	t.Helper()
	grpcAddr, httpAddr, listen := fleettest.FreeAddr(t), fleettest.FreeAddr(t), fleettest.FreeAddr(t)
	p = fleettest.Start(t, fleettest.Binary(t, fleettest.Collector),
		"--influx-url", s.URL, "--influx-bucket", s.Bucket(),
		"--otlp-grpc", grpcAddr, "--otlp-http", httpAddr, "--listen", listen)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return grpcAddr, httpAddr, p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not ready within 30s: %v\n%s", err, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// machine advances a fixture tree's RAPL counters and /proc/stat at known rates.
//
// It keeps the history of what it wrote: under load the writer can fall behind the clock for
// a while, and the truth for a point is what the counters said at the instants the agent read
// them, which the history gives exactly; the nominal rates are checked over the whole run.
type machine struct {
	root  string
	watts map[string]float64 // zone directory (below sys/class/powercap) → W
	busy  float64            // busy fraction of every CPU
	cpus  int
	stat  []string // /proc/stat lines after the CPU lines
	base  map[string]uint64
	t0    time.Time

	mu      sync.Mutex
	history []snapshot
}

// snapshot is what the counters held once a write completed. The files of one snapshot are
// renamed into place one after the other between from and to: in that window a reader may
// see the previous snapshot or this one.
type snapshot struct {
	from, to time.Time
	energy   map[string]uint64 // zone → µJ
	ticks    uint64            // all CPUs, all modes, USER_HZ
}

// readSlack is how long after a cycle's timestamp the agent may read a counter: it stamps
// the cycle, then reads its sources one after the other, and on a loaded machine (the whole
// suite on two cores) the operating system may run other work in between.
const readSlack = 50 * time.Millisecond

// counters returns what the counters may have held when the agent read them for a cycle
// stamped t: the last snapshot completed by t, and every one written within readSlack after.
func (m *machine) counters(t time.Time) []snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.history), func(i int) bool { return m.history[i].to.After(t) })
	got := []snapshot{m.history[max(i-1, 0)]}
	for ; i < len(m.history) && !m.history[i].from.After(t.Add(readSlack)); i++ {
		got = append(got, m.history[i])
	}
	return got
}

// increases returns the possible increases of a counter between two instants.
func (m *machine) increases(start, end time.Time, value func(snapshot) uint64) []float64 {
	var out []float64
	for _, a := range m.counters(start) {
		for _, b := range m.counters(end) {
			out = append(out, float64(value(b)-value(a)))
		}
	}
	return out
}

// nearAny reports whether got is within rel of one of wants, and returns the closest.
func nearAny(got float64, wants []float64, rel float64) (bool, float64) {
	best := wants[0]
	for _, w := range wants {
		if math.Abs(got-w) < math.Abs(got-best) {
			best = w
		}
	}
	return near(got, best, rel), best
}

func newMachine(t *testing.T, name string, watts map[string]float64, busy float64) *machine {
	t.Helper()
	m := &machine{root: fixture.Copy(t, name), watts: watts, busy: busy, base: map[string]uint64{}}
	for zone := range watts {
		b, err := os.ReadFile(filepath.Join(m.root, "sys/class/powercap", zone, "energy_uj"))
		if err != nil {
			t.Fatal(err)
		}
		var v uint64
		if _, err := fmt.Sscan(string(b), &v); err != nil {
			t.Fatalf("%s energy_uj: %v", zone, err)
		}
		m.base[zone] = v
	}
	f, err := os.Open(filepath.Join(m.root, "proc/stat"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "cpu "):
		case strings.HasPrefix(line, "cpu"):
			m.cpus++
		default:
			m.stat = append(m.stat, line)
		}
	}
	if m.cpus == 0 {
		t.Fatal("fixture /proc/stat has no cpuN lines")
	}
	return m
}

// write sets every counter to its value at time now.
func (m *machine) write(now time.Time) error {
	elapsed := now.Sub(m.t0).Seconds()
	snap := snapshot{from: time.Now(), energy: make(map[string]uint64, len(m.watts))}
	for zone, w := range m.watts {
		v := m.base[zone] + uint64(w*elapsed*1e6)
		if err := fixture.WriteFile(m.root, filepath.Join("sys/class/powercap", zone, "energy_uj"), fmt.Appendf(nil, "%d\n", v)); err != nil {
			return err
		}
		snap.energy[zone] = v
	}
	// USER_HZ is 100: ticks since boot (1000 s before t0). Each CPU gets a different phase so
	// that rounding to whole ticks averages out over the CPUs instead of adding up.
	ticks := (1000 + elapsed) * 100
	var all [3]uint64
	lines := make([]string, m.cpus)
	for i := range m.cpus {
		phase := float64(i) / float64(m.cpus)
		user := uint64(ticks*m.busy*0.8 + phase)
		system := uint64(ticks*m.busy*0.2 + phase)
		idle := uint64(ticks+phase) - user - system
		all[0], all[1], all[2] = all[0]+user, all[1]+system, all[2]+idle
		lines[i] = fmt.Sprintf("cpu%d %d 0 %d %d 0 0 0 0 0 0\n", i, user, system, idle)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cpu  %d 0 %d %d 0 0 0 0 0 0\n", all[0], all[1], all[2])
	for _, l := range lines {
		b.WriteString(l)
	}
	for _, l := range m.stat {
		b.WriteString(l + "\n")
	}
	if err := fixture.WriteFile(m.root, "proc/stat", []byte(b.String())); err != nil {
		return err
	}
	snap.ticks = all[0] + all[1] + all[2]
	snap.to = time.Now()
	m.mu.Lock()
	m.history = append(m.history, snap)
	m.mu.Unlock()
	return nil
}

// run advances the counters every millisecond until ctx ends.
func (m *machine) run(ctx context.Context, t *testing.T) *sync.WaitGroup {
	m.t0 = time.Now()
	if err := m.write(m.t0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		runtime.LockOSThread()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if err := m.write(now); err != nil {
					t.Errorf("advance counters: %v", err)
					return
				}
			}
		}
	})
	return &wg
}

func near(got, want, rel float64) bool { return math.Abs(got-want) <= rel*math.Abs(want) }
