package rapl

import (
	"context"
	"errors"
	"io/fs"
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

// Max energy ranges (µJ) as real machines show them.
const (
	intelMax     = 262143328850
	intelDRAMMax = 65712999613
	amdMax       = 65532610987
)

func counter(id, name string, scope semconv.Scope, uj, maxUJ uint64) sensor.Reading {
	return sensor.Reading{
		ID: id, Name: name, Source: semconv.SourceRAPL, Scope: scope,
		Counter: true, EnergyUJ: uj, MaxUJ: maxUJ,
	}
}

// powercap builds a /sys tree with powercap zones in a temporary directory, laid out as the
// kernel lays it out: zones below sys/devices/virtual/powercap, subzones inside their parent,
// and symlinks from sys/class/powercap.
type powercap struct {
	t    testing.TB
	root string
}

func newPowercap(t testing.TB, root string) *powercap {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	p := &powercap{t: t, root: root}
	p.file("sys/class/powercap/.keep", "")
	return p
}

// zone adds the zone at rel below sys/devices/virtual/powercap ("intel-rapl/intel-rapl:0"),
// links it from sys/class/powercap unless link is false, and returns its directory.
func (p *powercap) zone(rel, name, energyUJ string, link bool) string {
	p.t.Helper()
	dir := filepath.Join("sys/devices/virtual/powercap", rel)
	p.file(filepath.Join(filepath.Dir(dir), "enabled"), "1\n")
	p.file(filepath.Join(dir, "name"), name+"\n")
	p.file(filepath.Join(dir, "energy_uj"), energyUJ)
	p.file(filepath.Join(dir, "max_energy_range_uj"), strconv.Itoa(intelMax)+"\n")
	p.file(filepath.Join(dir, "enabled"), "1\n")
	if link {
		base := filepath.Base(rel)
		target := filepath.Join("../../devices/virtual/powercap", rel)
		if err := os.Symlink(target, filepath.Join(p.root, "sys/class/powercap", base)); err != nil {
			p.t.Fatal(err)
		}
	}
	return filepath.Join(p.root, dir)
}

func (p *powercap) file(rel, content string) {
	p.t.Helper()
	path := filepath.Join(p.root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p *powercap) remove(rel string) {
	p.t.Helper()
	if err := os.Remove(filepath.Join(p.root, rel)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *powercap) fs() sysfs.FS { return sysfs.New(p.root) }

func TestReadMachines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		machine string
		want    []sensor.Reading
	}{
		{
			machine: "intel-xeon-2s",
			// intel-rapl:1 is psys and package-1 is intel-rapl:2; the MMIO copy of
			// package-0 is not read twice.
			want: []sensor.Reading{
				counter("dram-0", "dram", semconv.ScopeDRAM, 21483164337, intelDRAMMax),
				counter("dram-1", "dram", semconv.ScopeDRAM, 19875400126, intelDRAMMax),
				counter("package-0", "package-0", semconv.ScopeCPUPackage, 83772591546, intelMax),
				counter("package-1", "package-1", semconv.ScopeCPUPackage, 79127355810, intelMax),
				counter("psys", "psys", semconv.ScopePlatform, 195367204420, intelMax),
			},
		},
		{
			machine: "amd-epyc",
			want: []sensor.Reading{
				counter("package-0", "package-0", semconv.ScopeCPUPackage, 31566329452, amdMax),
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
			if got := r.Name(); got != semconv.SourceRAPL {
				t.Errorf("Name = %q, want %q", got, semconv.SourceRAPL)
			}
		})
	}
}

func TestZones(t *testing.T) {
	t.Parallel()
	root := fixture.Root(t, "intel-xeon-2s")
	r, err := Open(sysfs.New(root))
	if err != nil {
		t.Fatal(err)
	}
	class := filepath.Join(root, "sys/class/powercap")
	want := []Zone{
		{ID: "dram-0", Name: "dram", Scope: semconv.ScopeDRAM, Socket: 0, Path: filepath.Join(class, "intel-rapl:0:0"), MaxUJ: intelDRAMMax},
		{ID: "dram-1", Name: "dram", Scope: semconv.ScopeDRAM, Socket: 1, Path: filepath.Join(class, "intel-rapl:2:0"), MaxUJ: intelDRAMMax},
		{ID: "package-0", Name: "package-0", Scope: semconv.ScopeCPUPackage, Socket: 0, Path: filepath.Join(class, "intel-rapl:0"), MaxUJ: intelMax},
		{ID: "package-1", Name: "package-1", Scope: semconv.ScopeCPUPackage, Socket: 1, Path: filepath.Join(class, "intel-rapl:2"), MaxUJ: intelMax},
		{ID: "psys", Name: "psys", Scope: semconv.ScopePlatform, Socket: -1, Path: filepath.Join(class, "intel-rapl:1"), MaxUJ: intelMax},
	}
	if diff := cmp.Diff(want, r.Zones()); diff != "" {
		t.Errorf("Zones (-want +got):\n%s", diff)
	}
	// Zones returns a copy: the Reader's own zones are not the caller's to change.
	r.Zones()[0].ID = "changed"
	if got := r.Zones()[0].ID; got != "dram-0" {
		t.Errorf("after changing the returned slice, Zones()[0].ID = %q", got)
	}
}

// TestReadLayouts covers machines other than the fixtures, built in temporary directories.
func TestReadLayouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func(p *powercap)
		want  []sensor.Reading
	}{
		{
			name: "subzone only inside its parent",
			build: func(p *powercap) {
				p.zone("intel-rapl/intel-rapl:0", "package-0", "100", true)
				p.zone("intel-rapl/intel-rapl:0/intel-rapl:0:0", "dram", "20", false)
			},
			want: []sensor.Reading{
				counter("dram-0", "dram", semconv.ScopeDRAM, 20, intelMax),
				counter("package-0", "package-0", semconv.ScopeCPUPackage, 100, intelMax),
			},
		},
		{
			name: "mmio only",
			build: func(p *powercap) {
				p.zone("intel-rapl-mmio/intel-rapl-mmio:0", "package-0", "100", true)
				p.zone("intel-rapl-mmio/intel-rapl-mmio:0/intel-rapl-mmio:0:0", "dram", "20", true)
			},
			want: []sensor.Reading{
				counter("dram-0", "dram", semconv.ScopeDRAM, 20, intelMax),
				counter("package-0", "package-0", semconv.ScopeCPUPackage, 100, intelMax),
			},
		},
		{
			name: "mmio beside msr keeps only what msr lacks",
			build: func(p *powercap) {
				p.zone("intel-rapl/intel-rapl:0", "package-0", "100", true)
				p.zone("intel-rapl-mmio/intel-rapl-mmio:0", "package-0", "101", true)
				p.zone("intel-rapl-mmio/intel-rapl-mmio:0/intel-rapl-mmio:0:0", "dram", "20", true)
			},
			want: []sensor.Reading{
				counter("dram-0", "dram", semconv.ScopeDRAM, 20, intelMax),
				counter("package-0", "package-0", semconv.ScopeCPUPackage, 100, intelMax),
			},
		},
		{
			name: "die zones",
			build: func(p *powercap) {
				p.zone("intel-rapl/intel-rapl:0", "package-0-die-0", "100", true)
				p.zone("intel-rapl/intel-rapl:0/intel-rapl:0:0", "dram", "10", true)
				p.zone("intel-rapl/intel-rapl:1", "package-0-die-1", "200", true)
				p.zone("intel-rapl/intel-rapl:1/intel-rapl:1:0", "dram", "20", true)
			},
			want: []sensor.Reading{
				counter("dram-0-die-0", "dram", semconv.ScopeDRAM, 10, intelMax),
				counter("dram-0-die-1", "dram", semconv.ScopeDRAM, 20, intelMax),
				counter("package-0-die-0", "package-0-die-0", semconv.ScopeCPUPackage, 100, intelMax),
				counter("package-0-die-1", "package-0-die-1", semconv.ScopeCPUPackage, 200, intelMax),
			},
		},
		{
			name: "client: core kept, uncore skipped",
			build: func(p *powercap) {
				p.zone("intel-rapl/intel-rapl:0", "package-0", "100", true)
				p.zone("intel-rapl/intel-rapl:0/intel-rapl:0:0", "core", "60", true)
				p.zone("intel-rapl/intel-rapl:0/intel-rapl:0:1", "uncore", "5", true)
				p.zone("intel-rapl/intel-rapl:1", "psys", "300", true)
			},
			want: []sensor.Reading{
				counter("core-0", "core", semconv.ScopeCPUCore, 60, intelMax),
				counter("package-0", "package-0", semconv.ScopeCPUPackage, 100, intelMax),
				counter("psys", "psys", semconv.ScopePlatform, 300, intelMax),
			},
		},
		{
			name: "socket from the parent's name, not the index",
			build: func(p *powercap) {
				p.zone("intel-rapl/intel-rapl:0", "package-1", "100", true)
				p.zone("intel-rapl/intel-rapl:0/intel-rapl:0:0", "dram", "20", true)
			},
			want: []sensor.Reading{
				counter("dram-1", "dram", semconv.ScopeDRAM, 20, intelMax),
				counter("package-1", "package-1", semconv.ScopeCPUPackage, 100, intelMax),
			},
		},
		{
			name: "unreadable max range, unknown and nameless zones",
			build: func(p *powercap) {
				p.zone("intel-rapl/intel-rapl:0", "package-0", "100", true)
				p.remove("sys/devices/virtual/powercap/intel-rapl/intel-rapl:0/max_energy_range_uj")
				p.zone("intel-rapl/intel-rapl:1", "gpu-7", "5", true)
				p.zone("intel-rapl/intel-rapl:2", "package-2", "5", true)
				p.remove("sys/devices/virtual/powercap/intel-rapl/intel-rapl:2/name")
				p.zone("dtpm/dtpm:0", "package-3", "5", true)
			},
			want: []sensor.Reading{
				counter("package-0", "package-0", semconv.ScopeCPUPackage, 100, 0),
			},
		},
		{
			name: "counter with trailing newline and at zero",
			build: func(p *powercap) {
				p.zone("intel-rapl/intel-rapl:0", "package-0", "0\n", true)
			},
			want: []sensor.Reading{
				counter("package-0", "package-0", semconv.ScopeCPUPackage, 0, intelMax),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newPowercap(t, "")
			tt.build(p)
			r, err := Open(p.fs())
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
		build func(t *testing.T) string
	}{
		{"no sys", func(t *testing.T) string { return t.TempDir() }},
		{"empty powercap", func(t *testing.T) string { return newPowercap(t, "").root }},
		{"control type only", func(t *testing.T) string {
			p := newPowercap(t, "")
			p.file("sys/devices/virtual/powercap/intel-rapl/enabled", "0\n")
			if err := os.Symlink("../../devices/virtual/powercap/intel-rapl", filepath.Join(p.root, "sys/class/powercap/intel-rapl")); err != nil {
				t.Fatal(err)
			}
			return p.root
		}},
		{"uncore only", func(t *testing.T) string {
			p := newPowercap(t, "")
			p.zone("intel-rapl/intel-rapl:0", "uncore", "1", true)
			return p.root
		}},
		{"other powercap drivers only", func(t *testing.T) string {
			p := newPowercap(t, "")
			p.zone("dtpm/dtpm:0", "package-0", "1", true)
			return p.root
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Open(sysfs.New(tt.build(t)))
			if !errors.Is(err, sensor.ErrNotFound) {
				t.Fatalf("Open = %v, %v; want an error wrapping sensor.ErrNotFound", r, err)
			}
			if r != nil {
				t.Errorf("Open returned a Reader with its error")
			}
			if !strings.Contains(err.Error(), "intel_rapl_common") {
				t.Errorf("error %q does not give the reason", err)
			}
		})
	}
}

func TestReadBadCounter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		wantErr error
	}{
		{"empty", "", sysfs.ErrEmpty},
		{"newline only", "\n", sysfs.ErrEmpty},
		{"garbage", "12ab\n", strconv.ErrSyntax},
		{"negative", "-5\n", strconv.ErrSyntax},
		{"beyond 64 bits", "18446744073709551616\n", strconv.ErrRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newPowercap(t, "")
			p.zone("intel-rapl/intel-rapl:0", "package-0", "100\n", true)
			p.zone("intel-rapl/intel-rapl:1", "package-1", tt.content, true)
			r, err := Open(p.fs())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got, err := r.Read(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Read error = %v, want one wrapping %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "package-1") {
				t.Errorf("Read error %q does not name the zone", err)
			}
			want := []sensor.Reading{counter("package-0", "package-0", semconv.ScopeCPUPackage, 100, intelMax)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
		})
	}
}

