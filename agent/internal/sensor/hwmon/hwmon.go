// Package hwmon reads the power (µW, reported in W) and energy (µJ) channels of Linux hwmon
// chips under /sys/class/hwmon whose meaning is known: Ampere's xgene-hwmon (eMAG, Altra,
// AmpereOne: "CPU power" and "IO power") and INA3221 current monitors (NVIDIA Jetson), whose
// power is voltage (mV) × current (mA). The ACPI power meter, also a hwmon chip, is read by
// package acpi, which knows what its rails cover.
//
// A reading's scope decides what it is summed with: the readings of one source and scope are
// added up into the host's figure. A channel of a chip this package does not know could cover
// anything (a fan, a disk, a board rail inside the platform another sensor already measures),
// so rather than guess it is skipped, and Open reports it (Skipped, and the error when nothing
// else is found) so that it can be added to the table in classify.
//
// Drivers registered with the old hwmon_device_register put their attributes on the parent
// device rather than on the hwmon device, so each chip is searched in both hwmonN/ and
// hwmonN/device/, as node_exporter does.
package hwmon

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

// acpiChip is the name of the ACPI power meter's chips, which package acpi reads.
const acpiChip = "power_meter"

// Channel is one power or energy channel the Reader reads.
type Channel struct {
	// ID is the channel's hw.id: "cpu-0" and "io-0" for xgene-hwmon, whose sockets are told
	// apart by their ACPI device; otherwise "<chip>/<channel>" ("ina3221/in1"), or
	// "<chip>.<device>/<channel>" where several chips have the same name.
	ID string
	// Name is the channel's label ("CPU power", "VDD_IN"); it becomes hw.name.
	Name string
	// Chip is the driver's name for the chip (hwmonN/name): "apm_xgene", "ina3221".
	Chip string
	// Scope says what the channel covers.
	Scope semconv.Scope
	// Counter is true for an energy channel (µJ), false for a power channel (µW).
	Counter bool
	// Path is the file the value is read from: power (µW), energy (µJ), or for a channel
	// computed from voltage and current, the voltage (mV).
	Path string
	// CurrentPath is the current (mA) of a voltage × current channel, "" for the others.
	CurrentPath string
}

// Skipped is a channel that Open found but does not read, and why.
type Skipped struct {
	// Chip is the driver's name for the chip.
	Chip string
	// Channel is the channel, "power1" or "in1".
	Channel string
	// Name is its label, "" when it has none.
	Name string
	// Reason says why it is not read.
	Reason string
}

// Reader reads the channels found by Open. It holds no mutable state, so Read may be called
// from several goroutines.
type Reader struct {
	dir      string
	channels []Channel
	skipped  []Skipped
}

var (
	_ sensor.Source    = (*Reader)(nil)
	_ sensor.Describer = (*Reader)(nil)
)

// Open finds the known power and energy channels of the hwmon chips under root's
// /sys/class/hwmon. It returns an error wrapping sensor.ErrNotFound when there is none (naming
// the channels it skipped), and one wrapping fs.ErrPermission when channels exist but the
// agent may read none of them.
//
// A channel's label and enable attributes are read once here: drivers set them at probe.
func Open(root sysfs.FS) (*Reader, error) {
	dir := root.Path("sys", "class", "hwmon")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s: the kernel has no hwmon driver loaded", sensor.ErrNotFound, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var chips []chip
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "hwmon") {
			continue
		}
		c, ok := openChip(filepath.Join(dir, e.Name()))
		if ok && (len(c.channels) > 0 || len(c.skipped) > 0) {
			chips = append(chips, c)
		}
	}
	channels, skipped := identify(chips)
	if len(channels) == 0 {
		msg := fmt.Sprintf("no known power or energy channel in %s (ACPI power meters are "+
			"read by the acpi source)", filepath.Join(dir, "hwmon*"))
		for _, s := range skipped {
			msg += fmt.Sprintf("; %s %s skipped: %s", s.Chip, s.Channel, s.Reason)
		}
		return nil, fmt.Errorf("%w: %s", sensor.ErrNotFound, msg)
	}
	if err := checkReadable(channels); err != nil {
		return nil, err
	}
	return &Reader{dir: dir, channels: channels, skipped: skipped}, nil
}

