// Package hwmon reads the power (µW, reported in W) and energy (µJ) channels of the Linux
// hwmon chips under /sys/class/hwmon: the ACPI power meter (ACPI000D) of Dell and HPE servers
// and NVIDIA Grace, Ampere's xgene-hwmon ("CPU power", "IO power"), and any other driver that
// follows the hwmon sysfs ABI (Documentation/hwmon/sysfs-interface.rst).
//
// Drivers registered with the old hwmon_device_register, the ACPI power meter among them,
// put their attributes on the parent device rather than on the hwmon device, so each chip is
// searched in both hwmonN/ and hwmonN/device/, as node_exporter does.
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

// Channel is one power or energy channel the Reader reads.
type Channel struct {
	// ID is the channel's hw.id: "power_meter/power1", or "power_meter.ACPI000D:01/power1"
	// where several chips have the same name.
	ID string
	// Name is the channel's label ("CPU power"), else its ACPI OEM info, else "<chip> power1";
	// it becomes hw.name.
	Name string
	// Chip is the driver's name for the chip (hwmonN/name): "power_meter", "xgene_hwmon".
	Chip string
	// Scope says what the channel covers.
	Scope semconv.Scope
	// Counter is true for an energy channel (µJ), false for a power channel (µW).
	Counter bool
	// Path is the file the value is read from.
	Path string
}

// Reader reads the channels found by Open. It holds no mutable state, so Read may be called
// from several goroutines.
type Reader struct {
	channels []Channel
}

var _ sensor.Source = (*Reader)(nil)

// Open finds the power and energy channels of the hwmon chips under root's /sys/class/hwmon.
// It returns an error wrapping sensor.ErrNotFound when no chip has one, and one wrapping
// fs.ErrPermission when channels exist but the agent may read none of them.
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
		if ok && len(c.channels) > 0 {
			chips = append(chips, c)
		}
	}
	channels := identify(chips)
	if len(channels) == 0 {
		return nil, fmt.Errorf("%w: no power or energy channel in %s: the machine has no "+
			"power sensor that Linux shows through hwmon (on servers, the ACPI power meter "+
			"needs the acpi_power_meter module and firmware support)",
			sensor.ErrNotFound, filepath.Join(dir, "hwmon*"))
	}
	if err := checkReadable(channels); err != nil {
		return nil, err
	}
	return &Reader{channels: channels}, nil
}

// Name is semconv.SourceHwmon.
func (r *Reader) Name() string { return semconv.SourceHwmon }

// Channels returns the channels the Reader reads, sorted by ID.
func (r *Reader) Channels() []Channel { return slices.Clone(r.channels) }

// Read takes one reading of every channel: power in W (converted from µW), energy counters in
// µJ (MaxUJ 0: hwmon does not say where they wrap). A channel that cannot be read, or shows a
// negative value or the ACPI error value, is left out and its error joined into the returned
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
	if c.Counter {
		rd.EnergyUJ, err = parseEnergy(s)
	} else {
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
	name     string // "power_meter"
	device   string // base name of the device it belongs to ("ACPI000D:00"), "" if none
	channels []Channel
}

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
	if c.name == "" {
		c.name = c.hwmon
	}

	// The first directory that has a channel's value file owns the channel; the other's
	// copy, where a driver shows both, is not read twice.
	type key struct {
		kind  string
		index int
	}
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

	for k, dir := range owner {
		a := attrs[k]
		prefix := filepath.Join(dir, k.kind+strconv.Itoa(k.index)+"_")
		if a["enable"] {
			// A disabled channel reads 0 or fails; the driver or the operator turned it off.
			if v, err := sysfs.ReadInt(prefix + "enable"); err == nil && v == 0 {
				continue
			}
		}
		label := ""
		for _, attr := range []string{"label", "oem_info"} {
			if !a[attr] {
				continue
			}
			if s, err := sysfs.ReadString(prefix + attr); err == nil && s != "" {
				label = s
				break
			}
		}
		channel := k.kind + strconv.Itoa(k.index)
		if label == "" {
			label = c.name + " " + channel
		}
		c.channels = append(c.channels, Channel{
			ID:      channel, // completed by identify
			Name:    label,
			Chip:    c.name,
			Scope:   scope(c.name, label),
			Counter: k.kind == kindEnergy,
			Path:    prefix + valueAttr(k.kind, a),
		})
	}
	return c, true
}

// identify gives each channel its ID and returns all channels sorted by ID. The ID is built
// from the chip's name rather than from hwmonN, because hwmon numbers follow the order in
// which drivers probe and can change across boots, which would break every series. Where
// several chips have the same name (NVIDIA Grace has four ACPI power meters per socket), the
// name of the device they belong to, fixed by the firmware, tells them apart.
func identify(chips []chip) []Channel {
	count := make(map[string]int)
	for _, c := range chips {
		count[c.name]++
	}
	var channels []Channel
	for _, c := range chips {
		prefix := c.name
		if count[c.name] > 1 {
			if c.device != "" {
				prefix += "." + c.device
			} else {
				prefix += "." + c.hwmon
			}
		}
		for _, ch := range c.channels {
			ch.ID = prefix + "/" + ch.ID
			channels = append(channels, ch)
		}
	}
	slices.SortFunc(channels, func(a, b Channel) int { return cmp.Compare(a.ID, b.ID) })
	return channels
}

// scope maps a channel to what it measures, from the chip's name and the channel's label.
// The labels are the drivers' own: xgene-hwmon (Ampere eMAG, Altra) names its channels "CPU
// power" and "IO power". The ACPI power meter (chip "power_meter", ACPI000D) measures what the
// firmware chooses, on servers the platform as the firmware sees it, not the wall. Anything
// else is taken as the platform until a driver shows otherwise; the NVIDIA Grace meters
// ("Module|Grace|CPU|SysIO Power Socket N") are refined in a later change.
func scope(chip, label string) semconv.Scope {
	switch {
	case label == "CPU power":
		return semconv.ScopeCPUPackage
	case label == "IO power":
		return semconv.ScopeIO
	case chip == "power_meter":
		return semconv.ScopePlatform
	default:
		return semconv.ScopePlatform
	}
}

// Channel kinds, the prefix of an attribute's name.
const (
	kindPower  = "power"
	kindEnergy = "energy"
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
// ("power" or "energy"), its index (1) and the attribute ("average"). Other kinds (temp, in,
// curr) and names that are not attributes report false.
func parseAttr(name string) (kind string, index int, attr string, ok bool) {
	for _, k := range []string{kindPower, kindEnergy} {
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
