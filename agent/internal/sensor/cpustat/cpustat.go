// Package cpustat reads the CPU time counters of /proc/stat: seconds spent in each mode since
// boot, for the host as a whole and per logical CPU. The agent turns two readings into CPU
// time and utilization per interval (system.cpu.time, system.cpu.utilization), which the
// reports set against measured energy to compare how much work each joule buys on ARM and x86.
package cpustat

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
)

// userHZ is the unit of the /proc/stat counters in ticks per second. It is USER_HZ, part of
// the kernel ABI and 100 on every Linux architecture whatever CONFIG_HZ is, so it is a
// constant rather than sysconf(_SC_CLK_TCK), which would need cgo or a guess.
const userHZ = 100

// minColumns is the number of counters the oldest kernels show (user nice system idle, Linux
// 2.4); iowait, irq and softirq came with 2.6, steal with 2.6.11, guest with 2.6.24 and
// guest_nice with 2.6.33. Missing columns read as zero.
const minColumns = 4

// maxColumns is the number of counters the parser looks at: the eight modes plus guest and
// guest_nice, which are only checked for syntax. Columns a future kernel appends are ignored.
const maxColumns = 10

// Times are CPU seconds per mode since boot.
type Times struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal float64
}

// Busy is the time in every mode but idle and iowait, in s. Guest time is not added: the
// kernel already counts it in user (and guest_nice in nice).
func (t Times) Busy() float64 {
	return t.User + t.Nice + t.System + t.IRQ + t.SoftIRQ + t.Steal
}

// Total is the time in all modes, in s.
func (t Times) Total() float64 { return t.Busy() + t.Idle + t.IOWait }

// Sub returns t − u per mode, in s: the time spent between reading u and reading t.
func (t Times) Sub(u Times) Times {
	return Times{
		User:    t.User - u.User,
		Nice:    t.Nice - u.Nice,
		System:  t.System - u.System,
		Idle:    t.Idle - u.Idle,
		IOWait:  t.IOWait - u.IOWait,
		IRQ:     t.IRQ - u.IRQ,
		SoftIRQ: t.SoftIRQ - u.SoftIRQ,
		Steal:   t.Steal - u.Steal,
	}
}

// Modes returns the time per mode in s, in the order of semconv.CPUModes: user, nice, system,
// idle, iowait, interrupt, steal. OpenTelemetry has one interrupt mode where the kernel
// splits hard and soft interrupts, so interrupt is IRQ + SoftIRQ.
func (t Times) Modes() [7]float64 {
	return [7]float64{t.User, t.Nice, t.System, t.Idle, t.IOWait, t.IRQ + t.SoftIRQ, t.Steal}
}

// CPU is the time of one logical CPU.
type CPU struct {
	// Number is the kernel's number of the CPU, N in cpuN. Offline CPUs have no line, so
	// numbers can have gaps.
	Number int
	Times
}

// Stat is one reading of /proc/stat.
type Stat struct {
	// All is the sum over all logical CPUs (the "cpu" line).
	All Times
	// CPUs holds one entry per online logical CPU, in the kernel's order.
	CPUs []CPU
}

// Read reads proc/stat below the root of fs.
func Read(fs sysfs.FS) (Stat, error) {
	path := fs.Path("proc", "stat")
	f, err := os.Open(path)
	if err != nil {
		return Stat{}, fmt.Errorf("read cpu times: %w", err)
	}
	defer f.Close()
	s, err := Parse(f)
	if err != nil {
		return Stat{}, fmt.Errorf("read %s: %w", path, err)
	}
	return s, nil
}

// errNoTotal is returned for input whose first line is not the aggregate "cpu" line.
var errNoTotal = errors.New(`no aggregate "cpu" line`)