// Name is semconv.SourceHwmon.
func (r *Reader) Name() string { return semconv.SourceHwmon }

// Channels returns the channels the Reader reads, sorted by ID.
func (r *Reader) Channels() []Channel { return slices.Clone(r.channels) }

// Skipped returns the channels Open found but does not read.
func (r *Reader) Skipped() []Skipped { return slices.Clone(r.skipped) }

// Info describes the source for doctor. Cadence is unknown: hwmon does not say how often a
// chip updates. Needs is empty because Open fails, with the fix, when the agent may read no
// channel (Ampere's own kernels make them root-only).
func (r *Reader) Info() sensor.Info {
	seen := make(map[string]bool)
	var parts []string
	for _, c := range r.channels {
		d := filepath.Dir(c.Path)
		if !seen[d] {
			seen[d] = true
			parts = append(parts, fmt.Sprintf("%s (%s)", d, c.Chip))
		}
	}
	for _, s := range r.skipped {
		parts = append(parts, fmt.Sprintf("skipped %s %s: %s", s.Chip, s.Channel, s.Reason))
	}
	return sensor.Info{Detail: strings.Join(parts, "; ")}
}

// Read takes one reading of every channel: power in W (converted from µW, or from mV × mA),
// energy counters in µJ (MaxUJ 0: hwmon does not say where they wrap). A channel that cannot
// be read, or shows a negative value, is left out and its error joined into the returned
// error.
func (r *Reader) Read(ctx context.Context) ([]sensor.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	readings := make([]sensor.Reading, 0, len(r.channels))
	var errs []error
	for _, c := range r.channels {
		rd, err := read(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("read channel %s: %w", c.ID, err))
			continue
		}
		readings = append(readings, rd)
	}
	return readings, errors.Join(errs...)
}

func read(c Channel) (sensor.Reading, error) {
	s, err := sysfs.ReadString(c.Path)
	if err != nil {
		return sensor.Reading{}, err
	}
	rd := sensor.Reading{
		ID:      c.ID,
		Name:    c.Name,
		Source:  semconv.SourceHwmon,
		Scope:   c.Scope,
		Counter: c.Counter,
	}
	switch {
	case c.Counter:
		rd.EnergyUJ, err = parseEnergy(s)
	case c.CurrentPath != "":
		var ma string
		if ma, err = sysfs.ReadString(c.CurrentPath); err != nil {
			return sensor.Reading{}, err
		}
		if rd.PowerW, err = parseVI(s, ma); err != nil {
			return sensor.Reading{}, fmt.Errorf("parse %s × %s: %w", c.Path, c.CurrentPath, err)
		}
		return rd, nil
	default:
		rd.PowerW, err = parsePower(s)
	}
	if err != nil {
		return sensor.Reading{}, fmt.Errorf("parse %s: %w", c.Path, err)
	}
	return rd, nil
}

