package hwmon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

func power(id, name string, scope semconv.Scope, w float64) sensor.Reading {
	return sensor.Reading{ID: id, Name: name, Source: semconv.SourceHwmon, Scope: scope, PowerW: w}
}

func energy(id, name string, scope semconv.Scope, uj uint64) sensor.Reading {
	return sensor.Reading{ID: id, Name: name, Source: semconv.SourceHwmon, Scope: scope, Counter: true, EnergyUJ: uj}
}

// tree builds a /sys tree of hwmon chips in a temporary directory, laid out as the kernel
// lays it out: sys/class/hwmon/hwmonN links to sys/devices/<device>/hwmon/hwmonN, whose
// device link points back to the device.
type tree struct {
	t    testing.TB
	root string
}

func newTree(t testing.TB, root string) *tree {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	h := &tree{t: t, root: root}
	if err := os.MkdirAll(filepath.Join(root, "sys/class/hwmon"), 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

// chip adds hwmonN of the device at sys/devices/<device>, with hwmonAttrs in hwmonN/ and
// deviceAttrs in the device's directory (hwmonN/device/).
func (h *tree) chip(hwmonN, device string, hwmonAttrs, deviceAttrs map[string]string) {
	h.t.Helper()
	devDir := filepath.Join("sys/devices", device)
	dir := filepath.Join(devDir, "hwmon", hwmonN)
	for name, v := range hwmonAttrs {
		h.file(filepath.Join(dir, name), v)
	}
	for name, v := range deviceAttrs {
		h.file(filepath.Join(devDir, name), v)
	}
	if err := os.MkdirAll(filepath.Join(h.root, dir), 0o755); err != nil {
		h.t.Fatal(err)
	}
	h.link(filepath.Join("../../..", filepath.Base(device)), filepath.Join(dir, "device"))
	h.link(filepath.Join("../../devices", device, "hwmon", hwmonN), filepath.Join("sys/class/hwmon", hwmonN))
}

func (h *tree) link(target, rel string) {
	h.t.Helper()
	if err := os.Symlink(target, filepath.Join(h.root, rel)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *tree) file(rel, content string) {
	h.t.Helper()
	path := filepath.Join(h.root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *tree) fs() sysfs.FS { return sysfs.New(h.root) }

// ACPI power meter devices as the kernel names them.
const (
	acpiMeter0 = "LNXSYSTM:00/LNXSYBUS:00/ACPI000D:00"
	acpiMeter1 = "LNXSYSTM:00/LNXSYBUS:00/ACPI000D:01"
	xgene      = "platform/APMC0D29:00"
)

func TestReadMachines(t *testing.T) {
	t.Parallel()
	r, err := Open(sysfs.New(fixture.Root(t, "intel-xeon-2s")))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, err := r.Read(t.Context())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	// The two coretemp chips have temperatures only.
	want := []sensor.Reading{
		power("power_meter/power1", "power_meter power1", semconv.ScopePlatform, 287),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Read (-want +got):\n%s", diff)
	}
	if got := r.Name(); got != semconv.SourceHwmon {
		t.Errorf("Name = %q, want %q", got, semconv.SourceHwmon)
	}
}

func TestChannels(t *testing.T) {
	t.Parallel()
	root := fixture.Root(t, "intel-xeon-2s")
	r, err := Open(sysfs.New(root))
	if err != nil {
		t.Fatal(err)
	}
	want := []Channel{{
		ID: "power_meter/power1", Name: "power_meter power1", Chip: "power_meter",
		Scope: semconv.ScopePlatform,
		Path:  filepath.Join(root, "sys/class/hwmon/hwmon1/device/power1_average"),
	}}
	if diff := cmp.Diff(want, r.Channels()); diff != "" {
		t.Errorf("Channels (-want +got):\n%s", diff)
	}
}

func TestReadLayouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func(h *tree)
		want  []sensor.Reading
	}{
		{
			name: "ampere xgene-hwmon",
			build: func(h *tree) {
				h.chip("hwmon0", xgene, map[string]string{
					"name":         "apm_xgene\n",
					"power1_input": "16280000\n", "power1_label": "CPU power\n",
					"power2_input": "31900000\n", "power2_label": "IO power\n",
					"temp1_input": "44000\n", "temp1_label": "SoC Temperature\n",
				}, nil)
			},
			want: []sensor.Reading{
				power("apm_xgene/power1", "CPU power", semconv.ScopeCPUPackage, 16.28),
				power("apm_xgene/power2", "IO power", semconv.ScopeIO, 31.9),
			},
		},
		{
			name: "average preferred to input",
			build: func(h *tree) {
				h.chip("hwmon3", "platform/meter.0", map[string]string{
					"name": "meter\n", "power1_input": "1000000\n", "power1_average": "2000000\n",
				}, nil)
			},
			want: []sensor.Reading{power("meter/power1", "meter power1", semconv.ScopePlatform, 2)},
		},
		{
			name: "disabled channel skipped",
			build: func(h *tree) {
				h.chip("hwmon0", "platform/meter.0", map[string]string{
					"name":         "meter\n",
					"power1_input": "1000000\n", "power1_enable": "0\n",
					"power2_input": "3000000\n", "power2_enable": "1\n",
				}, nil)
			},
			want: []sensor.Reading{power("meter/power2", "meter power2", semconv.ScopePlatform, 3)},
		},
		{
			name: "label, then oem info, then chip and channel",
			build: func(h *tree) {
				h.chip("hwmon0", acpiMeter0, map[string]string{"name": "power_meter\n"}, map[string]string{
					"power1_average": "98000000\n", "power1_oem_info": "Grace Power Socket 0\n",
				})
				h.chip("hwmon1", "platform/meter.0", map[string]string{
					"name":         "meter\n",
					"power1_input": "1000000\n", "power1_label": "Board\n", "power1_oem_info": "ignored\n",
					"power2_input": "2000000\n", "power2_oem_info": "\n",
				}, nil)
			},
			want: []sensor.Reading{
				power("meter/power1", "Board", semconv.ScopePlatform, 1),
				power("meter/power2", "meter power2", semconv.ScopePlatform, 2),
				power("power_meter/power1", "Grace Power Socket 0", semconv.ScopePlatform, 98),
			},
		},
		{
			name: "energy counter",
			build: func(h *tree) {
				h.chip("hwmon0", "platform/meter.0", map[string]string{
					"name": "meter\n", "energy1_input": "123456789\n", "energy1_label": "CPU power\n",
				}, nil)
			},
			want: []sensor.Reading{energy("meter/energy1", "CPU power", semconv.ScopeCPUPackage, 123456789)},
		},
		{
			name: "chips of the same name told apart by their device",
			build: func(h *tree) {
				h.chip("hwmon4", acpiMeter1, map[string]string{"name": "power_meter\n"}, map[string]string{"power1_average": "2000000\n"})
				h.chip("hwmon2", acpiMeter0, map[string]string{"name": "power_meter\n"}, map[string]string{"power1_average": "1000000\n"})
			},
			want: []sensor.Reading{
				power("power_meter.ACPI000D:00/power1", "power_meter power1", semconv.ScopePlatform, 1),
				power("power_meter.ACPI000D:01/power1", "power_meter power1", semconv.ScopePlatform, 2),
			},
		},
		{
			name: "old layout: name on the device",
			build: func(h *tree) {
				h.chip("hwmon0", acpiMeter0, nil, map[string]string{"name": "power_meter\n", "power1_average": "5000000\n"})
			},
			want: []sensor.Reading{power("power_meter/power1", "power_meter power1", semconv.ScopePlatform, 5)},
		},
		{
			name: "channel in both directories read once, from hwmonN",
			build: func(h *tree) {
				h.chip("hwmon0", acpiMeter0,
					map[string]string{"name": "power_meter\n", "power1_average": "7000000\n"},
					map[string]string{"power1_average": "8000000\n"})
			},
			want: []sensor.Reading{power("power_meter/power1", "power_meter power1", semconv.ScopePlatform, 7)},
		},
		{
			name: "attributes without a value",
			build: func(h *tree) {
				h.chip("hwmon0", acpiMeter0, map[string]string{"name": "power_meter\n"}, map[string]string{
					"power1_cap": "300000000\n", "power1_average_interval": "1000\n", "power1_label": "x\n",
					"power2_input": "1000000\n", "power/runtime_status": "unsupported\n",
				})
			},
			want: []sensor.Reading{power("power_meter/power2", "power_meter power2", semconv.ScopePlatform, 1)},
		},
		{
			name: "chip without a name",
			build: func(h *tree) {
				h.chip("hwmon5", "platform/meter.0", map[string]string{"power1_input": "1000000\n"}, nil)
			},
			want: []sensor.Reading{power("hwmon5/power1", "hwmon5 power1", semconv.ScopePlatform, 1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newTree(t, "")
			tt.build(h)
			r, err := Open(h.fs())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got, err := r.Read(t.Context())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenNotFound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func(h *tree)
	}{
		{"no hwmon class", func(h *tree) {
			if err := os.Remove(filepath.Join(h.root, "sys/class/hwmon")); err != nil {
				h.t.Fatal(err)
			}
		}},
		{"empty hwmon class", func(*tree) {}},
		{"temperatures only", func(h *tree) {
			h.chip("hwmon0", "platform/coretemp.0", map[string]string{"name": "coretemp\n", "temp1_input": "45000\n"}, nil)
		}},
		{"disabled channels only", func(h *tree) {
			h.chip("hwmon0", "platform/meter.0", map[string]string{"name": "meter\n", "power1_input": "1\n", "power1_enable": "0\n"}, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newTree(t, "")
			tt.build(h)
			r, err := Open(h.fs())
			if !errors.Is(err, sensor.ErrNotFound) || r != nil {
				t.Fatalf("Open = %v, %v; want an error wrapping sensor.ErrNotFound", r, err)
			}
		})
	}
	// A machine without any hwmon power channel, as the AMD fixture is.
	if _, err := Open(sysfs.New(fixture.Root(t, "amd-epyc"))); !errors.Is(err, sensor.ErrNotFound) {
		t.Errorf("Open(amd-epyc) = %v, want an error wrapping sensor.ErrNotFound", err)
	}
}

func TestReadBadValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		attr    string
		value   string
		wantErr error
	}{
		{"acpi error value", "power2_average", "4294967295000\n", errACPIError},
		{"negative power", "power2_input", "-1000\n", errNegative},
		{"negative energy", "energy2_input", "-1\n", errNegative},
		{"empty", "power2_input", "", sysfs.ErrEmpty},
		{"garbage", "power2_input", "n/a\n", strconv.ErrSyntax},
		{"fraction", "power2_input", "1.5\n", strconv.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newTree(t, "")
			h.chip("hwmon0", "platform/meter.0", map[string]string{
				"name": "meter\n", "power1_input": "1000000\n", tt.attr: tt.value,
			}, nil)
			r, err := Open(h.fs())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got, err := r.Read(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Read error = %v, want one wrapping %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "meter/"+strings.Split(tt.attr, "_")[0]) {
				t.Errorf("Read error %q does not name the channel", err)
			}
			want := []sensor.Reading{power("meter/power1", "meter power1", semconv.ScopePlatform, 1)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadCanceled(t *testing.T) {
	t.Parallel()
	r, err := Open(sysfs.New(fixture.Root(t, "intel-xeon-2s")))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a canceled context = %v, want context.Canceled", err)
	}
}

func TestParseAttr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		kind  string
		index int
		attr  string
		ok    bool
	}{
		{"power1_average", "power", 1, "average", true},
		{"power1_average_interval", "power", 1, "average_interval", true},
		{"power12_input", "power", 12, "input", true},
		{"energy1_input", "energy", 1, "input", true},
		{"power0_input", "power", 0, "input", true},
		{"power", "", 0, "", false},
		{"power1", "", 0, "", false},
		{"power1_", "", 0, "", false},
		{"power_input", "", 0, "", false},
		{"power01_input", "", 0, "", false},
		{"powerx_input", "", 0, "", false},
		{"temp1_input", "", 0, "", false},
		{"name", "", 0, "", false},
	}
	for _, tt := range tests {
		kind, index, attr, ok := parseAttr(tt.name)
		if kind != tt.kind || index != tt.index || attr != tt.attr || ok != tt.ok {
			t.Errorf("parseAttr(%q) = %q, %d, %q, %t; want %q, %d, %q, %t",
				tt.name, kind, index, attr, ok, tt.kind, tt.index, tt.attr, tt.ok)
		}
	}
}

func TestParsePower(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    float64
		wantErr error
	}{
		{"287000000", 287, nil},
		{"0", 0, nil},
		{"1", 0.000001, nil},
		{"4294967294000", 4294967.294, nil},
		{"4294967295000", 0, errACPIError},
		{"-1", 0, errNegative},
		{"", 0, sysfs.ErrEmpty},
		{"1e6", 0, strconv.ErrSyntax},
		{"99999999999999999999", 0, strconv.ErrRange},
	}
	for _, tt := range tests {
		got, err := parsePower(tt.in)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("parsePower(%q) = %v, %v; want %v, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// fixtureAttrs returns the names and values of the hwmon attribute files of every fixture
// machine, to seed the fuzzers with what kernels write.
func fixtureAttrs(f *testing.F) (names, values []string) {
	f.Helper()
	for _, m := range fixture.Machines {
		chips, _ := filepath.Glob(filepath.Join(fixture.Root(f, m), "sys/class/hwmon/hwmon*"))
		for _, chip := range chips {
			for _, dir := range []string{chip, filepath.Join(chip, "device")} {
				entries, _ := os.ReadDir(dir)
				for _, e := range entries {
					names = append(names, e.Name())
					if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
						values = append(values, strings.TrimSpace(string(b)))
					}
				}
			}
		}
	}
	if len(names) == 0 {
		f.Fatal("no hwmon attributes in the fixtures")
	}
	return names, values
}

func FuzzParseAttr(f *testing.F) {
	names, _ := fixtureAttrs(f)
	for _, s := range append(names, "energy1_input", "power01_input", "power1_") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		kind, index, attr, ok := parseAttr(name)
		if !ok {
			return
		}
		if back := kind + strconv.Itoa(index) + "_" + attr; back != name || index < 0 {
			t.Errorf("parseAttr(%q) = %q, %d, %q, which prints as %q", name, kind, index, attr, back)
		}
	})
}

func FuzzParsePower(f *testing.F) {
	_, values := fixtureAttrs(f)
	for _, s := range append(values, "4294967295000", "-1", "", "16280000") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := parsePower(s)
		if err != nil {
			return
		}
		if w < 0 || w == acpiErrorUW/1e6 {
			t.Errorf("parsePower(%q) = %v W, want an error", s, w)
		}
	})
}

func FuzzParseEnergy(f *testing.F) {
	_, values := fixtureAttrs(f)
	for _, s := range append(values, "123456789", "-1", "", "18446744073709551615") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		uj, err := parseEnergy(s)
		if err != nil {
			return
		}
		if back := strconv.FormatUint(uj, 10); strings.TrimLeft(s, "0") != strings.TrimLeft(back, "0") {
			t.Errorf("parseEnergy(%q) = %d", s, uj)
		}
	})
}

// BenchmarkRead measures one collection of the ACPI power meter of the Intel fixture.
func BenchmarkRead(b *testing.B) {
	r, err := Open(sysfs.New(fixture.Root(b, "intel-xeon-2s")))
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