// A counter that is only unreadable now (empty while the driver starts) does not stop Open:
// only permission errors, which need an operator, do.
func TestOpenAllCountersEmpty(t *testing.T) {
	t.Parallel()
	p := newPowercap(t, "")
	p.zone("intel-rapl/intel-rapl:0", "package-0", "", true)
	r, err := Open(p.fs())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, err := r.Read(t.Context())
	if !errors.Is(err, sysfs.ErrEmpty) || len(got) != 0 {
		t.Errorf("Read = %v, %v; want no reading and an error wrapping sysfs.ErrEmpty", got, err)
	}
}

func TestReadCanceled(t *testing.T) {
	t.Parallel()
	r, err := Open(sysfs.New(fixture.Root(t, "amd-epyc")))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a canceled context = %v, want context.Canceled", err)
	}
}

// The counters advance between readings and are read again each time, not cached.
func TestReadAdvances(t *testing.T) {
	t.Parallel()
	root := fixture.Copy(t, "amd-epyc")
	r, err := Open(sysfs.New(root))
	if err != nil {
		t.Fatal(err)
	}
	rel := "sys/devices/virtual/powercap/intel-rapl/intel-rapl:0/energy_uj"
	if err := fixture.WriteFile(root, rel, []byte("1234\n")); err != nil {
		t.Fatal(err)
	}
	got, err := r.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].EnergyUJ != 1234 {
		t.Errorf("Read after the counter moved = %+v, want EnergyUJ 1234", got)
	}
}

