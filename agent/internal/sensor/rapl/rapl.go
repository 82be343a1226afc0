// Package rapl reads the Intel and AMD RAPL energy counters (µJ) that the Linux powercap
// driver (intel_rapl_common, also used for AMD since Linux 5.8) shows under
// /sys/class/powercap/intel-rapl:*: one zone per package (or die), a dram and sometimes a core
// subzone below each, and on some Intel machines a psys zone for the whole platform.
//
// The directory index of a zone is not its socket: on a 2-socket Intel server intel-rapl:1 is
// psys and package-1 is intel-rapl:2. The socket therefore comes from the zone's name
// ("package-1"), and a subzone's from its parent's name.
//
// A zone's enabled file says whether its power limit is enforced, not whether its counter
// counts, so it is not read.
package rapl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Zone is one RAPL zone the Reader reads.
type Zone struct {
	// ID is the zone's hw.id: "package-0", "package-0-die-1", "dram-0", "core-1", "psys".
	ID string
	// Name is the content of the zone's name file ("package-0", "dram"); it becomes hw.name.
	Name string
	// Scope says what the zone's counter covers.
	Scope semconv.Scope
	// Socket is the physical package the zone belongs to, -1 for psys, which covers the
	// whole platform.
	Socket int
	// Path is the zone's directory, as found under /sys/class/powercap.
	Path string
	// MaxUJ is the value at which energy_uj wraps to zero, in µJ; 0 when unreadable.
	MaxUJ uint64
}

// Reader reads the energy counters of the RAPL zones found by Open. It holds no mutable
// state, so Read may be called from several goroutines.
type Reader struct {
	zones  []Zone
	energy []string // energy_uj of each zone, joined once rather than every interval
}

var (
	_ sensor.Source    = (*Reader)(nil)
	_ sensor.Describer = (*Reader)(nil)
)

// Open finds the RAPL zones under root's /sys/class/powercap. It returns an error wrapping
// sensor.ErrNotFound when the machine has no RAPL zone, and one wrapping fs.ErrPermission,
// with the fix, when zones exist but the agent may not read any energy counter.
func Open(root sysfs.FS) (*Reader, error) {
	dir := root.Path("sys", "class", "powercap")
	zones, err := discover(dir)
	if err != nil {
		return nil, err
	}
	if len(zones) == 0 {
		return nil, fmt.Errorf("%w: no %s zones: no RAPL on this machine (a VM, an ARM host) "+
			"or the intel_rapl_common module is not loaded",
			sensor.ErrNotFound, filepath.Join(dir, "intel-rapl:*"))
	}
	if err := checkReadable(zones); err != nil {
		return nil, err
	}
	r := &Reader{zones: zones, energy: make([]string, len(zones))}
	for i, z := range zones {
		r.energy[i] = filepath.Join(z.Path, "energy_uj")
	}
	return r, nil
}

// needs is what reading energy_uj takes on current kernels.
const needs = "root: energy_uj is 0400 since Linux 5.10 (CVE-2020-8694); or the udev rule in deploy/udev/"

// Info describes the source for doctor: the zones' directories, and what reading them takes.
// Cadence is left unknown: the counters tick about every millisecond, far faster than any
// interval the agent samples at, so they are never stale. Counter resets (driver reload,
// suspend) are the energy package's to handle, not this one's.
func (r *Reader) Info() sensor.Info {
	parts := make([]string, len(r.zones))
	for i, z := range r.zones {
		parts[i] = fmt.Sprintf("%s (%s)", z.Path, z.ID)
	}
	return sensor.Info{Detail: strings.Join(parts, "; "), Needs: needs}
}

// Name is semconv.SourceRAPL.
func (r *Reader) Name() string { return semconv.SourceRAPL }

// Zones returns the zones the Reader reads, sorted by ID.
func (r *Reader) Zones() []Zone { return slices.Clone(r.zones) }

// Read takes one reading of every zone's energy counter (µJ). A zone whose counter cannot be
// read or parsed is left out and its error joined into the returned error.
func (r *Reader) Read(ctx context.Context) ([]sensor.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	readings := make([]sensor.Reading, 0, len(r.zones))
	var errs []error
	for i, z := range r.zones {
		uj, err := sysfs.ReadUint(r.energy[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("read zone %s: %w", z.ID, err))
			continue
		}
		readings = append(readings, sensor.Reading{
			ID:       z.ID,
			Name:     z.Name,
			Source:   semconv.SourceRAPL,
			Scope:    z.Scope,
			Counter:  true,
			EnergyUJ: uj,
			MaxUJ:    z.MaxUJ,
		})
	}
	return readings, errors.Join(errs...)
}