// Parse parses the text of /proc/stat. It reads the leading cpu lines only and stops at the
// first other line, so the interrupt counts that follow (tens of KiB on large hosts) are
// never scanned.
func Parse(r io.Reader) (Stat, error) {
	// cpu lines are at most ~200 bytes; 4 KiB holds a few of them per read(2).
	br := bufio.NewReaderSize(r, 4096)
	var (
		s     Stat
		total bool // the aggregate line was seen
	)
	// Sized for the host the agent runs on, so a reading of it grows the slice once.
	s.CPUs = make([]CPU, 0, runtime.NumCPU())
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if n == 1 || isCPULine(line) {
				return Stat{}, fmt.Errorf("line %d %q: longer than %d bytes", n, clip(line), br.Size())
			}
			break // a long non-cpu line ends the cpu lines
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return Stat{}, fmt.Errorf("line %d: %w", n, err)
		}
		if len(line) == 0 && err != nil { // EOF
			break
		}
		if !isCPULine(line) {
			if n == 1 {
				return Stat{}, fmt.Errorf("line 1 %q: %w", clip(line), errNoTotal)
			}
			break
		}
		num, t, perr := parseLine(line)
		if perr != nil {
			return Stat{}, fmt.Errorf("line %d %q: %w", n, clip(line), perr)
		}
		switch {
		case n == 1 && num >= 0:
			return Stat{}, fmt.Errorf("line 1 %q: %w", clip(line), errNoTotal)
		case n == 1:
			s.All, total = t, true
		case num < 0:
			return Stat{}, fmt.Errorf("line %d %q: second aggregate cpu line", n, clip(line))
		default:
			s.CPUs = append(s.CPUs, CPU{Number: num, Times: t})
		}
		if err != nil { // EOF after a last line without a newline
			break
		}
	}
	if !total {
		return Stat{}, errNoTotal
	}
	return s, nil
}

// isCPULine reports whether line starts with the word cpu or cpuN.
func isCPULine(line []byte) bool {
	return len(line) >= 4 && string(line[:3]) == "cpu" && (line[3] == ' ' || line[3] == '\t' || isDigit(line[3]))
}

// parseLine parses "cpu[N] user nice system idle [iowait irq softirq [steal [guest [guest_nice]]]]".
// num is −1 for the aggregate line. It works on the bytes of the line so that a reading
// allocates nothing per line.
func parseLine(line []byte) (num int, t Times, err error) {
	i := 3
	num = -1
	if isDigit(line[i]) {
		num = 0
		for ; i < len(line) && isDigit(line[i]); i++ {
			num = num*10 + int(line[i]-'0')
			if num > 1<<20 { // far above any NR_CPUS
				return 0, Times{}, errors.New("cpu number out of range")
			}
		}
	}
	var v [maxColumns]uint64
	cols := 0
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) || line[i] == '\n' {
			break
		}
		if cols == maxColumns {
			break // columns of a newer kernel
		}
		start := i
		var x uint64
		for ; i < len(line) && isDigit(line[i]); i++ {
			d := uint64(line[i] - '0')
			if x > (1<<64-1-d)/10 {
				return 0, Times{}, fmt.Errorf("column %d: value out of range", cols+1)
			}
			x = x*10 + d
		}
		if i == start || (i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '\n') {
			return 0, Times{}, fmt.Errorf("column %d: not a decimal number", cols+1)
		}
		v[cols] = x
		cols++
	}
	if cols < minColumns {
		return 0, Times{}, fmt.Errorf("%d columns, want at least %d", cols, minColumns)
	}
	return num, Times{
		User:    seconds(v[0]),
		Nice:    seconds(v[1]),
		System:  seconds(v[2]),
		Idle:    seconds(v[3]),
		IOWait:  seconds(v[4]),
		IRQ:     seconds(v[5]),
		SoftIRQ: seconds(v[6]),
		Steal:   seconds(v[7]),
	}, nil
}

// seconds converts USER_HZ ticks to s.
func seconds(ticks uint64) float64 { return float64(ticks) / userHZ }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// clip shortens a line for an error message.
func clip(line []byte) string {
	const maxLen = 80
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	if len(line) > maxLen {
		return string(line[:maxLen]) + "…"
	}
	return string(line)
}
