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
	"strings"
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

// Reader reads the clock of the CPUs that were online when it was opened. It keeps its
// buffers between readings, so one Reader must not be used by two goroutines at once.
type Reader struct {
	cpus  []int    // CPU numbers, ascending
	paths []string // scaling_cur_freq of each CPU in cpus
	buf   [32]byte // one attribute: at most 20 digits and a newline
	out   []Freq   // the result of the last Read
}

// Open finds the scaling_cur_freq of every online CPU below the root of fs. It returns an
// error wrapping sensor.ErrNotFound, with the reason, when no CPU has one.
func Open(fsys sysfs.FS) (*Reader, error) {
	dir := fsys.Path("sys", "devices", "system", "cpu")
	cpus, err := onlineCPUs(dir)
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
		r.paths = append(r.paths, p)
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
	for i, p := range r.paths {
		khz, err := readUint(p, r.buf[:])
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

// onlineCPUs lists the numbers of the cpuN directories in dir, ascending, leaving out the
// CPUs whose online file says 0. cpu0 often has no online file: it cannot go offline.
func onlineCPUs(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var cpus []int
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), "cpu")
		if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
			continue // cpufreq, cpuidle, online, ...
		}
		cpu, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if s, err := sysfs.ReadString(dir + "/" + e.Name() + "/online"); err == nil && s == "0" {
			continue
		}
		cpus = append(cpus, cpu)
	}
	slices.Sort(cpus)
	return cpus, nil
}

// isOffline reports whether err is what reading the attribute of a CPU that went offline
// gives: the file is gone (ENOENT, ENODEV) or its policy is inactive (EBUSY).
func isOffline(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.EBUSY)
}

// readUint reads the decimal number in the attribute at path into buf and parses it. It
// uses the system calls directly: os.Open allocates a File per call, which on a host with
// 512 CPUs would be thousands of allocations per reading; this allocates only the path's
// C string.
func readUint(path string, buf []byte) (uint64, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var n int
	for {
		n, err = syscall.Read(fd, buf)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return 0, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if n >= len(buf) {
		return 0, fmt.Errorf("parse %s: longer than %d bytes", path, len(buf)-1)
	}
	v, err := parseUint(buf[:n])
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, nil
}

// errSyntax is returned for an attribute that is not one decimal number.
var errSyntax = errors.New("not a decimal number")

// parseUint parses one unsigned decimal number followed by optional white space (the
// newline sysfs ends every attribute with). It works on bytes so a reading allocates
// nothing.
func parseUint(b []byte) (uint64, error) {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return 0, sysfs.ErrEmpty
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errSyntax
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, strconv.ErrRange
		}
		v = v*10 + d
	}
	return v, nil
}