func TestParseZoneName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		kind        string
		socket, die int
		wantErr     bool
	}{
		{name: "package-0", kind: "package", socket: 0, die: -1},
		{name: "package-12", kind: "package", socket: 12, die: -1},
		{name: "package-1-die-3", kind: "package", socket: 1, die: 3},
		{name: "dram", kind: "dram", socket: -1, die: -1},
		{name: "core", kind: "core", socket: -1, die: -1},
		{name: "uncore", kind: "uncore", socket: -1, die: -1},
		{name: "psys", kind: "psys", socket: -1, die: -1},
		{name: "", wantErr: true},
		{name: "package", wantErr: true},
		{name: "package-", wantErr: true},
		{name: "package-01", wantErr: true},
		{name: "package--1", wantErr: true},
		{name: "package-+1", wantErr: true},
		{name: "package-0-die-", wantErr: true},
		{name: "package-0-die-x", wantErr: true},
		{name: "package-0-die-1-die-2", wantErr: true},
		{name: "Package-0", wantErr: true},
		{name: "dram-0", wantErr: true},
		{name: "package-99999999999999999999", wantErr: true},
	}
	for _, tt := range tests {
		kind, socket, die, err := parseZoneName(tt.name)
		if tt.wantErr {
			if !errors.Is(err, errZoneName) {
				t.Errorf("parseZoneName(%q) = %q, %d, %d, %v; want errZoneName", tt.name, kind, socket, die, err)
			}
			continue
		}
		if err != nil || kind != tt.kind || socket != tt.socket || die != tt.die {
			t.Errorf("parseZoneName(%q) = %q, %d, %d, %v; want %q, %d, %d", tt.name, kind, socket, die, err, tt.kind, tt.socket, tt.die)
		}
	}
}

func TestParseZoneDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base string
		want zoneDir
		ok   bool
	}{
		{"intel-rapl:0", zoneDir{parent: 0, sub: -1}, true},
		{"intel-rapl:2:0", zoneDir{parent: 2, sub: 0}, true},
		{"intel-rapl:10:1", zoneDir{parent: 10, sub: 1}, true},
		{"intel-rapl-mmio:0", zoneDir{mmio: true, parent: 0, sub: -1}, true},
		{"intel-rapl-mmio:0:1", zoneDir{mmio: true, parent: 0, sub: 1}, true},
		{"intel-rapl", zoneDir{}, false},
		{"intel-rapl-mmio", zoneDir{}, false},
		{"intel-rapl:", zoneDir{}, false},
		{"intel-rapl:0:", zoneDir{}, false},
		{"intel-rapl:0:0:0", zoneDir{}, false},
		{"intel-rapl:a", zoneDir{}, false},
		{"dtpm:0", zoneDir{}, false},
	}
	for _, tt := range tests {
		got, ok := parseZoneDir(tt.base)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseZoneDir(%q) = %+v, %t; want %+v, %t", tt.base, got, ok, tt.want, tt.ok)
		}
	}
}

// fixtureNames returns the base names of the files called file and of the entries of
// sys/class/powercap in every fixture machine, to seed the fuzzers with what kernels write.
func fixtureNames(f *testing.F) (names, dirs []string) {
	f.Helper()
	for _, m := range fixture.Machines {
		root := fixture.Root(f, m)
		entries, err := os.ReadDir(filepath.Join(root, "sys/class/powercap"))
		if err != nil {
			continue // a machine without RAPL
		}
		for _, e := range entries {
			dirs = append(dirs, e.Name())
		}
		err = filepath.WalkDir(filepath.Join(root, "sys/devices/virtual/powercap"), func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "name" {
				if b, err := os.ReadFile(path); err == nil {
					names = append(names, strings.TrimSpace(string(b)))
				}
			}
			return err
		})
		if err != nil {
			f.Fatal(err)
		}
	}
	return names, dirs
}

