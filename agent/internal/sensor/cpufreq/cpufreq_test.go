package cpufreq

import (
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
)

func TestReadFixtures(t *testing.T) {
	t.Parallel()
	ampere := make([]Freq, 80)
	for i := range ampere {
		ampere[i] = Freq{CPU: i, Hz: []float64{3.0e9, 2.99e9, 1.0e9, 2.0e9, 3.0e9}[i%5]}
	}
	tests := []struct {
		machine string
		want    []Freq
		mean    float64
	}{
		{
			// intel_pstate: APERF/MPERF clocks from 0.8 GHz (idle) to the 3.2 GHz turbo.
			machine: "intel-xeon-2s",
			want: fromKHz(2000001, 3199998, 2800004, 2000000, 1999997, 3099995, 800000, 2400003,
				2000002, 3199998, 2799996, 2000001, 1999999, 3099997, 800002, 2399998),
			mean: 36599991e3 / 16,
		},
		{
			// acpi-cpufreq: boost clocks above cpuinfo_max_freq (2.45 GHz) show up.
			machine: "amd-epyc",
			want:    fromKHz(2450000, 3243612, 1500000, 2987331, 2450000, 3412009, 1500000, 2000000),
			mean:    19542952e3 / 8,
		},
		{machine: "ampere-altra", want: ampere, mean: 2.398e9},
	}
	for _, tt := range tests {
		t.Run(tt.machine, func(t *testing.T) {
			t.Parallel()
			r, err := Open(sysfs.New(fixture.Root(t, tt.machine)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			got, err := r.Read()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Read() (-want +got):\n%s", diff)
			}
			if m := Mean(got); abs(m-tt.mean) > 1 {
				t.Errorf("Mean() = %f Hz, want %f", m, tt.mean)
			}
		})
	}
}

func TestOpenNotFound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		files  map[string]string
		reason string
	}{
		{"no sys at all (container without /sys)", nil, "no "},
		{
			// A KVM guest or a Graviton instance: CPUs, topology, no cpufreq.
			"virtual machine",
			map[string]string{
				"sys/devices/system/cpu/online":                            "0-1\n",
				"sys/devices/system/cpu/cpu0/topology/core_id":             "0\n",
				"sys/devices/system/cpu/cpu1/topology/core_id":             "1\n",
				"sys/devices/system/cpu/cpuidle/current_driver":            "none\n",
				"sys/devices/system/cpu/cpu1/online":                       "1\n",
				"sys/devices/system/cpu/cpu0/topology/physical_package_id": "0\n",
			},
			"no cpufreq driver",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeTree(t, root, tt.files)
			_, err := Open(sysfs.New(root))
			if !errors.Is(err, sensor.ErrNotFound) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Open() error = %v, want sensor.ErrNotFound saying %q", err, tt.reason)
			}
		})
	}
}

func TestReadEdgeCases(t *testing.T) {
	t.Parallel()
	const cpu = "sys/devices/system/cpu/"
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		cpu + "cpu0/cpufreq/scaling_cur_freq":  "2000000\n",
		cpu + "cpu1/cpufreq/scaling_cur_freq":  "not a number\n",
		cpu + "cpu2/cpufreq/scaling_cur_freq":  "",
		cpu + "cpu3/cpufreq/scaling_cur_freq":  "0\n", // a driver that cannot tell
		cpu + "cpu4/cpufreq/scaling_cur_freq":  "1500000 \n",
		cpu + "cpu5/cpufreq/scaling_cur_freq":  "3000000\n",
		cpu + "cpu5/online":                    "0\n", // offline at Open: left out
		cpu + "cpu6/cpufreq/scaling_cur_freq":  "3000000\n",
		cpu + "cpu7/online":                    "1\n", // online, no policy: left out
		cpu + "cpu10/cpufreq/scaling_cur_freq": strings.Repeat("9", 40) + "\n",
		cpu + "cpu11/cpufreq/scaling_cur_freq": "18446744073709551616\n", // 2^64
	})
	r, err := Open(sysfs.New(root))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if diff := cmp.Diff([]int{0, 1, 2, 3, 4, 6, 10, 11}, r.CPUs()); diff != "" {
		t.Errorf("CPUs() (-want +got):\n%s", diff)
	}
	// cpu6 goes offline after Open: its policy directory goes away with it.
	if err := os.RemoveAll(filepath.Join(root, cpu, "cpu6")); err != nil {
		t.Fatal(err)
	}
	got, err := r.Read()
	want := []Freq{{0, 2e9}, {4, 1.5e9}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Read() (-want +got):\n%s", diff)
	}
	if err == nil {
		t.Fatal("Read() error = nil, want the errors of cpu1, cpu2, cpu10 and cpu11")
	}
	for _, s := range []string{"cpu1/", "cpu2/", "cpu10/", "cpu11/", "read cpufreq"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Read() error %q does not name %s", err, s)
		}
	}
	if strings.Contains(err.Error(), "cpu6/") || strings.Contains(err.Error(), "cpu3/") {
		t.Errorf("Read() error %q names an offline CPU or a 0 reading", err)
	}
	if !errors.Is(err, sysfs.ErrEmpty) || !errors.Is(err, sysfs.ErrSyntax) {
		t.Errorf("Read() error %q does not wrap ErrEmpty and ErrSyntax", err)
	}

	// The next reading reuses the slice and sees new values.
	writeTree(t, root, map[string]string{cpu + "cpu0/cpufreq/scaling_cur_freq": "2100000\n"})
	got, _ = r.Read()
	if len(got) != 2 || got[0].Hz != 2.1e9 {
		t.Errorf("second Read() = %v, want cpu0 at 2.1 GHz", got)
	}
}

func TestMean(t *testing.T) {
	t.Parallel()
	if m := Mean(nil); m != 0 {
		t.Errorf("Mean(nil) = %g, want 0", m)
	}
	if m := Mean([]Freq{{0, 1e9}, {1, 3e9}}); m != 2e9 {
		t.Errorf("Mean() = %g, want 2e9", m)
	}
}

// BenchmarkRead reads a host with 512 CPUs, the most the agent is sized for.
func BenchmarkRead(b *testing.B) {
	root := b.TempDir()
	files := make(map[string]string, 512)
	for i := range 512 {
		files["sys/devices/system/cpu/cpu"+strconv.Itoa(i)+"/cpufreq/scaling_cur_freq"] = strconv.Itoa(2000000+i) + "\n"
	}
	writeTree(b, root, files)
	r, err := Open(sysfs.New(root))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	b.ReportAllocs()
	for b.Loop() {
		if f, err := r.Read(); err != nil || len(f) != 512 {
			b.Fatal(len(f), err)
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

// fromKHz numbers the clocks (kHz) as CPUs 0, 1, ... in Hz.
func fromKHz(khz ...float64) []Freq {
	f := make([]Freq, len(khz))
	for i, k := range khz {
		f[i] = Freq{CPU: i, Hz: k * 1e3}
	}
	return f
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
