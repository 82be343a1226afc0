package model

import (
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/fleetwatt/fleetwatt/agent/internal/identity"
)

// profilesCSV is the shipped table of power profiles. Every figure has its source in the same
// row; research/efficiency.md and data/specpower_summary.csv in the project's shared notes
// explain how the SPECpower medians and the CCF coefficients were obtained.
//
//go:embed profiles.csv
var profilesCSV string

// Profile is the power of a host at idle and at full load, as the model uses it.
type Profile struct {
	// Name is the table row, with the scaling applied to this host when there was one
	// ("amd_epyc_7763_1s", "aws_graviton3 × 16 vCPU").
	Name string
	// IdleW and PeakW are the host's power at 0 % and 100 % CPU utilization, in W, already
	// scaled to this host: whole-server wall power (SPECpower) for a bare-metal server, the
	// host's share for a VM.
	IdleW, PeakW float64
	// TDPPerSocketW is the CPU's thermal design power per physical socket, in W; 0 when the
	// table has no sourced figure. The agent derives plausibility bounds from it.
	TDPPerSocketW float64
	// PerVCPU is true when IdleW and PeakW are per-vCPU figures times the host's logical
	// CPUs (cloud instances, CPU-family fallbacks) or a VM's share of a server, rather than
	// a measured whole server.
	PerVCPU bool
	// Source says where the idle and peak figures come from.
	Source string
}

// Basis of a table row's idle_w and peak_w.
const (
	basisServer = "server" // W of the whole measured server at the wall
	basisVCPU   = "vcpu"   // W per logical CPU (hardware thread or vCPU)
)

// row is one line of profiles.csv.
type row struct {
	name   string
	cpu    *regexp.Regexp // matched against identity's CPU model and core name
	system *regexp.Regexp // matched against "<sys_vendor> <product>"; nil matches any
	// cores is the number of physical cores a host must have to match (0: any). ARM model
	// strings name no SKU ("Ampere(R) Altra(R) Processor"), so the core count tells an
	// Altra Q80-30 from a Q64-30.
	cores int
	// sockets and threads describe the measured server: its socket count (0: matches any
	// host) and hardware threads. Server rows only.
	sockets, threads int
	basis            string
	idleW, peakW     float64 // W per server or per vCPU, after basis
	tdpW             float64 // W per socket, 0 when unknown
	source           string
	tdpSource        string
}

// parseProfiles parses the profile table. Order matters: Lookup takes the first row that
// matches, so specific SKUs come before family fallbacks.
func parseProfiles(r io.Reader) ([]row, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read profile table header: %w", err)
	}
	col := make(map[string]int, len(header))
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	// Columns are found by name, so the file can gain columns.
	for _, c := range [...]string{
		"name", "cpu_match", "system_match", "cores", "sockets", "threads", "basis",
		"idle_w", "peak_w", "tdp_w_per_socket", "source_power", "source_tdp", "notes",
	} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("profile table: no %s column", c)
		}
	}
	var rows []row
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read profile table: %w", err)
		}
		rw, err := parseRow(func(name string) string { return strings.TrimSpace(rec[col[name]]) })
		if err != nil {
			return nil, fmt.Errorf("profile table line %d: %w", line, err)
		}
		rows = append(rows, rw)
	}
	if len(rows) == 0 {
		return nil, errors.New("profile table: no rows")
	}
	return rows, nil
}

func parseRow(get func(string) string) (row, error) {
	rw := row{
		name:      get("name"),
		basis:     get("basis"),
		source:    get("source_power"),
		tdpSource: get("source_tdp"),
	}
	if rw.name == "" {
		return row{}, errors.New("empty name")
	}
	var err error
	if get("cpu_match") == "" {
		return row{}, fmt.Errorf("%s: empty cpu_match", rw.name)
	}
	if rw.cpu, err = compile(get("cpu_match")); err != nil {
		return row{}, fmt.Errorf("%s: cpu_match: %w", rw.name, err)
	}
	if rw.system, err = compile(get("system_match")); err != nil {
		return row{}, fmt.Errorf("%s: system_match: %w", rw.name, err)
	}
	ints := []struct {
		col string
		dst *int
	}{{"cores", &rw.cores}, {"sockets", &rw.sockets}, {"threads", &rw.threads}}
	for _, f := range ints {
		if *f.dst, err = atoi(get(f.col)); err != nil {
			return row{}, fmt.Errorf("%s: %s: %w", rw.name, f.col, err)
		}
	}
	floats := []struct {
		col string
		dst *float64
	}{{"idle_w", &rw.idleW}, {"peak_w", &rw.peakW}, {"tdp_w_per_socket", &rw.tdpW}}
	for _, f := range floats {
		if *f.dst, err = atof(get(f.col)); err != nil {
			return row{}, fmt.Errorf("%s: %s: %w", rw.name, f.col, err)
		}
	}
	switch {
	case rw.basis != basisServer && rw.basis != basisVCPU:
		return row{}, fmt.Errorf("%s: basis %q: want %s or %s", rw.name, rw.basis, basisServer, basisVCPU)
	case rw.idleW <= 0 || rw.peakW < rw.idleW:
		return row{}, fmt.Errorf("%s: idle_w %g, peak_w %g: want 0 < idle_w ≤ peak_w", rw.name, rw.idleW, rw.peakW)
	case rw.basis == basisServer && rw.threads <= 0:
		return row{}, fmt.Errorf("%s: a server row needs its threads, to give a VM its share", rw.name)
	case rw.source == "":
		return row{}, fmt.Errorf("%s: no source_power", rw.name)
	case rw.tdpW > 0 && rw.tdpSource == "":
		return row{}, fmt.Errorf("%s: tdp_w_per_socket without source_tdp", rw.name)
	}
	return rw, nil
}

