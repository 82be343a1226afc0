package cpuidle

import (
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
)

const us = time.Microsecond

func TestReadFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		machine string
		driver  string
		cpus    int
		cpu0    []State
		host    []State // ByName
	}{
		{
			machine: "intel-xeon-2s", driver: "intel_idle", cpus: 16,
			cpu0: []State{
				{"POLL", 0, 25567209, 511344185 * us},
				{"C1", 0, 1240476965, 49619078609 * us},
				{"C1E", 0, 1397104506, 209565676041 * us},
				{"C6", 0, 824380536, 2060951341837 * us},
			},
			host: []State{
				{"POLL", -1, 410886269, 8217725526 * us},
				{"C1", -1, 19650090534, 786003621727 * us},
				{"C1E", -1, 21561093094, 3234163965228 * us},
				{"C6", -1, 14221679542, 35554198874406 * us},
			},
		},
		{
			machine: "amd-epyc", driver: "acpi_idle", cpus: 8,
			cpu0: []State{
				{"POLL", 0, 54483803, 817257050 * us},
				{"C1", 0, 3750935527, 225056131666 * us},
				{"C2", 0, 752773545, 2258320635750 * us},
			},
			host: []State{
				{"POLL", -1, 407935149, 6119027294 * us},
				{"C1", -1, 31038565328, 1862313919944 * us},
				{"C2", -1, 5969834491, 17909503487707 * us},
			},
		},
		{
			// ACPI arm64 server: acpi_idle names _LPI states LPI-N; state0 is WFI.
			machine: "ampere-altra", driver: "acpi_idle", cpus: 80,
			cpu0: []State{
				{"LPI-0", 0, 1802774196, 144221935722 * us},
				{"LPI-1", 0, 550676322, 2202705289760 * us},
			},
			host: []State{
				{"LPI-0", -1, 151408825558, 12112706047809 * us},
				{"LPI-1", -1, 47675507532, 190702030291121 * us},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.machine, func(t *testing.T) {
			t.Parallel()
			r, err := Open(sysfs.New(fixture.Root(t, tt.machine)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			if r.Driver() != tt.driver {
				t.Errorf("Driver() = %q, want %q", r.Driver(), tt.driver)
			}
			got, err := r.Read()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.cpus*len(tt.cpu0) {
				t.Fatalf("Read() returned %d states, want %d CPUs × %d", len(got), tt.cpus, len(tt.cpu0))
			}
			if diff := cmp.Diff(tt.cpu0, got[:len(tt.cpu0)]); diff != "" {
				t.Errorf("Read() of cpu0 (-want +got):\n%s", diff)
			}
			for i, s := range got {
				if want := i / len(tt.cpu0); s.CPU != want || s.Name != tt.cpu0[i%len(tt.cpu0)].Name {
					t.Fatalf("state %d is %s of cpu%d, want %s of cpu%d", i, s.Name, s.CPU, tt.cpu0[i%len(tt.cpu0)].Name, want)
				}
			}
			if diff := cmp.Diff(tt.host, ByName(got)); diff != "" {
				t.Errorf("ByName() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenNotFound(t *testing.T) {
	t.Parallel()
	const cpu = "sys/devices/system/cpu/"
	tests := []struct {
		name   string
		files  map[string]string
		reason string
	}{
		{"kernel without cpuidle", map[string]string{cpu + "cpu0/topology/core_id": "0\n"}, "CONFIG_CPU_IDLE"},
		{"driver none (VM)", map[string]string{cpu + "cpuidle/current_driver": "none\n", cpu + "cpu0/topology/core_id": "0\n"}, `"none"`},
		{"driver but no states", map[string]string{cpu + "cpuidle/current_driver": "acpi_idle\n", cpu + "cpu0/cpuidle/.keep": ""}, "no cpuN/cpuidle/stateK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeTree(t, root, tt.files)
			_, err := Open(sysfs.New(root))
			if !errors.Is(err, sensor.ErrNotFound) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Open() error = %v, want sensor.ErrNotFound saying %s", err, tt.reason)
			}
		})
	}
}

func TestReadEdgeCases(t *testing.T) {
	t.Parallel()
	const cpu = "sys/devices/system/cpu/"
	root := t.TempDir()
	files := map[string]string{cpu + "cpuidle/current_driver": "psci_idle\n"}
	state := func(c, k int, name, usage, time string) {
		d := cpu + "cpu" + strconv.Itoa(c) + "/cpuidle/state" + strconv.Itoa(k) + "/"
		files[d+"name"], files[d+"usage"], files[d+"time"] = name, usage, time
	}
	state(0, 0, "WFI\n", "10\n", "1000\n")
	state(0, 1, "cpu-sleep-0\n", "5\n", "50000\n")
	state(0, 10, "cluster-sleep-0\n", "1\n", "90000\n") // state10 after state1: indexes sort as numbers
	state(1, 0, "WFI\n", "20\n", "2000\n")
	state(1, 1, "cpu-sleep-0\n", "garbage\n", "1\n")
	state(2, 0, "WFI\n", "1\n", "\n")
	state(3, 0, "\n", "7\n", "70\n") // no name: keeps its index
	state(4, 0, "WFI\n", "1\n", "9223372036854776\n")
	state(5, 0, "WFI\n", "1\n", "1\n")
	files[cpu+"cpu5/online"] = "0\n" // offline at Open
	state(6, 0, "WFI\n", "3\n", "30\n")
	writeTree(t, root, files)

	r, err := Open(sysfs.New(root))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if err := os.RemoveAll(filepath.Join(root, cpu, "cpu6", "cpuidle")); err != nil { // offline since Open
		t.Fatal(err)
	}
	got, err := r.Read()
	want := []State{
		{"WFI", 0, 10, 1000 * us},
		{"cpu-sleep-0", 0, 5, 50000 * us},
		{"cluster-sleep-0", 0, 1, 90000 * us},
		{"WFI", 1, 20, 2000 * us},
		{"state0", 3, 7, 70 * us},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Read() (-want +got):\n%s", diff)
	}
	if err == nil {
		t.Fatal("Read() error = nil, want the errors of cpu1, cpu2 and cpu4")
	}
	for _, s := range []string{"cpu1/cpuidle/state1/usage", "cpu2/cpuidle/state0/time", "cpu4/cpuidle/state0/time", "overflows", "read cpuidle"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Read() error %q does not name %s", err, s)
		}
	}
	if strings.Contains(err.Error(), "cpu6") || strings.Contains(err.Error(), "cpu5") {
		t.Errorf("Read() error %q names an offline CPU", err)
	}
	if diff := cmp.Diff([]State{
		{"WFI", -1, 30, 3000 * us},
		{"cpu-sleep-0", -1, 5, 50000 * us},
		{"cluster-sleep-0", -1, 1, 90000 * us},
		{"state0", -1, 7, 70 * us},
	}, ByName(got)); diff != "" {
		t.Errorf("ByName() (-want +got):\n%s", diff)
	}
	if got := ByName(nil); len(got) != 0 {
		t.Errorf("ByName(nil) = %v, want none", got)
	}
}

// BenchmarkRead reads 256 CPUs × 4 states, a large two-socket x86 host under intel_idle.
func BenchmarkRead(b *testing.B) {
	root := b.TempDir()
	files := map[string]string{"sys/devices/system/cpu/cpuidle/current_driver": "intel_idle\n"}
	for c := range 256 {
		for k, name := range []string{"POLL", "C1", "C1E", "C6"} {
			d := "sys/devices/system/cpu/cpu" + strconv.Itoa(c) + "/cpuidle/state" + strconv.Itoa(k) + "/"
			files[d+"name"] = name + "\n"
			files[d+"usage"] = strconv.Itoa(1000000*(k+1)+c) + "\n"
			files[d+"time"] = strconv.Itoa(2000000000*(k+1)+c) + "\n"
		}
	}
	writeTree(b, root, files)
	r, err := Open(sysfs.New(root))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	b.ReportAllocs()
	for b.Loop() {
		if s, err := r.Read(); err != nil || len(s) != 1024 {
			b.Fatal(len(s), err)
		}
	}
}

// writeTree writes files (path below root → content), creating the directories on the way.
func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for rel, data := range files {
		path := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