// checkReadable fails when every channel is denied to the agent: Ampere's kernels restrict
// their power sensors to root, and that needs an operator, once, not an error every interval.
func checkReadable(channels []Channel) error {
	var denied error
	for _, c := range channels {
		_, err := sysfs.ReadString(c.Path)
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
	return fmt.Errorf("%w: the hwmon power sensors are readable by root only on this kernel: "+
		"run the agent as root or give it read access to them (see deploy/udev/)", denied)
}

// A chip is one hwmonN directory.
type chip struct {
	hwmon    string // "hwmon1": its number can change from one boot to the next
	name     string // "apm_xgene"
	device   string // base name of the device it belongs to ("APMC0D29:00"), "" if none
	channels []Channel
	skipped  []Skipped
}

// key names a channel of a chip: its kind ("power", "energy", "in", "curr") and index.
type key struct {
	kind  string
	index int
}

func (k key) String() string { return k.kind + strconv.Itoa(k.index) }

func openChip(path string) (chip, bool) {
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() { //nolint:gosec // G703: path is an entry of a sysfs directory listed here
		return chip{}, false
	}
	c := chip{hwmon: filepath.Base(path)}
	devDir := filepath.Join(path, "device")
	if dev, err := filepath.EvalSymlinks(devDir); err == nil {
		c.device = filepath.Base(dev)
	}
	// Old drivers put the name on the device, like their other attributes.
	for _, p := range []string{filepath.Join(path, "name"), filepath.Join(devDir, "name")} {
		if s, err := sysfs.ReadString(p); err == nil && s != "" {
			c.name = s
			break
		}
	}
	if c.name == acpiChip {
		return chip{}, false
	}
	if c.name == "" {
		c.name = c.hwmon
	}

	// The first directory that has a channel's value file owns the channel; the other's
	// copy, where a driver shows both, is not read twice.
	owner := make(map[key]string)
	attrs := make(map[key]map[string]bool)
	for _, dir := range []string{path, devDir} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		found := make(map[key]map[string]bool)
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			kind, index, attr, ok := parseAttr(e.Name())
			if !ok {
				continue
			}
			k := key{kind, index}
			if found[k] == nil {
				found[k] = make(map[string]bool)
			}
			found[k][attr] = true
		}
		for k, a := range found {
			if _, ok := owner[k]; !ok && valueAttr(k.kind, a) != "" {
				owner[k] = dir
				attrs[k] = a
			}
		}
	}
	prefix := func(k key) string { return filepath.Join(owner[k], k.String()+"_") }
	// enabled reports false for a channel that the driver or the operator turned off: it
	// reads 0 or fails.
	enabled := func(k key) bool {
		if !attrs[k]["enable"] {
			return true
		}
		v, err := sysfs.ReadInt(prefix(k) + "enable")
		return err != nil || v != 0
	}
	label := func(k key) string {
		if !attrs[k]["label"] {
			return ""
		}
		s, _ := sysfs.ReadString(prefix(k) + "label")
		return s
	}

	add := func(k key, lbl string, counter bool, path, current string) {
		scope, ok := classify(c.name, lbl)
		if !ok {
			c.skipped = append(c.skipped, Skipped{
				c.name, k.String(), lbl,
				"what this chip's channel covers is not known; add it to the table in classify if it is a meter",
			})
			return
		}
		c.channels = append(c.channels, Channel{
			ID:          k.String(), // completed by identify
			Name:        cmp.Or(lbl, c.name+" "+k.String()),
			Chip:        c.name,
			Scope:       scope,
			Counter:     counter,
			Path:        path,
			CurrentPath: current,
		})
	}

	for k := range owner {
		if k.kind != kindPower && k.kind != kindEnergy {
			continue
		}
		if enabled(k) {
			add(k, label(k), k.kind == kindEnergy, prefix(k)+valueAttr(k.kind, attrs[k]), "")
		}
	}
	for _, p := range pairs(c.name, owner, label) {
		if _, ok := owner[key{kindPower, p.in.index}]; ok {
			continue // the driver computes the power itself (ina2xx), which is read above
		}
		if enabled(p.in) && enabled(p.curr) {
			add(p.in, p.label, false, prefix(p.in)+"input", prefix(p.curr)+"input")
		}
	}
	return c, true
}

// A pair is a voltage channel and the current channel through the same rail.
type pair struct {
	in, curr key
	label    string
}

