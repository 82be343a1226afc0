// Package cpufreq reads the current clock of every online CPU from the kernel's cpufreq
// interface, /sys/devices/system/cpu/cpuN/cpufreq/scaling_cur_freq (kHz), and gives it in Hz.
// Set against power, the clock shows whether a host ran its cores at nominal speed, in
// turbo, or throttled, which the reports need to compare the work per joule of ARM and x86
// servers. Hosts without a cpufreq driver (most virtual machines, AWS Graviton instances)
// have no such files: Open then returns an error wrapping sensor.ErrNotFound.
//
// scaling_cur_freq, not cpuinfo_cur_freq: cpuinfo_cur_freq is mode 0400 (root only), asks
// the driver's hardware query, and does not exist at all under intel_pstate, while
// scaling_cur_freq is world-readable everywhere. On x86 the kernel computes it from the
// APERF/MPERF counters over the last tick, so it shows turbo clocks, not the requested
// P-state; on arm64 it comes from the activity monitors or the CPPC feedback counters where
// the CPU has them, else it is the last clock the governor asked for. Either way it is a
// sample of the last few milliseconds, not a mean over the agent's interval.
package cpufreq

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"syscall"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
)

// Freq is the clock of one logical CPU.
type Freq struct {
	// CPU is the kernel's number of the CPU, N in cpuN.
	CPU int
	// Hz is the current clock in Hz.
	Hz float64
}

// Reader reads the clock of the CPUs that were online when it was opened. It keeps their
// files open and its buffers between readings (Close closes them), so one Reader must not be
// used by two goroutines at once.
type Reader struct {
	cpus  []int        // CPU numbers, ascending
	files []sysfs.Attr // scaling_cur_freq of each CPU in cpus
	buf   [32]byte     // one attribute: at most 20 digits and a newline
	out   []Freq       // the result of the last Read
}

// Open finds the scaling_cur_freq of every online CPU below the root of fs. It returns an
// error wrapping sensor.ErrNotFound, with the reason, when no CPU has one.
func Open(fsys sysfs.FS) (*Reader, error) {
	dir := fsys.Path("sys", "devices", "system", "cpu")
	cpus, err := sysfs.OnlineCPUs(fsys)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open cpufreq: no %s: %w", dir, sensor.ErrNotFound)
		}
		return nil, fmt.Errorf("open cpufreq: %w", err)
	}
	r := &Reader{}
	for _, cpu := range cpus {
		p := fsys.Path("sys", "devices", "system", "cpu", "cpu"+strconv.Itoa(cpu), "cpufreq", "scaling_cur_freq")
		if _, err := os.Stat(p); err != nil {
			continue // this CPU has no policy: another driver's domain, or none at all
		}
		r.cpus = append(r.cpus, cpu)
		r.files = append(r.files, sysfs.NewAttr(p))
	}
	if len(r.cpus) == 0 {
		// Virtual machines and cloud instances whose hypervisor keeps the clock (AWS
		// Graviton and most x86 guests) register no cpufreq driver.
		return nil, fmt.Errorf("open cpufreq: no cpuN/cpufreq/scaling_cur_freq in %s (no cpufreq driver, as in most virtual machines and on AWS Graviton): %w",
			dir, sensor.ErrNotFound)
	}
	r.out = make([]Freq, 0, len(r.cpus))
	return r, nil
}

// CPUs returns the numbers of the CPUs the reader reads, ascending.
func (r *Reader) CPUs() []int { return slices.Clone(r.cpus) }

// Read reads the clock of every CPU. The slice it returns is reused by the next Read; copy
// it to keep it. A CPU that went offline since Open is left out without an error; a file
// that cannot be read or parsed is left out and its error joined into the one returned
// beside the readings of the other CPUs. A driver that cannot tell the clock shows 0,
// which is left out too: it is no clock, and it would drag Mean down.
func (r *Reader) Read() ([]Freq, error) {
	r.out = r.out[:0]
	var errs []error
	for i := range r.files {
		khz, err := r.files[i].ReadUint(r.buf[:])
		if err != nil {
			if !isOffline(err) {
				errs = append(errs, err)
			}
			continue
		}
		if khz == 0 {
			continue
		}
		r.out = append(r.out, Freq{CPU: r.cpus[i], Hz: float64(khz) * 1e3})
	}
	if errs != nil {
		return r.out, fmt.Errorf("read cpufreq: %w", errors.Join(errs...))
	}
	return r.out, nil
}

// Close closes the CPUs' files.
func (r *Reader) Close() error {
	var errs []error
	for i := range r.files {
		errs = append(errs, r.files[i].Close())
	}
	return errors.Join(errs...)
}

// Mean is the mean clock of f in Hz, 0 for no readings. Every CPU weighs the same, so on a
// busy host it is the clock the average core ran at.
func Mean(f []Freq) float64 {
	if len(f) == 0 {
		return 0
	}
	var sum float64
	for _, x := range f {
		sum += x.Hz
	}
	return sum / float64(len(f))
}

// isOffline reports whether err is what reading the attribute of a CPU that went offline
// gives: the file is gone (ENOENT, ENODEV) or its policy is inactive (EBUSY).
func isOffline(err error) bool {
	return sysfs.IsOffline(err) || errors.Is(err, syscall.EBUSY)
}
