package acpi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

func reading(id, name string, scope semconv.Scope, w float64, avg time.Duration) sensor.Reading {
	return sensor.Reading{ID: id, Name: name, Source: semconv.SourceACPI, Scope: scope, PowerW: w, Averaged: avg}
}

const grace = 50 * time.Millisecond

// tree builds a /sys tree of ACPI power meters in a temporary directory, laid out as the
// kernel lays it out: sys/class/hwmon/hwmonN links to
// sys/devices/LNXSYSTM:00/LNXSYBUS:00/<device>/hwmon/hwmonN, whose device link points back to
// the ACPI device.
type tree struct {
	t    testing.TB
	root string
}

func newTree(t testing.TB) *tree {
	t.Helper()
	h := &tree{t: t, root: t.TempDir()}
	h.mkdir("sys/class/hwmon")
	return h
}

// meter adds the meter <device> as hwmonN. With onDevice, the attributes and the name are
// on the ACPI device (the driver as it is since 2009); otherwise in hwmonN/ (the driver
// converted to hwmon_device_register_with_info). A "" value leaves the attribute out.
func (h *tree) meter(hwmonN, device string, onDevice bool, attrs map[string]string) {
	h.t.Helper()
	devDir := filepath.Join("sys/devices/LNXSYSTM:00/LNXSYBUS:00", device)
	hwDir := filepath.Join(devDir, "hwmon", hwmonN)
	h.mkdir(hwDir)
	h.file(filepath.Join(devDir, "hid"), "ACPI000D\n")
	dir := hwDir
	if onDevice {
		dir = devDir
	}
	all := map[string]string{"name": "power_meter\n"}
	for k, v := range attrs {
		all[k] = v
	}
	for name, v := range all {
		if v != "" {
			h.file(filepath.Join(dir, name), v)
		}
	}
	h.link(filepath.Join("../../..", device), filepath.Join(hwDir, "device"))
	h.link(filepath.Join("../../devices/LNXSYSTM:00/LNXSYBUS:00", device, "hwmon", hwmonN),
		filepath.Join("sys/class/hwmon", hwmonN))
}

// chip adds a hwmon chip that is not a meter.
func (h *tree) chip(hwmonN, name string) {
	h.t.Helper()
	dir := filepath.Join("sys/devices/platform/coretemp.0/hwmon", hwmonN)
	h.file(filepath.Join(dir, "name"), name+"\n")
	h.file(filepath.Join(dir, "temp1_input"), "45000\n")
	h.link(filepath.Join("../../devices/platform/coretemp.0/hwmon", hwmonN), filepath.Join("sys/class/hwmon", hwmonN))
}

func (h *tree) mkdir(rel string) {
	h.t.Helper()
	if err := os.MkdirAll(filepath.Join(h.root, rel), 0o755); err != nil {
		h.t.Fatal(err)
	}
}