// pairs lists the voltage × current pairs of a chip. On an INA3221 in1..in3 are the bus
// voltages of its three channels and curr1..curr3 their currents (in4..in6 are shunt voltages
// and curr4 the sum, so pairing by index beyond 3 would be wrong); the label, set by the
// device tree, is on the voltage. On other chips a voltage and a current pair only when they
// carry the same label, since their indexes need not match.
func pairs(chipName string, owner map[key]string, label func(key) string) []pair {
	var ps []pair
	if chipName == "ina3221" {
		for i := 1; i <= 3; i++ {
			in, curr := key{kindIn, i}, key{kindCurr, i}
			if owner[in] != "" && owner[curr] != "" {
				ps = append(ps, pair{in, curr, label(in)})
			}
		}
		return ps
	}
	byLabel := make(map[string]key)
	for k := range owner {
		if k.kind == kindCurr {
			if l := label(k); l != "" {
				byLabel[l] = k
			}
		}
	}
	for k := range owner {
		if k.kind != kindIn {
			continue
		}
		if l := label(k); l != "" {
			if curr, ok := byLabel[l]; ok {
				ps = append(ps, pair{k, curr, l})
			}
		}
	}
	return ps
}

// identify gives each channel its ID and returns all channels sorted by ID, and the skipped
// ones sorted by chip and channel. IDs are built from the chip's name rather than from hwmonN,
// because hwmon numbers follow the order in which drivers probe and can change across boots,
// which would break every series. Where several chips have the same name, the name of the
// device they belong to, fixed by the firmware, tells them apart.
//
// xgene-hwmon registers one chip per socket (two on a 2-socket Altra), each on its own ACPI
// device (APMC0D29:00, APMC0D29:01) numbered in the firmware's order, socket 0 first; its
// channels are named after the rail and that socket, "cpu-0", "io-1", like RAPL's zones.
func identify(chips []chip) ([]Channel, []Skipped) {
	slices.SortFunc(chips, func(a, b chip) int {
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.device, b.device), cmp.Compare(a.hwmon, b.hwmon))
	})
	count := make(map[string]int)
	for _, c := range chips {
		count[c.name]++
	}
	var channels []Channel
	var skipped []Skipped
	xgene := 0
	for _, c := range chips {
		skipped = append(skipped, c.skipped...)
		if c.name == xgeneChip {
			for _, ch := range c.channels {
				ch.ID = xgeneRail(ch.Scope) + "-" + strconv.Itoa(xgene)
				channels = append(channels, ch)
			}
			xgene++
			continue
		}
		prefix := c.name
		if count[c.name] > 1 {
			prefix += "." + cmp.Or(c.device, c.hwmon)
		}
		for _, ch := range c.channels {
			ch.ID = prefix + "/" + ch.ID
			channels = append(channels, ch)
		}
	}
	slices.SortFunc(channels, func(a, b Channel) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortStableFunc(skipped, func(a, b Skipped) int {
		return cmp.Or(cmp.Compare(a.Chip, b.Chip), cmp.Compare(a.Channel, b.Channel))
	})
	return channels, skipped
}

// xgeneChip is the hwmon name xgene-hwmon registers (drivers/hwmon/xgene-hwmon.c).
const xgeneChip = "apm_xgene"

func xgeneRail(s semconv.Scope) string {
	if s == semconv.ScopeIO {
		return "io"
	}
	return "cpu"
}

// classify maps a chip's channel to what it measures, from the chip's name and the channel's
// label, and reports false for channels whose meaning is not known. The table is small on
// purpose; each line is a driver whose labels are fixed and documented:
//
//   - apm_xgene (xgene-hwmon; Ampere eMAG, Altra, AmpereOne): "CPU power" is the SoC's CPU
//     rail, cores and caches and mesh, the package; "IO power" the I/O rail. There is no
//     memory rail.
//   - ina3221 on NVIDIA Jetson modules, labels from the device tree: "VDD_IN" is the module's
//     whole input, the platform; "VDD_CPU" the CPU cluster's rail alone, the cores. Jetson's
//     combined rails ("VDD_CPU_GPU_CV", "VDD_SOC") cover no single scope and are skipped.
//
// An energy channel follows the same table as a power channel.
func classify(chipName, label string) (semconv.Scope, bool) {
	switch chipName {
	case xgeneChip:
		switch label {
		case "CPU power":
			return semconv.ScopeCPUPackage, true
		case "IO power":
			return semconv.ScopeIO, true
		}
	case "ina3221":
		switch label {
		case "VDD_IN":
			return semconv.ScopePlatform, true
		case "VDD_CPU":
			return semconv.ScopeCPUCore, true
		}
	}
	return "", false
}