// compile compiles a non-empty pattern; an empty one gives nil, which matches anything.
func compile(s string) (*regexp.Regexp, error) {
	if s == "" {
		return nil, nil
	}
	return regexp.Compile(s)
}

func atoi(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err == nil && n < 0 {
		err = errors.New("negative")
	}
	return n, err
}

func atof(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err == nil && (f < 0 || math.IsNaN(f) || f > 1e6) {
		err = fmt.Errorf("%g out of range", f)
	}
	return f, err
}

// Lookup finds the power profile of host in the shipped table and scales it to the host:
//   - a per-vCPU row (cloud instances, CPU-family fallbacks) is multiplied by the host's
//     logical CPUs, so a VM gets its share, not a whole server;
//   - a measured server on a virtual machine (the x86 hypervisor flag) is scaled by the
//     VM's logical CPUs over the server's hardware threads, for the same reason;
//   - a bare-metal server takes the row measured with its socket count, or the measured
//     server with the most sockets scaled per socket.
//
// The first row whose cpu_match matches host.CPUModel or host.CPUCore (and system_match,
// cores where set) decides; ok is false when no row matches.
func Lookup(host identity.Host) (p Profile, ok bool) {
	rows, err := parseProfiles(strings.NewReader(profilesCSV))
	if err != nil {
		// The table is tested; an unparsable one means no profile rather than a panic.
		return Profile{}, false
	}
	return lookup(rows, host)
}

func lookup(rows []row, host identity.Host) (Profile, bool) {
	var cands []row
	system := strings.TrimSpace(host.SysVendor + " " + host.Product)
	for _, rw := range rows {
		if !rw.cpu.MatchString(host.CPUModel) && (host.CPUCore == "" || !rw.cpu.MatchString(host.CPUCore)) {
			continue
		}
		if rw.system != nil && !rw.system.MatchString(system) {
			continue
		}
		if rw.cores != 0 && rw.cores != host.Cores {
			continue
		}
		cands = append(cands, rw)
	}
	if len(cands) == 0 {
		return Profile{}, false
	}
	first := cands[0]
	if first.basis == basisVCPU {
		n := max(host.LogicalCPUs, 1)
		return Profile{
			Name:          fmt.Sprintf("%s × %d vCPU", first.name, n),
			IdleW:         first.idleW * float64(n),
			PeakW:         first.peakW * float64(n),
			TDPPerSocketW: first.tdpW,
			PerVCPU:       true,
			Source:        first.source,
		}, true
	}
	// Rows of the same CPU, differing by socket count, share their cpu_match.
	var same []row
	for _, rw := range cands {
		if rw.basis == basisServer && rw.cpu.String() == first.cpu.String() {
			same = append(same, rw)
		}
	}
	if host.Virtual {
		// A VM sees the host's CPU model but owns only some of its threads.
		n := max(host.LogicalCPUs, 1)
		share := float64(n) / float64(first.threads)
		return Profile{
			Name:          fmt.Sprintf("%s × %d/%d threads", first.name, n, first.threads),
			IdleW:         first.idleW * share,
			PeakW:         first.peakW * share,
			TDPPerSocketW: first.tdpW,
			PerVCPU:       true,
			Source:        first.source,
		}, true
	}
	widest := same[0]
	for _, rw := range same {
		if rw.sockets == 0 || rw.sockets == host.Sockets {
			return Profile{Name: rw.name, IdleW: rw.idleW, PeakW: rw.peakW, TDPPerSocketW: rw.tdpW, Source: rw.source}, true
		}
		if rw.sockets > widest.sockets {
			widest = rw
		}
	}
	// No server with this socket count was measured: scale the largest one per socket.
	// A shared chassis makes this a slight overestimate for more sockets, and the better
	// for starting from the most sockets measured.
	sockets := max(host.Sockets, 1)
	k := float64(sockets) / float64(widest.sockets)
	return Profile{
		Name:          fmt.Sprintf("%s × %d/%d sockets", widest.name, sockets, widest.sockets),
		IdleW:         widest.idleW * k,
		PeakW:         widest.peakW * k,
		TDPPerSocketW: widest.tdpW,
		Source:        widest.source,
	}, true
}