func (h *tree) link(target, rel string) {
	h.t.Helper()
	if err := os.Symlink(target, filepath.Join(h.root, rel)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *tree) file(rel, content string) {
	h.t.Helper()
	h.mkdir(filepath.Dir(rel))
	if err := os.WriteFile(filepath.Join(h.root, rel), []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *tree) fs() sysfs.FS { return sysfs.New(h.root) }

// avg is a meter's attributes with power1_average set to uw µW.
func avg(uw string, more ...string) map[string]string {
	m := map[string]string{"power1_average": uw + "\n", "power1_average_interval": "1000\n"}
	for i := 0; i+1 < len(more); i += 2 {
		m[more[i]] = more[i+1]
	}
	return m
}

func TestReadMachines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		machine string
		want    []sensor.Reading
	}{
		{
			machine: "intel-xeon-2s",
			want:    []sensor.Reading{reading("ACPI000D:00", "Power Meter", semconv.ScopePlatform, 287, time.Second)},
		},
		{
			machine: "nvidia-grace",
			want: []sensor.Reading{
				reading("cpu-0", "CPU Power Socket 0", semconv.ScopeCPUCore, 111, grace),
				reading("cpu-1", "CPU Power Socket 1", semconv.ScopeCPUCore, 108.72, grace),
				reading("grace-0", "Grace Power Socket 0", semconv.ScopeCPUPackage, 201.5, grace),
				reading("grace-1", "Grace Power Socket 1", semconv.ScopeCPUPackage, 198.24, grace),
				reading("module-0", "Module Power Socket 0", semconv.ScopePlatform, 301.234, grace),
				reading("module-1", "Module Power Socket 1", semconv.ScopePlatform, 296.004, grace),
				reading("sysio-0", "SysIO Power Socket 0", semconv.ScopeIO, 29.812, grace),
				reading("sysio-1", "SysIO Power Socket 1", semconv.ScopeIO, 31.106, grace),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.machine, func(t *testing.T) {
			t.Parallel()
			r, err := Open(sysfs.New(fixture.Root(t, tt.machine)))
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
			if len(r.Skipped()) != 0 {
				t.Errorf("Skipped = %v, want none", r.Skipped())
			}
		})
	}
}

func TestOpenNoMeter(t *testing.T) {
	t.Parallel()
	for _, m := range []string{"amd-epyc", "ampere-altra", "vm-kvm"} {
		t.Run(m, func(t *testing.T) {
			t.Parallel()
			r, err := Open(sysfs.New(fixture.Root(t, m)))
			if !errors.Is(err, sensor.ErrNotFound) || r != nil {
				t.Fatalf("Open = %v, %v; want an error wrapping sensor.ErrNotFound", r, err)
			}
		})
	}
	t.Run("other chips only", func(t *testing.T) {
		t.Parallel()
		h := newTree(t)
		h.chip("hwmon0", "coretemp")
		if _, err := Open(h.fs()); !errors.Is(err, sensor.ErrNotFound) {
			t.Fatalf("Open = %v, want an error wrapping sensor.ErrNotFound", err)
		}
	})
	t.Run("battery meter only", func(t *testing.T) {
		t.Parallel()
		h := newTree(t)
		h.meter("hwmon0", "ACPI000D:00", true, avg("9000000", "power1_is_battery", "1\n"))
		_, err := Open(h.fs())
		if !errors.Is(err, sensor.ErrNotFound) || !strings.Contains(err.Error(), "battery") {
			t.Fatalf("Open = %v, want sensor.ErrNotFound saying why ACPI000D:00 was skipped", err)
		}
	})
}

// TestGraceScopes checks the promise that makes summing safe: no two Grace readings share a
// scope and a socket, so summing a scope adds sockets and never nested rails.
func TestGraceScopes(t *testing.T) {
	t.Parallel()
	r, err := Open(sysfs.New(fixture.Root(t, "nvidia-grace")))
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		scope  semconv.Scope
		socket int
	}
	seen := make(map[key]string)
	perScope := make(map[semconv.Scope]int)
	for _, m := range r.Meters() {
		k := key{m.Scope, m.Socket}
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s both report %s of socket %d", other, m.ID, m.Scope, m.Socket)
		}
		seen[k] = m.ID
		perScope[m.Scope]++
		if !strings.HasSuffix(m.ID, "-"+strconv.Itoa(m.Socket)) {
			t.Errorf("meter %s of socket %d: the ID does not name the socket", m.ID, m.Socket)
		}
	}
	want := map[semconv.Scope]int{
		semconv.ScopePlatform: 2, semconv.ScopeCPUPackage: 2, semconv.ScopeCPUCore: 2, semconv.ScopeIO: 2,
	}
	if diff := cmp.Diff(want, perScope); diff != "" {
		t.Errorf("meters per scope (-want +got):\n%s", diff)
	}
}

func TestReadLayouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		build       func(h *tree)
		want        []sensor.Reading
		wantSkipped []string // devices
	}{
		{
			name: "attributes on the hwmon device (converted driver)",
			build: func(h *tree) {
				h.meter("hwmon3", "ACPI000D:00", false, avg("150000000", "power1_oem_info", "\n"))
			},
			want: []sensor.Reading{reading("ACPI000D:00", "Power Meter", semconv.ScopePlatform, 150, time.Second)},
		},
		{
			name: "ID from the ACPI device, not the hwmon number",
			build: func(h *tree) {
				h.chip("hwmon0", "coretemp")
				h.meter("hwmon7", "ACPI000D:00", true, avg("1000000"))
			},
			want: []sensor.Reading{reading("ACPI000D:00", "Power Meter", semconv.ScopePlatform, 1, time.Second)},
		},
		{
			name: "model number names a meter without oem info",
			build: func(h *tree) {
				h.meter("hwmon1", "ACPI000D:00", true, avg("2000000", "power1_model_number", "PM-1100\n"))
			},
			want: []sensor.Reading{reading("ACPI000D:00", "PM-1100", semconv.ScopePlatform, 2, time.Second)},
		},
		{
			name: "the larger of cap and cap_max bounds the reading",
			build: func(h *tree) {
				h.meter("hwmon1", "ACPI000D:00", true, avg("300000000",
					"power1_cap", "450000000\n", "power1_cap_max", "750000000\n", "power1_cap_min", "100000000\n"))
			},
			want: []sensor.Reading{{
				ID: "ACPI000D:00", Name: "Power Meter", Source: semconv.SourceACPI, Scope: semconv.ScopePlatform,
				PowerW: 300, Averaged: time.Second, MaxW: 750,
			}},
		},
		{
			name: "cap of zero is no bound",
			build: func(h *tree) {
				h.meter("hwmon1", "ACPI000D:00", true, avg("300000000", "power1_cap", "0\n"))
			},
			want: []sensor.Reading{reading("ACPI000D:00", "Power Meter", semconv.ScopePlatform, 300, time.Second)},
		},
		{
			name: "bad averaging interval is unknown",
			build: func(h *tree) {
				h.meter("hwmon1", "ACPI000D:00", true, avg("1000000", "power1_average_interval", "4294967295000\n"))
			},
			want: []sensor.Reading{reading("ACPI000D:00", "Power Meter", semconv.ScopePlatform, 1, 0)},
		},
		{
			name: "second plain meter skipped",
			build: func(h *tree) {
				h.meter("hwmon1", "ACPI000D:01", true, avg("2000000"))
				h.meter("hwmon2", "ACPI000D:00", true, avg("1000000"))
			},
			want:        []sensor.Reading{reading("ACPI000D:00", "Power Meter", semconv.ScopePlatform, 1, time.Second)},
			wantSkipped: []string{"ACPI000D:01"},
		},
		{
			name: "plain meter beside Grace rails skipped",
			build: func(h *tree) {
				h.meter("hwmon0", "ACPI000D:00", true, avg("300000000", "power1_oem_info", "Module Power Socket 0\n"))
				h.meter("hwmon1", "ACPI000D:01", true, avg("400000000", "power1_oem_info", "Board Power\n"))
			},
			want:        []sensor.Reading{reading("module-0", "Module Power Socket 0", semconv.ScopePlatform, 300, time.Second)},
			wantSkipped: []string{"ACPI000D:01"},
		},
		{
			name: "two meters claiming one rail and socket: the first kept",
			build: func(h *tree) {
				h.meter("hwmon0", "ACPI000D:01", true, avg("200000000", "power1_oem_info", "Grace Power Socket 0\n"))
				h.meter("hwmon1", "ACPI000D:00", true, avg("100000000", "power1_oem_info", "Grace Power Socket 0\n"))
				h.meter("hwmon2", "ACPI000D:02", true, avg("100000000", "power1_oem_info", "grace power socket 1\n"))
			},
			want: []sensor.Reading{
				reading("grace-0", "Grace Power Socket 0", semconv.ScopeCPUPackage, 100, time.Second),
				reading("grace-1", "grace power socket 1", semconv.ScopeCPUPackage, 100, time.Second),
			},
			wantSkipped: []string{"ACPI000D:01"},
		},
		{
			name: "cap-only and battery meters skipped",
			build: func(h *tree) {
				h.meter("hwmon0", "ACPI000D:00", true, map[string]string{"power1_cap": "500000000\n"})
				h.meter("hwmon1", "ACPI000D:01", true, avg("9000000", "power1_is_battery", "1\n"))
				h.meter("hwmon2", "ACPI000D:02", true, avg("5000000"))
			},
			want:        []sensor.Reading{reading("ACPI000D:02", "Power Meter", semconv.ScopePlatform, 5, time.Second)},
			wantSkipped: []string{"ACPI000D:00", "ACPI000D:01"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newTree(t)
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
			var skipped []string
			for _, s := range r.Skipped() {
				if s.Reason == "" {
					t.Errorf("%s skipped without a reason", s.Device)
				}
				skipped = append(skipped, s.Device)
			}
			if diff := cmp.Diff(tt.wantSkipped, skipped); diff != "" {
				t.Errorf("Skipped (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadBadValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		value   string
		wantErr error
	}{
		{"firmware error value", "4294967295000\n", errFirmware},
		{"absurd", "160000000000\n", errAbsurd},
		{"negative", "-1000\n", strconv.ErrSyntax},
		{"empty", "", sysfs.ErrEmpty},
		{"garbage", "n/a\n", strconv.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newTree(t)
			h.meter("hwmon0", "ACPI000D:00", true, avg("1000000", "power1_oem_info", "Module Power Socket 0\n"))
			h.meter("hwmon1", "ACPI000D:01", true, map[string]string{
				"power1_oem_info": "Module Power Socket 1\n", "power1_average_interval": "50\n",
			})
			// An empty attribute file is written as such, not left out.
			h.file("sys/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI000D:01/power1_average", tt.value)
			r, err := Open(h.fs())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got, err := r.Read(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Read error = %v, want one wrapping %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "module-1") {
				t.Errorf("Read error %q does not name the meter", err)
			}
			want := []sensor.Reading{reading("module-0", "Module Power Socket 0", semconv.ScopePlatform, 1, time.Second)}
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

func TestInfo(t *testing.T) {
	t.Parallel()
	root := fixture.Root(t, "intel-xeon-2s")
	r, err := Open(sysfs.New(root))
	if err != nil {
		t.Fatal(err)
	}
	dev := filepath.Join(root, "sys/class/hwmon/hwmon1/device")
	want := sensor.Info{Detail: dev + " (ACPI000D:00, accuracy 95%)", Cadence: time.Second}
	if diff := cmp.Diff(want, r.Info()); diff != "" {
		t.Errorf("Info (-want +got):\n%s", diff)
	}

	h := newTree(t)
	h.meter("hwmon0", "ACPI000D:00", true, avg("1000000", "power1_average_interval", "50\n"))
	h.meter("hwmon1", "ACPI000D:01", true, avg("1000000", "power1_is_battery", "1\n"))
	r, err = Open(h.fs())
	if err != nil {
		t.Fatal(err)
	}
	info := r.Info()
	if info.Needs != "" || info.Cadence != 50*time.Millisecond {
		t.Errorf("Info = %+v, want no needs and a 50ms cadence", info)
	}
	if !strings.Contains(info.Detail, "skipped ACPI000D:01: the meter measures a battery") {
		t.Errorf("Info.Detail = %q, want it to say why ACPI000D:01 is skipped", info.Detail)
	}
}

func TestParseAccuracy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"95.0%", 95, false},
		{"95.500%", 95.5, false},
		{"95.50%", 95.05, false}, // the driver does not pad the thousandths
		{"95.5%", 95.005, false},
		{"100.0%", 100, false},
		{"0.0%", 0, false},
		{"100.1%", 0, true},
		{"95%", 0, true},
		{"95.0", 0, true},
		{"95.1000%", 0, true},
		{"-1.0%", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := parseAccuracy(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseAccuracy(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseOEMInfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		id     string
		socket int
		ok     bool
	}{
		{"Module Power Socket 0", "module", 0, true},
		{"Grace Power Socket 1", "grace", 1, true},
		{"CPU Power Socket 3", "cpu", 3, true},
		{"SysIO Power Socket 0", "sysio", 0, true},
		{"  Grace Power Socket 1\n", "grace", 1, true},
		{"", "", 0, false},
		{"Power Meter", "", 0, false},
		{"GPU Power Socket 0", "", 0, false},
		{"Grace Power Socket", "", 0, false},
		{"Grace Power Socket -1", "", 0, false},
		{"Grace Power Socket 256", "", 0, false},
		{"Grace Power Socket 0x1", "", 0, false},
	}
	for _, tt := range tests {
		r, socket, err := parseOEMInfo(tt.in)
		if r.id != tt.id || socket != tt.socket || (err == nil) != tt.ok {
			t.Errorf("parseOEMInfo(%q) = %q, %d, %v; want %q, %d, ok %t", tt.in, r.id, socket, err, tt.id, tt.socket, tt.ok)
		}
		if err != nil && !errors.Is(err, errNotGrace) {
			t.Errorf("parseOEMInfo(%q) error %v does not wrap errNotGrace", tt.in, err)
		}
	}
}

// fixtureAttrs returns the content of every attribute of every fixture machine's ACPI
// meters, to seed the fuzzers with what kernels write.
func fixtureAttrs(f *testing.F) []string {
	f.Helper()
	var values []string
	for _, m := range fixture.Machines {
		dirs, _ := filepath.Glob(filepath.Join(fixture.Root(f, m), "sys/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI000D:*"))
		for _, dir := range dirs {
			attrs, _ := filepath.Glob(filepath.Join(dir, "power1_*"))
			for _, a := range attrs {
				if b, err := os.ReadFile(a); err == nil {
					values = append(values, strings.TrimSpace(string(b)))
				}
			}
		}
	}
	if len(values) == 0 {
		f.Fatal("no ACPI meter attributes in the fixtures")
	}
	return values
}

func FuzzParseOEMInfo(f *testing.F) {
	for _, s := range append(fixtureAttrs(f), "Grace Power Socket 01", "CPU Power Socket 255") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, socket, err := parseOEMInfo(s)
		if err != nil {
			return
		}
		if socket < 0 || socket > maxSocket || !r.scope.Valid() {
			t.Errorf("parseOEMInfo(%q) = %+v, %d", s, r, socket)
		}
		// A Grace meter's ID must be unique per rail and socket.
		if back, _, _ := parseOEMInfo(r.prefix + " Power Socket " + strconv.Itoa(socket)); back != r {
			t.Errorf("parseOEMInfo(%q) = %+v, which does not print back", s, r)
		}
	})
}

func FuzzParseAccuracy(f *testing.F) {
	for _, s := range append(fixtureAttrs(f), "95.50%", "100.999%", "1.%") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pct, err := parseAccuracy(s)
		if err == nil && (pct < 0 || pct > 100) {
			t.Errorf("parseAccuracy(%q) = %v, want 0..100 or an error", s, pct)
		}
	})
}

func FuzzParsePower(f *testing.F) {
	for _, s := range append(fixtureAttrs(f), "4294967295000", "-1", "", "50000000000", "50000000001") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := parsePower(s)
		if err != nil {
			return
		}
		if w < 0 || w > maxUW/1e6 {
			t.Errorf("parsePower(%q) = %v W, want an error", s, w)
		}
	})
}

// BenchmarkRead measures one collection of the eight meters of the NVIDIA Grace fixture.
func BenchmarkRead(b *testing.B) {
	r, err := Open(sysfs.New(fixture.Root(b, "nvidia-grace")))
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