// Channel kinds, the prefix of an attribute's name.
const (
	kindPower  = "power"  // µW
	kindEnergy = "energy" // µJ
	kindIn     = "in"     // voltage, mV
	kindCurr   = "curr"   // current, mA
)

// valueAttr is the attribute a channel's value is read from, "" if the channel has none.
// A power meter's average is preferred to its instantaneous input: it covers the meter's
// averaging interval, so sampling it every interval misses less.
func valueAttr(kind string, attrs map[string]bool) string {
	switch {
	case kind == kindPower && attrs["average"]:
		return "average"
	case attrs["input"]:
		return "input"
	default:
		return ""
	}
}

// parseAttr splits a hwmon attribute file name, "power1_average", into the channel kind
// ("power", "energy", "in" or "curr"), its index (1) and the attribute ("average"). Other
// kinds (temp, fan) and names that are not attributes report false.
func parseAttr(name string) (kind string, index int, attr string, ok bool) {
	for _, k := range []string{kindPower, kindEnergy, kindIn, kindCurr} {
		if rest, found := strings.CutPrefix(name, k); found {
			num, a, found := strings.Cut(rest, "_")
			if !found || a == "" {
				return "", 0, "", false
			}
			n, ok := parseIndex(num)
			if !ok {
				return "", 0, "", false
			}
			return k, n, a, true
		}
	}
	return "", 0, "", false
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

// acpiErrorUW is what the ACPI power meter shows when the firmware's _PMM method returns its
// error value 0xFFFFFFFF: the driver multiplies mW by 1000 (lm-sensors #460).
const acpiErrorUW = 0xFFFFFFFF * 1000

var (
	errACPIError = errors.New("ACPI power meter error value 4294967295000 µW (0xFFFFFFFF mW)")
	errNegative  = errors.New("negative value")
)

// parsePower parses a power attribute (µW) into W. It rejects negative values and the ACPI
// error value, which would otherwise read as 4.3 MW.
func parsePower(s string) (float64, error) {
	if s == "" {
		return 0, sysfs.ErrEmpty
	}
	v, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil:
		return 0, err
	case v < 0:
		return 0, fmt.Errorf("%w: %d µW", errNegative, v)
	case v == acpiErrorUW:
		return 0, errACPIError
	}
	return float64(v) / 1e6, nil
}

// parseEnergy parses an energy counter attribute (µJ).
func parseEnergy(s string) (uint64, error) {
	if s == "" {
		return 0, sysfs.ErrEmpty
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%w: %s µJ", errNegative, s)
	}
	return strconv.ParseUint(s, 10, 64)
}

// maxMilli bounds a voltage (mV) or current (mA) read from a monitor: 1 MV or 1 MA is far
// beyond any board, and the bound keeps their product, in µW, inside an int64.
const maxMilli = 1_000_000_000

var errRange = errors.New("out of range")

// parseVI computes power in W from a voltage attribute (mV) and a current attribute (mA):
// mV × mA = µW. A negative product (current flowing back) is rejected like a negative power.
func parseVI(mv, ma string) (float64, error) {
	if mv == "" || ma == "" {
		return 0, sysfs.ErrEmpty
	}
	v, err := strconv.ParseInt(mv, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("voltage: %w", err)
	}
	i, err := strconv.ParseInt(ma, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("current: %w", err)
	}
	if v < -maxMilli || v > maxMilli || i < -maxMilli || i > maxMilli {
		return 0, fmt.Errorf("%w: %d mV × %d mA", errRange, v, i)
	}
	uw := v * i
	if uw < 0 {
		return 0, fmt.Errorf("%w: %d mV × %d mA", errNegative, v, i)
	}
	return float64(uw) / 1e6, nil
}