// checkReadable tells apart "the agent may read no counter" (a deployment error with a known
// fix, reported once at start-up) from a zone that fails now and then (reported by Read).
func checkReadable(zones []Zone) error {
	var denied error
	for _, z := range zones {
		_, err := sysfs.ReadUint(filepath.Join(z.Path, "energy_uj"))
		switch {
		case err == nil:
			return nil
		case errors.Is(err, fs.ErrPermission) && denied == nil:
			denied = err
		}
	}
	if denied == nil {
		return nil
	}
	return fmt.Errorf("%w: energy_uj is readable by root only since Linux 5.10 (CVE-2020-8694): "+
		"run the agent as root or give it read access to energy_uj (see deploy/udev/)", denied)
}

// A zone directory found under /sys/class/powercap, before its name is read.
type zoneDir struct {
	path   string
	mmio   bool // intel-rapl-mmio:*, a second view of the same counters on some Intel CPUs
	parent int  // N in intel-rapl:N and intel-rapl:N:M
	sub    int  // M in intel-rapl:N:M, -1 for a top-level zone
}

func (d zoneDir) key() string {
	return fmt.Sprintf("%t:%d:%d", d.mmio, d.parent, d.sub)
}

// discover lists the zones under dir (/sys/class/powercap). Subzones are taken both from the
// class directory (where the kernel links them) and from inside their parent's directory
// (where they live), so a tree without the class links still works.
func discover(dir string) ([]Zone, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s: no RAPL on this machine (a VM, an ARM host) "+
			"or the intel_rapl_common module is not loaded", sensor.ErrNotFound, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	seen := make(map[string]bool)
	var dirs []zoneDir
	add := func(path, base string) {
		d, ok := parseZoneDir(base)
		if !ok || seen[d.key()] {
			return
		}
		// Class entries are symlinks; Stat follows them to the zone's directory.
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() { //nolint:gosec // G703: path is an entry of a sysfs directory listed here
			return
		}
		seen[d.key()] = true
		d.path = path
		dirs = append(dirs, d)
	}
	for _, e := range entries {
		add(filepath.Join(dir, e.Name()), e.Name())
	}
	for _, d := range slices.Clone(dirs) {
		if d.sub >= 0 {
			continue
		}
		nested, err := os.ReadDir(d.path)
		if err != nil {
			continue
		}
		for _, e := range nested {
			add(filepath.Join(d.path, e.Name()), e.Name())
		}
	}

	// Names first: a subzone's socket is in its parent's name.
	names := make(map[string]string, len(dirs))
	for _, d := range dirs {
		name, err := sysfs.ReadString(filepath.Join(d.path, "name"))
		if err != nil || name == "" {
			continue // not a zone (the control-type directory has no name)
		}
		names[d.key()] = name
	}

	var zones, mmio []Zone
	for _, d := range dirs {
		name, ok := names[d.key()]
		if !ok {
			continue
		}
		parentName := ""
		if d.sub >= 0 {
			parentName, ok = names[zoneDir{mmio: d.mmio, parent: d.parent, sub: -1}.key()]
			if !ok {
				continue // a subzone without a named parent has no socket
			}
		}
		z, ok := newZone(name, parentName)
		if !ok {
			continue
		}
		z.Path = d.path
		// max_energy_range_uj is fixed by the hardware, so it is read once. A zone without
		// it is still useful: the energy package then treats a decrease as a reset.
		z.MaxUJ, _ = sysfs.ReadUint(filepath.Join(d.path, "max_energy_range_uj"))
		if d.mmio {
			mmio = append(mmio, z)
		} else {
			zones = append(zones, z)
		}
	}

	// The MMIO interface shows the same counters as the MSR one on CPUs that have both;
	// reading both would count the energy twice. Keep an MMIO zone only where the MSR
	// interface has no zone of that ID. IDs rather than names are compared because a
	// subzone's name ("dram") repeats on every socket.
	slices.SortStableFunc(zones, func(a, b Zone) int { return cmp.Compare(a.ID, b.ID) })
	zones = slices.CompactFunc(zones, func(a, b Zone) bool { return a.ID == b.ID })
	for _, z := range mmio {
		if !slices.ContainsFunc(zones, func(x Zone) bool { return x.ID == z.ID }) {
			zones = append(zones, z)
		}
	}
	slices.SortFunc(zones, func(a, b Zone) int { return cmp.Compare(a.ID, b.ID) })
	return zones, nil
}

