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
	xgene1     = "platform/APMC0D29:01"
	ina3221    = "platform/3160000.i2c/i2c-0/0-0040"
)

func TestReadMachines(t *testing.T) {
	t.Parallel()
	r, err := Open(sysfs.New(fixture.Root(t, "ampere-altra")))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, err := r.Read(t.Context())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	// temp1 ("SoC Temperature") is no power channel.
	want := []sensor.Reading{
		power("cpu-0", "CPU power", semconv.ScopeCPUPackage, 16.28),
		power("io-0", "IO power", semconv.ScopeIO, 31.9),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Read (-want +got):\n%s", diff)
	}
	if got := r.Name(); got != semconv.SourceHwmon {
		t.Errorf("Name = %q, want %q", got, semconv.SourceHwmon)
	}
}

func TestChannelsAndInfo(t *testing.T) {
	t.Parallel()
	root := fixture.Root(t, "ampere-altra")
	r, err := Open(sysfs.New(root))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "sys/class/hwmon/hwmon0")
	want := []Channel{
		{ID: "cpu-0", Name: "CPU power", Chip: "apm_xgene", Scope: semconv.ScopeCPUPackage, Path: filepath.Join(dir, "power1_input")},
		{ID: "io-0", Name: "IO power", Chip: "apm_xgene", Scope: semconv.ScopeIO, Path: filepath.Join(dir, "power2_input")},
	}
	if diff := cmp.Diff(want, r.Channels()); diff != "" {
		t.Errorf("Channels (-want +got):\n%s", diff)
	}
	wantInfo := sensor.Info{Detail: dir + " (apm_xgene)"}
	if diff := cmp.Diff(wantInfo, r.Info()); diff != "" {
		t.Errorf("Info (-want +got):\n%s", diff)
	}
}

func TestReadLayouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		build       func(h *tree)
		want        []sensor.Reading
		wantSkipped []Skipped
	}{
		{
			name: "2-socket Altra: sockets from the ACPI device order",
			build: func(h *tree) {
				h.chip("hwmon3", xgene1, map[string]string{
					"name":         "apm_xgene\n",
					"power1_input": "20000000\n", "power1_label": "CPU power\n",
					"power2_input": "30000000\n", "power2_label": "IO power\n",
				}, nil)
				h.chip("hwmon1", xgene, map[string]string{
					"name":         "apm_xgene\n",
					"power1_input": "16280000\n", "power1_label": "CPU power\n",
					"power2_input": "31900000\n", "power2_label": "IO power\n",
				}, nil)
			},
			want: []sensor.Reading{
				power("cpu-0", "CPU power", semconv.ScopeCPUPackage, 16.28),
				power("cpu-1", "CPU power", semconv.ScopeCPUPackage, 20),
				power("io-0", "IO power", semconv.ScopeIO, 31.9),
				power("io-1", "IO power", semconv.ScopeIO, 30),
			},
		},
		{
			name: "disabled channel skipped",
			build: func(h *tree) {
				h.chip("hwmon0", xgene, map[string]string{
					"name":         "apm_xgene\n",
					"power1_input": "1000000\n", "power1_label": "CPU power\n", "power1_enable": "0\n",
					"power2_input": "3000000\n", "power2_label": "IO power\n", "power2_enable": "1\n",
				}, nil)
			},
			want: []sensor.Reading{power("io-0", "IO power", semconv.ScopeIO, 3)},
		},
		{
			name: "Jetson INA3221: voltage × current by channel, labels from the device tree",
			build: func(h *tree) {
				h.chip("hwmon1", ina3221, map[string]string{
					"name":      "ina3221\n",
					"in1_input": "5072\n", "in1_label": "VDD_IN\n", "in1_enable": "1\n", "curr1_input": "1104\n",
					"in2_input": "5064\n", "in2_label": "VDD_CPU_GPU_CV\n", "in2_enable": "1\n", "curr2_input": "312\n",
					"in3_input": "5072\n", "in3_label": "VDD_CPU\n", "in3_enable": "0\n", "curr3_input": "0\n",
					// shunt voltages and the summation channel pair with nothing
					"in4_input": "44\n", "in5_input": "12\n", "in6_input": "0\n", "in7_input": "56\n",
					"in7_label": "sum of shunt voltages\n", "curr4_input": "1416\n",
					"shunt1_resistor": "5000\n",
				}, nil)
			},
			want:        []sensor.Reading{power("ina3221/in1", "VDD_IN", semconv.ScopePlatform, 5.599488)},
			wantSkipped: []Skipped{{Chip: "ina3221", Channel: "in2", Name: "VDD_CPU_GPU_CV"}},
		},
		{
			name: "other chips: voltage and current paired by label, power read directly",
			build: func(h *tree) {
				h.chip("hwmon2", "i2c-1/1-0041", map[string]string{
					"name":      "ina3221\n",
					"in1_input": "1000\n", "in1_label": "VDD_CPU\n", "curr1_input": "2000\n",
				}, nil)
				h.chip("hwmon3", "i2c-1/1-0040", map[string]string{
					"name":      "ina226\n",
					"in0_input": "2\n", "in1_input": "12000\n", "curr1_input": "500\n",
					"power1_input": "6000000\n",
				}, nil)
			},
			want:        []sensor.Reading{power("ina3221/in1", "VDD_CPU", semconv.ScopeCPUCore, 2)},
			wantSkipped: []Skipped{{Chip: "ina226", Channel: "power1"}},
		},
		{
			name: "ACPI power meter left to package acpi",
			build: func(h *tree) {
				h.chip("hwmon0", acpiMeter0, nil, map[string]string{
					"name": "power_meter\n", "power1_average": "98000000\n", "power1_oem_info": "Grace Power Socket 0\n",
				})
				h.chip("hwmon1", acpiMeter1, map[string]string{"name": "power_meter\n"}, map[string]string{
					"power1_average": "1000000\n",
				})
				h.chip("hwmon2", xgene, map[string]string{
					"name": "apm_xgene\n", "power1_input": "1000000\n", "power1_label": "CPU power\n",
				}, nil)
			},
			want: []sensor.Reading{power("cpu-0", "CPU power", semconv.ScopeCPUPackage, 1)},
		},
		{
			name: "energy counter of a known rail",
			build: func(h *tree) {
				h.chip("hwmon0", xgene, map[string]string{
					"name": "apm_xgene\n", "energy1_input": "123456789\n", "energy1_label": "CPU power\n",
				}, nil)
			},
			want: []sensor.Reading{energy("cpu-0", "CPU power", semconv.ScopeCPUPackage, 123456789)},
		},
		{
			name: "average preferred to input; attributes on the device read once",
			build: func(h *tree) {
				h.chip("hwmon0", xgene,
					map[string]string{"name": "apm_xgene\n", "power1_input": "1000000\n", "power1_average": "2000000\n", "power1_label": "CPU power\n"},
					map[string]string{"power1_average": "8000000\n"})
			},
			want: []sensor.Reading{power("cpu-0", "CPU power", semconv.ScopeCPUPackage, 2)},
		},
		{
			name: "unknown chips skipped, known ones kept",
			build: func(h *tree) {
				h.chip("hwmon0", "platform/meter.0", map[string]string{
					"name": "meter\n", "power1_input": "1000000\n", "power1_label": "Board\n", "energy2_input": "5\n",
				}, nil)
				h.chip("hwmon5", "platform/meter.1", map[string]string{"power1_input": "1000000\n"}, nil)
				h.chip("hwmon6", xgene, map[string]string{
					"name": "apm_xgene\n", "power1_input": "7000000\n", "power1_label": "CPU power\n",
					"power3_input": "1\n", "power3_label": "DIMM power\n",
				}, nil)
			},
			want: []sensor.Reading{power("cpu-0", "CPU power", semconv.ScopeCPUPackage, 7)},
			wantSkipped: []Skipped{
				{Chip: "apm_xgene", Channel: "power3", Name: "DIMM power"},
				{Chip: "hwmon5", Channel: "power1"},
				{Chip: "meter", Channel: "energy2"},
				{Chip: "meter", Channel: "power1", Name: "Board"},
			},
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
			skipped := r.Skipped()
			for i := range skipped {
				if skipped[i].Reason == "" {
					t.Errorf("%+v skipped without a reason", skipped[i])
				}
				skipped[i].Reason = ""
			}
			if diff := cmp.Diff(tt.wantSkipped, skipped); diff != "" {
				t.Errorf("Skipped (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenNotFound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func(h *tree)
		want  string // in the error
	}{
		{"no hwmon class", func(h *tree) {
			if err := os.Remove(filepath.Join(h.root, "sys/class/hwmon")); err != nil {
				h.t.Fatal(err)
			}
		}, "no hwmon driver"},
		{"empty hwmon class", func(*tree) {}, "no known power"},
		{"temperatures only", func(h *tree) {
			h.chip("hwmon0", "platform/coretemp.0", map[string]string{"name": "coretemp\n", "temp1_input": "45000\n"}, nil)
		}, "no known power"},
		{"disabled channels only", func(h *tree) {
			h.chip("hwmon0", xgene, map[string]string{"name": "apm_xgene\n", "power1_input": "1\n", "power1_label": "CPU power\n", "power1_enable": "0\n"}, nil)
		}, "no known power"},
		{"unknown chip only: reported", func(h *tree) {
			h.chip("hwmon0", "platform/meter.0", map[string]string{"name": "meter\n", "power1_input": "1\n"}, nil)
		}, "meter power1 skipped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newTree(t, "")
			tt.build(h)
			r, err := Open(h.fs())
			if !errors.Is(err, sensor.ErrNotFound) || r != nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open = %v, %v; want an error wrapping sensor.ErrNotFound saying %q", r, err, tt.want)
			}
		})
	}
	// Machines without a known hwmon power channel; the ACPI meters of intel-xeon-2s and
	// nvidia-grace belong to package acpi.
	for _, m := range []string{"intel-xeon-2s", "amd-epyc", "nvidia-grace", "vm-kvm"} {
		if _, err := Open(sysfs.New(fixture.Root(t, m))); !errors.Is(err, sensor.ErrNotFound) {
			t.Errorf("Open(%s) = %v, want an error wrapping sensor.ErrNotFound", m, err)
		}
	}
}

func TestReadBadValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		attrs   map[string]string
		wantErr error
	}{
		{"negative power", map[string]string{"power2_input": "-1000\n"}, errNegative},
		{"negative energy", map[string]string{"power2_input": "", "energy2_input": "-1\n"}, errNegative},
		{"empty", map[string]string{"power2_input": ""}, sysfs.ErrEmpty},
		{"garbage", map[string]string{"power2_input": "n/a\n"}, strconv.ErrSyntax},
		{"fraction", map[string]string{"power2_input": "1.5\n"}, strconv.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newTree(t, "")
			attrs := map[string]string{
				"name": "apm_xgene\n", "power1_input": "1000000\n", "power1_label": "CPU power\n",
				"power2_label": "IO power\n", "energy2_label": "IO power\n",
			}
			for k, v := range tt.attrs {
				attrs[k] = v
			}
			h.chip("hwmon0", xgene, attrs, nil)
			r, err := Open(h.fs())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got, err := r.Read(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Read error = %v, want one wrapping %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "io-0") {
				t.Errorf("Read error %q does not name the channel", err)
			}
			want := []sensor.Reading{power("cpu-0", "CPU power", semconv.ScopeCPUPackage, 1)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadCanceled(t *testing.T) {
	t.Parallel()
	r, err := Open(sysfs.New(fixture.Root(t, "ampere-altra")))
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
		{"in1_input", "in", 1, "input", true},
		{"curr4_input", "curr", 4, "input", true},
		{"intrusion0_alarm", "", 0, "", false},
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

func TestParseVI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mv, ma  string
		want    float64
		wantErr error
	}{
		{"5072", "1104", 5.599488, nil},
		{"0", "0", 0, nil},
		{"-5", "-5", 0.000025, nil},
		{"5000", "-1", 0, errNegative},
		{"1000000001", "1", 0, errRange},
		{"", "1", 0, sysfs.ErrEmpty},
		{"1", "x", 0, strconv.ErrSyntax},
	}
	for _, tt := range tests {
		got, err := parseVI(tt.mv, tt.ma)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("parseVI(%q, %q) = %v, %v; want %v, %v", tt.mv, tt.ma, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseVI(f *testing.F) {
	_, values := fixtureAttrs(f)
	for _, v := range append(values, "5072", "-1", "", "1000000000") {
		f.Add(v, "1104")
	}
	f.Fuzz(func(t *testing.T, mv, ma string) {
		w, err := parseVI(mv, ma)
		if err == nil && (w < 0 || w > float64(maxMilli)*maxMilli/1e6) {
			t.Errorf("parseVI(%q, %q) = %v W", mv, ma, w)
		}
	})
}

// BenchmarkRead measures one collection of the xgene-hwmon channels of the Ampere fixture.
func BenchmarkRead(b *testing.B) {
	r, err := Open(sysfs.New(fixture.Root(b, "ampere-altra")))
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
