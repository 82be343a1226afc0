package identity

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// cpuInfo is what /proc/cpuinfo says about the host's processors.
type cpuInfo struct {
	// Logical is the number of "processor" blocks: the online logical CPUs.
	Logical int
	// The first value each key has in any block. Servers have one CPU model, and old arm64
	// kernels print the identity keys once, after the last processor line.
	VendorID, Family, Model, ModelName string // x86
	Implementer, Part                  string // arm64, hex as the kernel prints them ("0x41")
	// Topology holds "physical id" and "core id" per block where x86 kernels print them;
	// arm64 kernels never do.
	Topology []topology
}

// topology places one logical CPU: its physical package and its core within the package.
type topology struct{ Package, Core string }

// maxCPUInfoLine bounds one line of /proc/cpuinfo. x86 flags lines are about 1.5 KiB today;
// the bound leaves room for many more flags and still stops a runaway input.
const maxCPUInfoLine = 64 << 10

// parseCPUInfo parses /proc/cpuinfo of x86 and arm64 kernels: "key<tabs>: value" lines in
// blank-line separated blocks, one block per logical CPU. Lines it does not know are
// skipped, so only a failing reader is an error.
func parseCPUInfo(r io.Reader) (cpuInfo, error) {
	var (
		ci        cpuInfo
		pkg, core string
		inBlock   bool
	)
	flush := func() {
		if inBlock && (pkg != "" || core != "") {
			ci.Topology = append(ci.Topology, topology{Package: pkg, Core: core})
		}
		pkg, core = "", ""
	}
	first := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxCPUInfoLine)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "processor": // lower case: "Processor" is the model line of old arm kernels
			flush()
			inBlock = true
			ci.Logical++
		case "vendor_id":
			first(&ci.VendorID, value)
		case "cpu family":
			first(&ci.Family, value)
		case "model":
			first(&ci.Model, value)
		case "model name":
			first(&ci.ModelName, collapse(value))
		case "CPU implementer":
			first(&ci.Implementer, strings.ToLower(value))
		case "CPU part":
			first(&ci.Part, strings.ToLower(value))
		case "physical id":
			pkg = value
		case "core id":
			core = value
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return cpuInfo{}, fmt.Errorf("parse cpu info: %w", err)
	}
	return ci, nil
}

// collapse turns runs of white space into one space: older Intel model names pad with many
// ("Intel(R) Xeon(R) CPU           E5-2680 0 @ 2.70GHz"), and the name becomes a tag value.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// modelNameHz returns the clock an x86 model name states after "@" ("Intel(R) Xeon(R) Gold
// 6338 CPU @ 2.00GHz" → 2e9), in Hz; 0 when the name states none. Intel prints the base
// clock there; AMD names have no "@" at all.
func modelNameHz(name string) float64 {
	i := strings.LastIndexByte(name, '@')
	if i < 0 {
		return 0
	}
	s := strings.TrimSpace(name[i+1:])
	var unit float64
	switch {
	case strings.HasSuffix(s, "GHz"):
		s, unit = strings.TrimSuffix(s, "GHz"), 1e9
	case strings.HasSuffix(s, "MHz"):
		s, unit = strings.TrimSuffix(s, "MHz"), 1e6
	default:
		return 0
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !(v > 0) || math.IsInf(v*unit, 0) {
		return 0 // not a number, NaN, negative, or too large to be a clock
	}
	return v * unit
}

// maxCPUNumber bounds the CPU numbers of a CPU list, far above any NR_CPUS (8192 today).
const maxCPUNumber = 1 << 20

// countCPUList counts the CPUs of a kernel CPU list ("0,8", "0-1", "0-3,64-67"), the format
// of thread_siblings_list, online and possible.
func countCPUList(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty cpu list")
	}
	n := 0
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil || a > maxCPUNumber {
			return 0, fmt.Errorf("cpu list %q: bad cpu %q", s, lo)
		}
		b := a
		if isRange {
			b, err = strconv.ParseUint(hi, 10, 32)
			if err != nil || b > maxCPUNumber || b < a {
				return 0, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		n += int(b - a + 1)
	}
	return n, nil
}