// newZone makes the zone named name whose parent zone is named parentName ("" for a
// top-level zone). It reports false for zones the agent does not read.
func newZone(name, parentName string) (Zone, bool) {
	kind, socket, die, err := parseZoneName(name)
	if err != nil {
		return Zone{}, false
	}
	if parentName != "" {
		pkind, psocket, pdie, err := parseZoneName(parentName)
		if err != nil || pkind != kindPackage || kind == kindPackage || kind == kindPsys {
			return Zone{}, false
		}
		socket, die = psocket, pdie
	}
	z := Zone{Name: name, Socket: socket}
	switch kind {
	case kindPackage:
		z.Scope = semconv.ScopeCPUPackage
	case kindCore:
		z.Scope = semconv.ScopeCPUCore
	case kindDRAM:
		z.Scope = semconv.ScopeDRAM
	case kindPsys:
		z.Scope = semconv.ScopePlatform
		z.ID = kindPsys
		return z, true
	default:
		// uncore (PP1) is the integrated GPU of client CPUs: semconv has no scope for it, and
		// reporting it as "gpu" would mix it with discrete GPU board power. Servers have none.
		return Zone{}, false
	}
	if socket < 0 {
		return Zone{}, false // core or dram outside a package zone: no socket to give it
	}
	z.ID = kind + "-" + strconv.Itoa(socket)
	if die >= 0 {
		// A multi-die package has one zone per die, each with its own subzones.
		z.ID += "-die-" + strconv.Itoa(die)
	}
	return z, true
}

// Zone kinds, the part of a zone's name before the socket number.
const (
	kindPackage = "package"
	kindCore    = "core"
	kindUncore  = "uncore"
	kindDRAM    = "dram"
	kindPsys    = "psys"
)

var errZoneName = errors.New("unknown RAPL zone name")

// parseZoneName parses the content of a zone's name file: "package-N", "package-N-die-M",
// "core", "uncore", "dram" or "psys". socket and die are -1 where the name has none. Numbers
// must be written as the kernel writes them (decimal, no sign, no leading zero), so that a
// parsed name always prints back to itself.
func parseZoneName(name string) (kind string, socket, die int, err error) {
	switch name {
	case kindCore, kindUncore, kindDRAM, kindPsys:
		return name, -1, -1, nil
	}
	rest, ok := strings.CutPrefix(name, kindPackage+"-")
	if !ok {
		return "", -1, -1, fmt.Errorf("parse zone name %q: %w", name, errZoneName)
	}
	s, d, hasDie := strings.Cut(rest, "-die-")
	socket, ok = parseIndex(s)
	if !ok {
		return "", -1, -1, fmt.Errorf("parse zone name %q: %w", name, errZoneName)
	}
	die = -1
	if hasDie {
		if die, ok = parseIndex(d); !ok {
			return "", -1, -1, fmt.Errorf("parse zone name %q: %w", name, errZoneName)
		}
	}
	return kindPackage, socket, die, nil
}

// parseZoneDir parses the name of a directory under /sys/class/powercap: "intel-rapl:N",
// "intel-rapl:N:M", "intel-rapl-mmio:N" or "intel-rapl-mmio:N:M". The control-type
// directories ("intel-rapl") and other drivers' zones ("dtpm:0") are not zones of this source.
func parseZoneDir(base string) (zoneDir, bool) {
	d := zoneDir{sub: -1}
	rest, ok := strings.CutPrefix(base, "intel-rapl:")
	if !ok {
		if rest, ok = strings.CutPrefix(base, "intel-rapl-mmio:"); !ok {
			return zoneDir{}, false
		}
		d.mmio = true
	}
	p, s, hasSub := strings.Cut(rest, ":")
	if d.parent, ok = parseIndex(p); !ok {
		return zoneDir{}, false
	}
	if hasSub {
		if d.sub, ok = parseIndex(s); !ok {
			return zoneDir{}, false
		}
	}
	return d, true
}

// parseIndex parses a non-negative decimal number written without sign or leading zero.
func parseIndex(s string) (int, bool) {
	if s == "" || len(s) > 6 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}
