// Package acpi reads ACPI 4.0 power meters (device ACPI000D, Linux driver acpi_power_meter):
// the firmware's own meter of Dell and HPE x86 servers, and the four per-socket rails of
// NVIDIA Grace (Module, Grace, CPU and SysIO). A meter reports the average power (µW) over
// its averaging interval (ms), so each reading carries that interval in Averaged.
//
// # Where the attributes are
//
// The driver has registered its hwmon device with the deprecated hwmon_device_register since
// 2009 and creates every attribute, name included, on the ACPI device: they appear as
// /sys/class/hwmon/hwmonN/device/power1_average and the hwmon directory itself holds none.
// A conversion to hwmon_device_register_with_info (proposed on linux-hwmon in 2025) moves them
// into hwmonN/. Open looks in hwmonN/device/ first and then in hwmonN/, so both work.
//
// # Why meters are found through /sys/class/hwmon
//
// Meters could also be listed from /sys/bus/acpi/drivers/power_meter/ACPI000D:NN, the ACPI
// driver's bindings. The hwmon class is preferred because it is the documented user-space
// interface for sensors (Documentation/hwmon/sysfs-interface.rst), the one lm-sensors,
// node_exporter and the Grace tools read, and it finds the attributes in both layouts above,
// whereas the binding list names the ACPI device only (the attributes leave it once the
// driver is converted) and describes how the driver is bound, not the sensor, so it moves if
// the driver is ever bound differently. A chip is a meter when its name ("power_meter"), in
// hwmonN/ or hwmonN/device/, says so.
//
// # Scopes
//
// A plain meter, which does not say what it measures (empty power1_oem_info), is
// semconv.ScopePlatform, not semconv.ScopeWall. ACPI defines it as the "input power" of the
// devices listed in its _PMD, which Linux does not show, so the host cannot tell what it
// covers: on Dell and HPE servers it is usually the PSUs' input as the BMC sees it, but the
// same device on NVIDIA Grace measures a module's DC input. Wall stays for sources that read
// the PSUs themselves (IPMI DCMI, Redfish), which rank above this one; on a server whose
// meter is the PSU input the two then agree, and on one whose meter is not, no firmware
// number is passed off as wall power.
//
// The NVIDIA Grace rails overlap (Module ⊃ Grace ⊃ CPU), so each gets its own scope and
// summing a scope only ever adds the sockets: see graceRail.
package acpi

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
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// chipName is what the driver calls every meter (ACPI_POWER_METER_NAME).
const chipName = "power_meter"

// deviceName is the driver's name for a meter that says nothing about itself
// (ACPI_POWER_METER_DEVICE_NAME); it becomes hw.name.
const deviceName = "Power Meter"

// Meter is one ACPI power meter the Reader reads.
type Meter struct {
	// ID is the meter's hw.id: "module-0", "grace-1", "cpu-0", "sysio-1" for NVIDIA Grace
	// rails, else the ACPI device's name ("ACPI000D:00"), which the firmware fixes.
	ID string
	// Name is the meter's power1_oem_info ("Grace Power Socket 0"), else its
	// power1_model_number, else "Power Meter"; it becomes hw.name.
	Name string
	// Device is the ACPI device's name, "ACPI000D:00".
	Device string
	// Scope says what the meter covers.
	Scope semconv.Scope
	// Socket is the CPU socket a Grace rail belongs to; -1 for a meter that names none.
	Socket int
	// Dir is the directory holding the meter's attributes (hwmonN/device or hwmonN).
	Dir string
	// Interval is the window the meter averages over (power1_average_interval, ms); 0 when
	// unreadable.
	Interval time.Duration
	// Accuracy is the meter's accuracy in percent (power1_accuracy "95.0%" is 95); 0 when
	// unknown.
	Accuracy float64
	// MaxW is the highest power the meter's power cap allows, in W; 0 when it has no cap.
	MaxW float64
}