func FuzzParseZoneName(f *testing.F) {
	names, _ := fixtureNames(f)
	for _, s := range append(names, "package-0-die-1", "core", "uncore", "package-01", "package--1", "") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		kind, socket, die, err := parseZoneName(name)
		if err != nil {
			return
		}
		// What parses prints back to itself: the ID built from it cannot alias another zone.
		var back string
		switch {
		case kind == kindPackage && die >= 0:
			back = "package-" + strconv.Itoa(socket) + "-die-" + strconv.Itoa(die)
		case kind == kindPackage:
			back = "package-" + strconv.Itoa(socket)
		default:
			back = kind
		}
		if back != name {
			t.Errorf("parseZoneName(%q) = %q, %d, %d, which prints as %q", name, kind, socket, die, back)
		}
	})
}

func FuzzParseZoneDir(f *testing.F) {
	_, dirs := fixtureNames(f)
	for _, s := range append(dirs, "intel-rapl-mmio:0:1", "intel-rapl:0:", "dtpm:0") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, base string) {
		d, ok := parseZoneDir(base)
		if !ok {
			return
		}
		back := "intel-rapl:"
		if d.mmio {
			back = "intel-rapl-mmio:"
		}
		back += strconv.Itoa(d.parent)
		if d.sub >= 0 {
			back += ":" + strconv.Itoa(d.sub)
		}
		if back != base || d.parent < 0 || d.sub < -1 {
			t.Errorf("parseZoneDir(%q) = %+v, which prints as %q", base, d, back)
		}
	})
}

// BenchmarkRead measures one collection of the 5 zones of a 2-socket Intel server, the cost
// the agent pays every interval.
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

func TestInfo(t *testing.T) {
	t.Parallel()
	root := fixture.Root(t, "amd-epyc")
	r, err := Open(sysfs.New(root))
	if err != nil {
		t.Fatal(err)
	}
	want := sensor.Info{
		Detail: filepath.Join(root, "sys/class/powercap/intel-rapl:0") + " (package-0)",
		Needs:  needs,
	}
	if diff := cmp.Diff(want, r.Info()); diff != "" {
		t.Errorf("Info (-want +got):\n%s", diff)
	}
	for _, s := range []string{"root", "CVE-2020-8694", "deploy/udev/"} {
		if !strings.Contains(r.Info().Needs, s) {
			t.Errorf("Info().Needs = %q, want it to mention %q", r.Info().Needs, s)
		}
	}
}
