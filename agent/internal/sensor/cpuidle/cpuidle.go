// Package cpuidle reads how often and how long each CPU has been in each idle state (C-state)
// from the kernel's generic cpuidle interface,
// /sys/devices/system/cpu/cpuN/cpuidle/stateK/{name,usage,time}. The interface is the same
// on x86 (intel_idle, acpi_idle) and arm64 (acpi_idle with ACPI LPI states, psci_idle on
// device-tree systems), which makes it the one source of idle residency that compares ARM
// and x86 servers: the MSR counters of turbostat and Telegraf exist on x86 only.
//
// usage and time are cumulative since the CPU's cpuidle device was registered (boot, or the
// CPU coming back online or the driver reloading, when they restart at 0): take deltas and
// treat a decrease as a reset. The kernel adds to them when a CPU leaves a state, so a CPU
// sitting in a deep state for the whole interval shows nothing until it wakes.
//
// State names are the driver's: "POLL", "C1", "C1E", "C6" under intel_idle; "POLL", "C1",
// "C2" under acpi_idle on x86 (from ACPI _CST); "LPI-0", "LPI-1" under acpi_idle on arm64
// servers (ACPI _LPI; the desc file holds the firmware's name, such as "WFI"); "WFI" and the
// device tree's names ("cpu-sleep-0") under psci_idle.
package cpuidle

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
)

// State is the use of one idle state by one CPU, or by all CPUs (ByName).
type State struct {
	// Name is the state's name ("C1E", "WFI", "C6", "LPI-1").
	Name string
	// CPU is the kernel's number of the CPU, N in cpuN; −1 for a sum over CPUs.
	CPU int
	// Usage is the number of times the CPU entered the state since boot.
	Usage uint64
	// Time is the time the CPU spent in the state since boot (the time file counts µs).
	Time time.Duration
}

// stateFiles are the counters of one state of one CPU.
type stateFiles struct {
	name        string
	cpu         int
	usage, time sysfs.Attr
}

// Reader reads the idle states that existed when it was opened. It keeps their files open
// and its buffers between readings (Close closes them), so one Reader must not be used by two
// goroutines at once.
type Reader struct {
	driver string
	states []stateFiles // by CPU, then state index
	buf    [32]byte     // one attribute: at most 20 digits and a newline
	out    []State      // the result of the last Read
}

// Open finds the idle states of every online CPU below the root of fs. It returns an
// error wrapping sensor.ErrNotFound, with the reason, when the kernel has no cpuidle
// driver ("none": virtual machines that idle in the hypervisor, idle=poll, cpuidle.off=1)
// or no CPU has a stateK directory.
func Open(fsys sysfs.FS) (*Reader, error) {
	dir := fsys.Path("sys", "devices", "system", "cpu")
	drvPath := fsys.Path("sys", "devices", "system", "cpu", "cpuidle", "current_driver")
	driver, err := sysfs.ReadString(drvPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("open cpuidle: no %s (kernel without CONFIG_CPU_IDLE): %w", drvPath, sensor.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("open cpuidle: %w", err)
	case driver == "" || driver == "none":
		return nil, fmt.Errorf("open cpuidle: %s is %q (no idle driver, as in most virtual machines): %w",
			drvPath, driver, sensor.ErrNotFound)
	}
	cpus, err := sysfs.OnlineCPUs(fsys)
	if err != nil {
		return nil, fmt.Errorf("open cpuidle: %w", err)
	}
	r := &Reader{driver: driver}
	for _, cpu := range cpus {
		cpuDir := fsys.Path("sys", "devices", "system", "cpu", "cpu"+strconv.Itoa(cpu), "cpuidle")
		idx, err := stateIndexes(cpuDir)
		if err != nil {
			continue // no cpuidle device for this CPU
		}
		for _, k := range idx {
			stDir := cpuDir + "/state" + strconv.Itoa(k)
			name, err := sysfs.ReadString(stDir + "/name")
			if err != nil {
				return nil, fmt.Errorf("open cpuidle: %w", err)
			}
			if name == "" {
				name = "state" + strconv.Itoa(k) // keep the series apart rather than drop it
			}
			r.states = append(r.states, stateFiles{
				name: internName(r.states, name), cpu: cpu,
				usage: sysfs.NewAttr(stDir + "/usage"), time: sysfs.NewAttr(stDir + "/time"),
			})
		}
	}
	if len(r.states) == 0 {
		return nil, fmt.Errorf("open cpuidle: driver %s but no cpuN/cpuidle/stateK in %s: %w", driver, dir, sensor.ErrNotFound)
	}
	r.out = make([]State, 0, len(r.states))
	return r, nil
}

// Driver is the name of the cpuidle driver ("intel_idle", "acpi_idle", "psci_idle").
func (r *Reader) Driver() string { return r.driver }

// Read reads usage and time of every state of every CPU, ordered by CPU and then by state
// index. The slice it returns is reused by the next Read; copy it to keep it. A CPU that
// went offline since Open is left out without an error; a state whose files cannot be read
// or parsed is left out and its error joined into the one returned beside the readings of
// the other states.
func (r *Reader) Read() ([]State, error) {
	r.out = r.out[:0]
	var errs []error
	for i := range r.states {
		s := &r.states[i]
		usage, err := s.usage.ReadUint(r.buf[:])
		if err != nil {
			if !sysfs.IsOffline(err) {
				errs = append(errs, err)
			}
			continue
		}
		us, err := s.time.ReadUint(r.buf[:])
		if err == nil && us > math.MaxInt64/uint64(time.Microsecond) {
			err = fmt.Errorf("parse %s: %d µs overflows a duration", s.time.Path(), us)
		}
		if err != nil {
			if !sysfs.IsOffline(err) {
				errs = append(errs, err)
			}
			continue
		}
		r.out = append(r.out, State{Name: s.name, CPU: s.cpu, Usage: usage, Time: time.Duration(us) * time.Microsecond})
	}
	if errs != nil {
		return r.out, fmt.Errorf("read cpuidle: %w", errors.Join(errs...))
	}
	return r.out, nil
}

// Close closes the files of the states.
func (r *Reader) Close() error {
	var errs []error
	for i := range r.states {
		errs = append(errs, r.states[i].usage.Close(), r.states[i].time.Close())
	}
	return errors.Join(errs...)
}

// ByName sums usage and time per state name over all CPUs: the host's figure, with CPU −1,
// in the order the names first appear. Time is then CPU time: divided by the number of CPUs
// and the interval it is the fraction of the host's capacity spent in the state.
func ByName(states []State) []State {
	var out []State
	for _, s := range states {
		i := slices.IndexFunc(out, func(o State) bool { return o.Name == s.Name })
		if i < 0 {
			out = append(out, State{Name: s.Name, CPU: -1})
			i = len(out) - 1
		}
		out[i].Usage += s.Usage
		out[i].Time += s.Time
	}
	return out
}

// internName returns the string of an earlier state with the same name, so that 512 CPUs
// with the same 4 states hold 4 strings, not 2048.
func internName(prev []stateFiles, name string) string {
	for i := len(prev) - 1; i >= 0; i-- {
		if prev[i].name == name {
			return prev[i].name
		}
	}
	return name
}

// stateIndexes lists K of the stateK directories in dir, ascending.
func stateIndexes(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var idx []int
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), "state")
		if !ok {
			continue
		}
		if k, err := strconv.Atoi(n); err == nil && k >= 0 {
			idx = append(idx, k)
		}
	}
	slices.Sort(idx)
	return idx, nil
}