// Skipped is a meter that Open found but does not read, and why.
type Skipped struct {
	// Device is the ACPI device's name, "ACPI000D:03".
	Device string
	// Name is the meter's power1_oem_info, "" when it has none.
	Name string
	// Reason says why it is not read.
	Reason string
}

// Reader reads the meters found by Open. It holds no mutable state, so Read may be called
// from several goroutines.
type Reader struct {
	dir     string // /sys/class/hwmon, for Info
	meters  []Meter
	average []string // power1_average of each meter, joined once rather than every interval
	skipped []Skipped
}

var (
	_ sensor.Source    = (*Reader)(nil)
	_ sensor.Describer = (*Reader)(nil)
)

// Open finds the ACPI power meters under root's /sys/class/hwmon. It returns an error
// wrapping sensor.ErrNotFound when the machine has none it can read.
//
// The averaging interval, accuracy and cap are read once here: firmware sets them at boot and
// reading them again evaluates ACPI methods (on some servers an IPMI round trip) every time.
func Open(root sysfs.FS) (*Reader, error) {
	dir := root.Path("sys", "class", "hwmon")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s: the kernel has no hwmon driver loaded", sensor.ErrNotFound, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var found []found
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "hwmon") {
			continue
		}
		if f, ok := probe(filepath.Join(dir, e.Name())); ok {
			found = append(found, f)
		}
	}
	meters, skipped := assign(found)
	if len(meters) == 0 {
		msg := fmt.Sprintf("no ACPI power meter (ACPI000D) in %s: the firmware has none or the "+
			"acpi_power_meter module is not loaded", filepath.Join(dir, "hwmon*"))
		for _, s := range skipped {
			msg += fmt.Sprintf("; %s skipped: %s", s.Device, s.Reason)
		}
		return nil, fmt.Errorf("%w: %s", sensor.ErrNotFound, msg)
	}
	r := &Reader{dir: dir, meters: meters, skipped: skipped, average: make([]string, len(meters))}
	for i, m := range meters {
		r.average[i] = filepath.Join(m.Dir, "power1_average")
	}
	return r, nil
}

// Name is semconv.SourceACPI.
func (r *Reader) Name() string { return semconv.SourceACPI }

// Meters returns the meters the Reader reads, sorted by ID.
func (r *Reader) Meters() []Meter { return slices.Clone(r.meters) }

// Skipped returns the meters Open found but does not read, sorted by device.
func (r *Reader) Skipped() []Skipped { return slices.Clone(r.skipped) }

// Info describes the source for doctor: the meters' directories, the longest averaging
// interval (a value older than a few of them is stale), and no privilege, since the driver
// makes every attribute readable by all (0444).
func (r *Reader) Info() sensor.Info {
	parts := make([]string, 0, len(r.meters)+len(r.skipped))
	var cadence time.Duration
	for _, m := range r.meters {
		p := fmt.Sprintf("%s (%s", m.Dir, m.ID)
		if m.Accuracy > 0 {
			p += ", accuracy " + strconv.FormatFloat(m.Accuracy, 'f', -1, 64) + "%"
		}
		parts = append(parts, p+")")
		cadence = max(cadence, m.Interval)
	}
	for _, s := range r.skipped {
		parts = append(parts, fmt.Sprintf("skipped %s: %s", s.Device, s.Reason))
	}
	return sensor.Info{Detail: strings.Join(parts, "; "), Cadence: cadence}
}

// Read takes one reading of every meter, in W. A meter that cannot be read, or shows the
// firmware's error value or an absurd value, is left out and its error joined into the
// returned error.
func (r *Reader) Read(ctx context.Context) ([]sensor.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	readings := make([]sensor.Reading, 0, len(r.meters))
	var errs []error
	for i, m := range r.meters {
		w, err := readPower(r.average[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("read meter %s: %w", m.ID, err))
			continue
		}
		readings = append(readings, sensor.Reading{
			ID:       m.ID,
			Name:     m.Name,
			Source:   semconv.SourceACPI,
			Scope:    m.Scope,
			PowerW:   w,
			Averaged: m.Interval,
			MaxW:     m.MaxW,
		})
	}
	return readings, errors.Join(errs...)
}

// readPower reads a power1_average file. Kernels since the end of 2023 ("Fix 4.29 MW bug")
// answer the firmware's error value with ENODATA, which arrives here as the read's error;
// older ones print it, and parsePower rejects it.
func readPower(path string) (float64, error) {
	b, err := sysfs.ReadFile(path)
	if err != nil {
		return 0, err
	}
	w, err := parsePower(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return w, nil
}

// found is a meter as probe sees it, before assign decides its ID and scope.
type found struct {
	device  string // "ACPI000D:00"
	dir     string
	oemInfo string
	model   string
	battery bool
	meter   Meter // Dir, Interval, Accuracy and MaxW filled in
}

// probe reports whether the hwmon directory path is an ACPI power meter that can measure,
// and reads what does not change.
func probe(path string) (found, bool) {
	devDir := filepath.Join(path, "device")
	name := ""
	for _, p := range []string{filepath.Join(path, "name"), filepath.Join(devDir, "name")} {
		if s, err := sysfs.ReadString(p); err == nil && s != "" {
			name = s
			break
		}
	}
	if name != chipName {
		return found{}, false
	}
	f := found{device: filepath.Base(path)}
	if dev, err := filepath.EvalSymlinks(devDir); err == nil {
		f.device = filepath.Base(dev)
	}
	// A meter whose firmware cannot measure (a cap-only meter) has no power1_average.
	for _, dir := range []string{devDir, path} {
		if _, err := os.Stat(filepath.Join(dir, "power1_average")); err == nil {
			f.dir = dir
			break
		}
	}
	if f.dir == "" {
		f.dir = devDir
		return f, true // assign skips it, with the reason
	}
	attr := func(a string) string {
		s, _ := sysfs.ReadString(filepath.Join(f.dir, a))
		return s
	}
	f.oemInfo = attr("power1_oem_info")
	f.model = attr("power1_model_number")
	f.battery = attr("power1_is_battery") == "1"
	m := Meter{Dir: f.dir, Device: f.device}
	if ms, err := parseUint(attr("power1_average_interval")); err == nil && ms > 0 && ms <= maxIntervalMS {
		m.Interval = time.Duration(ms) * time.Millisecond
	}
	m.Accuracy, _ = parseAccuracy(attr("power1_accuracy"))
	// power1_cap is the cap in force, which the power may exceed for a while (that is what
	// power1_alarm reports), so the highest cap the hardware accepts bounds it better where
	// the driver shows both. The cap attributes exist only where the firmware can cap.
	for _, a := range []string{"power1_cap", "power1_cap_max"} {
		if w, err := parsePower(attr(a)); err == nil && w > m.MaxW {
			m.MaxW = w
		}
	}
	f.meter = m
	return f, true
}

// maxIntervalMS bounds a plausible averaging interval: ACPI allows any DWORD, but a meter
// averaging over more than a day is a firmware bug, not a window to integrate over.
const maxIntervalMS = 24 * 60 * 60 * 1000

// assign gives each meter its ID, name and scope and sets aside those that must not be read:
// two meters claiming the same Grace rail and socket, or several plain meters, whose sum
// could count power twice; battery meters; meters that cannot measure.
func assign(all []found) (meters []Meter, skipped []Skipped) {
	// Device order is firmware order, stable across boots; hwmon numbers are not.
	slices.SortFunc(all, func(a, b found) int { return cmp.Compare(a.device, b.device) })
	type key struct {
		scope  semconv.Scope
		socket int
	}
	seen := make(map[key]string)
	var plain []found
	for _, f := range all {
		switch {
		case f.meter.Dir == "":
			skipped = append(skipped, Skipped{f.device, f.oemInfo, "the meter cannot measure (no power1_average)"})
			continue
		case f.battery:
			skipped = append(skipped, Skipped{f.device, f.oemInfo, "the meter measures a battery, not the host"})
			continue
		}
		rail, socket, err := parseOEMInfo(f.oemInfo)
		if err != nil {
			plain = append(plain, f)
			continue
		}
		k := key{rail.scope, socket}
		if other, dup := seen[k]; dup {
			skipped = append(skipped, Skipped{f.device, f.oemInfo, fmt.Sprintf(
				"%s already reports %s of socket %d; reading both would count it twice", other, rail.scope, socket)})
			continue
		}
		seen[k] = f.device
		m := f.meter
		m.ID = rail.id + "-" + strconv.Itoa(socket)
		m.Name = f.oemInfo
		m.Scope = rail.scope
		m.Socket = socket
		meters = append(meters, m)
	}
	// A meter that does not say what it measures is the platform, but only when it is the
	// only such meter and no Grace rail is there: either of those could overlap it, and
	// platform readings of one source are summed.
	for i, f := range plain {
		switch {
		case len(seen) > 0:
			skipped = append(skipped, Skipped{
				f.device, f.oemInfo,
				"the meter does not say what it measures, beside NVIDIA Grace rails it could overlap",
			})
		case i > 0:
			skipped = append(skipped, Skipped{f.device, f.oemInfo, fmt.Sprintf(
				"the meter does not say what it measures; summing it with %s could count power twice", plain[0].device)})
		default:
			m := f.meter
			m.ID = f.device
			m.Name = cmp.Or(f.oemInfo, f.model, deviceName)
			m.Scope = semconv.ScopePlatform
			m.Socket = -1
			meters = append(meters, m)
		}
	}
	slices.SortFunc(meters, func(a, b Meter) int { return cmp.Compare(a.ID, b.ID) })
	return meters, skipped
}

// A rail is one kind of NVIDIA Grace meter.
type rail struct {
	prefix string // power1_oem_info before " Power Socket N"
	id     string // hw.id before "-N"
	scope  semconv.Scope
}

// graceRails maps the power1_oem_info of NVIDIA Grace's meters (Grace CPU Superchip, Grace
// Hopper, GB200; NVIDIA's Grace performance tuning guide, "Power telemetry") to scopes. The
// rails are nested, Module ⊃ Grace ⊃ CPU, with SysIO inside Grace as CPU is, so no two are
// added:
//
//   - Module: the whole superchip module's input (with Hopper, the GPU and HBM as well);
//     the widest Grace boundary, the platform.
//   - Grace: the CPU socket, its cores, fabric and LPDDR5X memory. It stands for the CPU
//     package; unlike an x86 RAPL package it includes the memory, which a comparison on
//     cpu-package must keep in mind.
//   - CPU: the CPU cores' rail (what DCGM calls CPU power), the cpu-core scope.
//   - SysIO: the SoC's system I/O rail, the io scope.
func graceRails() []rail {
	return []rail{
		{"Module", "module", semconv.ScopePlatform},
		{"Grace", "grace", semconv.ScopeCPUPackage},
		{"CPU", "cpu", semconv.ScopeCPUCore},
		{"SysIO", "sysio", semconv.ScopeIO},
	}
}

var errNotGrace = errors.New("not an NVIDIA Grace rail")

// maxSocket bounds a socket number read from firmware text.
const maxSocket = 255

// parseOEMInfo parses an NVIDIA Grace meter's power1_oem_info, "Grace Power Socket 1", into
// its rail and socket. Anything else, the empty string of x86 meters included, is errNotGrace.
func parseOEMInfo(s string) (rail, int, error) {
	// Firmware text is matched without regard to case; it is ASCII, which keeps the lower-case
	// copy's byte offsets valid in the original.
	t := strings.TrimSpace(s)
	for _, c := range []byte(t) {
		if c >= 0x80 {
			return rail{}, 0, fmt.Errorf("parse oem info %q: %w", s, errNotGrace)
		}
	}
	const sep = " power socket "
	i := strings.Index(strings.ToLower(t), sep)
	if i < 0 {
		return rail{}, 0, fmt.Errorf("parse oem info %q: %w", s, errNotGrace)
	}
	kind, num := t[:i], t[i+len(sep):]
	for _, r := range graceRails() {
		if !strings.EqualFold(kind, r.prefix) {
			continue
		}
		socket, err := parseUint(num)
		if err != nil || socket > maxSocket {
			return rail{}, 0, fmt.Errorf("parse oem info %q: socket %q: %w", s, num, errNotGrace)
		}
		return r, int(socket), nil
	}
	return rail{}, 0, fmt.Errorf("parse oem info %q: %w", s, errNotGrace)
}

// Errors of values a meter shows.
var (
	// errFirmware is the ACPI error value: _PMM returns 0xFFFFFFFF mW when it has no reading,
	// and kernels before 6.7 multiply it by 1000 into 4294967295000 µW, which would read as
	// 4.3 MW (lm-sensors #460, kepler #1049).
	errFirmware = errors.New("firmware error value 4294967295000 µW (0xFFFFFFFF mW)")
	// errAbsurd is a value no single meter can show.
	errAbsurd = errors.New("absurd value")
)

// firmwareErrorUW is the ACPI error value as older kernels print it, in µW.
const firmwareErrorUW = 0xFFFFFFFF * 1000

// maxUW bounds a plausible meter reading, in µW: 50 kW is five times the largest servers (an
// 8-GPU server peaks near 10 kW) and well below the unit and sentinel bugs seen in the wild
// (160 kW in kepler #1774, 4.3 MW for the firmware error value).
const maxUW = 50_000 * 1_000_000

// parsePower parses a power attribute (µW, an unsigned decimal as the driver prints it) into
// W, rejecting the firmware's error value and absurd values.
func parsePower(s string) (float64, error) {
	uw, err := parseUint(s)
	switch {
	case err != nil:
		return 0, err
	case uw == firmwareErrorUW:
		return 0, errFirmware
	case uw > maxUW:
		return 0, fmt.Errorf("%w: %d µW", errAbsurd, uw)
	}
	return float64(uw) / 1e6, nil
}

// parseUint parses an unsigned decimal attribute.
func parseUint(s string) (uint64, error) {
	if s == "" {
		return 0, sysfs.ErrEmpty
	}
	return strconv.ParseUint(s, 10, 64)
}

var errAccuracy = errors.New("not an accuracy")

// parseAccuracy parses power1_accuracy into percent. The driver prints the firmware's value,
// in thousandths of a percent, as "%u.%u%%" of value/1000 and value%1000, without padding the
// fraction: 95000 is "95.0%", 95500 "95.500%", and 95050 "95.50%", which means 95.05, not
// 95.5. The fraction is therefore read as a count of thousandths.
func parseAccuracy(s string) (float64, error) {
	num, ok := strings.CutSuffix(s, "%")
	if !ok {
		return 0, fmt.Errorf("parse accuracy %q: %w", s, errAccuracy)
	}
	whole, frac, ok := strings.Cut(num, ".")
	if !ok {
		return 0, fmt.Errorf("parse accuracy %q: %w", s, errAccuracy)
	}
	w, err := parseUint(whole)
	if err != nil || w > 100 {
		return 0, fmt.Errorf("parse accuracy %q: %w", s, errAccuracy)
	}
	f, err := parseUint(frac)
	if err != nil || f > 999 {
		return 0, fmt.Errorf("parse accuracy %q: %w", s, errAccuracy)
	}
	pct := float64(w) + float64(f)/1000
	if pct > 100 {
		return 0, fmt.Errorf("parse accuracy %q: %w", s, errAccuracy)
	}
	return pct, nil
}
