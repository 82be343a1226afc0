package identity

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"

	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// arch is what every test host reports: the agent takes it from its own GOARCH.
var arch = otelArch(runtime.GOARCH)

func TestDetectFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		machine string
		want    Host
	}{
		{
			// Reduced to 2 sockets × 4 cores × 2 threads (see the fixture's README).
			machine: "intel-xeon-2s",
			want: Host{
				Name: "xeon6338-a01", Arch: arch,
				CPUVendor: "GenuineIntel", CPUModel: "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
				CPUFamily: "6", CPUModelID: "106",
				Sockets: 2, Cores: 8, LogicalCPUs: 16, ThreadsPerCore: 2,
				// intel_pstate's base_frequency, not the 3.2 GHz turbo of cpuinfo_max_freq.
				NominalHz: 2.0e9,
				SysVendor: "Supermicro", Product: "SYS-120U-TNR",
			},
		},
		{
			machine: "amd-epyc",
			want: Host{
				Name: "epyc7763-b02", Arch: arch,
				CPUVendor: "AuthenticAMD", CPUModel: "AMD EPYC 7763 64-Core Processor",
				CPUFamily: "25", CPUModelID: "1",
				Sockets: 1, Cores: 4, LogicalCPUs: 8, ThreadsPerCore: 2,
				// No "@" in AMD names: acpi-cpufreq's cpuinfo_max_freq, which is P0, the base clock.
				NominalHz: 2.45e9,
				SysVendor: "Dell Inc.", Product: "PowerEdge R6525",
			},
		},
		{
			// No topology files in the tree and no readable SMBIOS table: one socket, one
			// core per logical CPU, the model is the core's name and the nominal clock is
			// cppc_cpufreq's cpuinfo_max_freq (Altra has no turbo).
			machine: "ampere-altra",
			want: Host{
				Name: "altra-q80-c03", Arch: arch,
				CPUVendor: "ARM", CPUModel: "Neoverse-N1", CPUCore: "Neoverse-N1",
				CPUFamily: "0x41", CPUModelID: "0xd0c",
				Sockets: 1, Cores: 80, LogicalCPUs: 80, ThreadsPerCore: 1, NominalHz: 3.0e9,
				SysVendor: "GIGABYTE", Product: "R272-P30-00",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.machine, func(t *testing.T) {
			t.Parallel()
			got, err := Detect(t.Context(), sysfs.New(fixture.Root(t, tt.machine)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Detect() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDetectAmpereSMBIOS gives the Altra tree the SMBIOS table root can read on the real
// machine: the processor version names the product, the core stays Neoverse-N1.
func TestDetectAmpereSMBIOS(t *testing.T) {
	t.Parallel()
	root := fixture.Copy(t, "ampere-altra")
	table := smbiosTable(
		smbiosStruct(0, 0x18, "GIGABYTE", "F31n", "09/09/2022"),
		withSpeeds(smbiosStruct(4, 0x30, "CPU 0", "Ampere(R)", "Ampere(R) Altra(R) Processor"), 3000, 2800),
		smbiosStruct(127, 4),
	)
	writeFile(t, root, "sys/firmware/dmi/tables/DMI", string(table))
	got, err := Detect(t.Context(), sysfs.New(root))
	if err != nil {
		t.Fatal(err)
	}
	want := Host{
		Name: "altra-q80-c03", Arch: arch,
		CPUVendor: "ARM", CPUModel: "Ampere(R) Altra(R) Processor", CPUCore: "Neoverse-N1",
		CPUFamily: "0x41", CPUModelID: "0xd0c",
		Sockets: 1, Cores: 80, LogicalCPUs: 80, ThreadsPerCore: 1,
		// SMBIOS Current Speed wins over Max Speed and over cpufreq's 3.0 GHz. (A real
		// Q80-30 says 3000 in both; 2800 here shows which field is taken.)
		NominalHz: 2.8e9,
		SysVendor: "GIGABYTE", Product: "R272-P30-00",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Detect() (-want +got):\n%s", diff)
	}
}

func TestDetectEdgeCases(t *testing.T) {
	t.Parallel()
	osName, _ := os.Hostname()
	const x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 45\n" +
		"model name\t: Intel(R) Xeon(R) CPU           E5-2680 0 @ 2.70GHz\nphysical id\t: 0\ncore id\t\t: 0\n\n" +
		"processor\t: 1\nvendor_id\t: GenuineIntel\nphysical id\t: 0\ncore id\t\t: 1\n\n" +
		"processor\t: 2\nvendor_id\t: GenuineIntel\nphysical id\t: 1\ncore id\t\t: 0\n\n"
	arm := func(impl, part string, n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString("processor\t: " + string(rune('0'+i)) + "\nCPU implementer\t: " + impl + "\nCPU part\t: " + part + "\n\n")
		}
		return b.String()
	}
	tests := []struct {
		name  string
		files map[string]string
		want  Host
	}{
		{
			name:  "container: cpuinfo only, topology and count from cpuinfo, host name from the OS",
			files: map[string]string{"proc/cpuinfo": x86},
			want: Host{
				Name: osName, Arch: arch, CPUVendor: "GenuineIntel",
				CPUModel: "Intel(R) Xeon(R) CPU E5-2680 0 @ 2.70GHz", CPUFamily: "6", CPUModelID: "45",
				Sockets: 2, Cores: 3, LogicalCPUs: 3, ThreadsPerCore: 1, NominalHz: 2.7e9,
			},
		},
		{
			name: "VM: no topology anywhere, placeholder DMI",
			files: map[string]string{
				"proc/cpuinfo":                          "processor : 0\nvendor_id : AuthenticAMD\nflags : fpu sse2 hypervisor\n\nprocessor : 1\nvendor_id : AuthenticAMD\nflags : fpu sse2 hypervisor\n",
				"proc/sys/kernel/hostname":              "vm1\n",
				"sys/class/dmi/id/sys_vendor":           "To Be Filled By O.E.M.\n",
				"sys/class/dmi/id/product_name":         "  Standard   PC (Q35 + ICH9, 2009) \n",
				"sys/devices/system/cpu/online":         "0-1\n",
				"sys/devices/system/cpu/cpufreq/boost":  "1\n",
				"sys/devices/system/cpu/cpu0/uevent":    "",
				"sys/devices/system/cpu/cpuidle/driver": "none\n",
			},
			want: Host{
				Name: "vm1", Arch: arch, CPUVendor: "AuthenticAMD",
				Sockets: 1, Cores: 2, LogicalCPUs: 2, ThreadsPerCore: 1, Product: "Standard PC (Q35 + ICH9, 2009)",
				Virtual: true,
			},
		},
		{
			name: "stat counts the logical CPUs, sysfs topology wins over cpuinfo, offline CPU skipped",
			files: map[string]string{
				"proc/cpuinfo":             x86,
				"proc/stat":                "cpu 4 0 0 4\ncpu0 1 0 0 1\ncpu1 1 0 0 1\ncpu2 1 0 0 1\ncpu3 1 0 0 1\nintr 0\n",
				"proc/sys/kernel/hostname": "h\n",
				"sys/devices/system/cpu/cpu0/topology/physical_package_id": "0\n",
				"sys/devices/system/cpu/cpu0/topology/core_id":             "0\n",
				"sys/devices/system/cpu/cpu1/topology/physical_package_id": "0\n",
				"sys/devices/system/cpu/cpu1/topology/core_id":             "0\n",
				"sys/devices/system/cpu/cpu2/topology/physical_package_id": "0\n",
				"sys/devices/system/cpu/cpu2/topology/core_id":             "1\n",
				"sys/devices/system/cpu/cpu3/topology/physical_package_id": "0\n",
				"sys/devices/system/cpu/cpu3/topology/core_id":             "1\n",
				"sys/devices/system/cpu/cpu4/online":                       "0\n",
			},
			want: Host{
				Name: "h", Arch: arch, CPUVendor: "GenuineIntel",
				CPUModel: "Intel(R) Xeon(R) CPU E5-2680 0 @ 2.70GHz", CPUFamily: "6", CPUModelID: "45",
				Sockets: 1, Cores: 2, LogicalCPUs: 4, ThreadsPerCore: 2, NominalHz: 2.7e9,
			},
		},
		{
			name: "partial sysfs topology falls back to cpuinfo",
			files: map[string]string{
				"proc/cpuinfo":             x86,
				"proc/sys/kernel/hostname": "h\n",
				"sys/devices/system/cpu/cpu0/topology/physical_package_id": "0\n",
			},
			want: Host{
				Name: "h", Arch: arch, CPUVendor: "GenuineIntel",
				CPUModel: "Intel(R) Xeon(R) CPU E5-2680 0 @ 2.70GHz", CPUFamily: "6", CPUModelID: "45",
				Sockets: 2, Cores: 3, LogicalCPUs: 3, ThreadsPerCore: 1, NominalHz: 2.7e9,
			},
		},
		{
			name: "arm64 kernel reporting package -1",
			files: map[string]string{
				"proc/cpuinfo":             arm("0x41", "0xd4f", 2),
				"proc/sys/kernel/hostname": "grace\n",
				"sys/devices/system/cpu/cpu0/topology/physical_package_id": "-1\n",
				"sys/devices/system/cpu/cpu0/topology/core_id":             "0\n",
				"sys/devices/system/cpu/cpu1/topology/physical_package_id": "-1\n",
				"sys/devices/system/cpu/cpu1/topology/core_id":             "1\n",
			},
			want: Host{
				Name: "grace", Arch: arch, CPUVendor: "ARM", CPUModel: "Neoverse-V2", CPUCore: "Neoverse-V2",
				CPUFamily: "0x41", CPUModelID: "0xd4f", Sockets: 1, Cores: 2, LogicalCPUs: 2, ThreadsPerCore: 1,
			},
		},
		{
			name:  "Azure Cobalt 100 under Microsoft's implementer",
			files: map[string]string{"proc/cpuinfo": arm("0x6D", "0xD49", 1), "proc/sys/kernel/hostname": "c\n"},
			want: Host{
				Name: "c", Arch: arch, CPUVendor: "Microsoft", CPUModel: "Azure Cobalt 100", CPUCore: "Neoverse-N2",
				CPUFamily: "0x6d", CPUModelID: "0xd49", Sockets: 1, Cores: 1, LogicalCPUs: 1, ThreadsPerCore: 1,
			},
		},
		{
			name:  "AmpereOne",
			files: map[string]string{"proc/cpuinfo": arm("0xc0", "0xac3", 2), "proc/sys/kernel/hostname": "a\n"},
			want: Host{
				Name: "a", Arch: arch, CPUVendor: "Ampere", CPUModel: "AmpereOne", CPUCore: "Ampere-1",
				CPUFamily: "0xc0", CPUModelID: "0xac3", Sockets: 1, Cores: 2, LogicalCPUs: 2, ThreadsPerCore: 1,
			},
		},
		{
			name:  "unknown implementer and part keep their numbers",
			files: map[string]string{"proc/cpuinfo": arm("0x99", "0x123", 1), "proc/sys/kernel/hostname": "u\n"},
			want: Host{
				Name: "u", Arch: arch, CPUVendor: "0x99", CPUModel: "0x99 part 0x123", CPUCore: "0x99 part 0x123",
				CPUFamily: "0x99", CPUModelID: "0x123", Sockets: 1, Cores: 1, LogicalCPUs: 1, ThreadsPerCore: 1,
			},
		},
		{
			name: "SMBIOS placeholder keeps the core name",
			files: map[string]string{
				"proc/cpuinfo":                arm("0x41", "0xd40", 1),
				"proc/sys/kernel/hostname":    "g3\n",
				"sys/firmware/dmi/tables/DMI": string(smbiosTable(smbiosStruct(4, 0x30, "CPU 0", "AWS", "Not Specified"), smbiosStruct(127, 4))),
			},
			want: Host{
				Name: "g3", Arch: arch, CPUVendor: "ARM", CPUModel: "Neoverse-V1", CPUCore: "Neoverse-V1",
				CPUFamily: "0x41", CPUModelID: "0xd40", Sockets: 1, Cores: 1, LogicalCPUs: 1, ThreadsPerCore: 1,
			},
		},
		{
			name:  "unknown part of a known implementer",
			files: map[string]string{"proc/cpuinfo": arm("0x41", "0xd99", 1), "proc/sys/kernel/hostname": "n\n"},
			want: Host{
				Name: "n", Arch: arch, CPUVendor: "ARM", CPUModel: "ARM 0x41 part 0xd99", CPUCore: "ARM 0x41 part 0xd99",
				CPUFamily: "0x41", CPUModelID: "0xd99", Sockets: 1, Cores: 1, LogicalCPUs: 1, ThreadsPerCore: 1,
			},
		},
		{
			name: "Yitian 710 is a plain Neoverse-N2: only DMI tells it apart",
			files: map[string]string{
				"proc/cpuinfo":                  arm("0x41", "0xd49", 2),
				"proc/sys/kernel/hostname":      "y\n",
				"sys/class/dmi/id/sys_vendor":   "Alibaba Cloud\n",
				"sys/class/dmi/id/product_name": "Alibaba Cloud ECS\n",
			},
			want: Host{
				Name: "y", Arch: arch, CPUVendor: "ARM", CPUModel: "Neoverse-N2", CPUCore: "Neoverse-N2",
				CPUFamily: "0x41", CPUModelID: "0xd49", Sockets: 1, Cores: 2, LogicalCPUs: 2, ThreadsPerCore: 1,
				SysVendor: "Alibaba Cloud", Product: "Alibaba Cloud ECS",
			},
		},
		{
			name: "Graviton-like guest: SMBIOS Max Speed when Current Speed is 0, no cpufreq",
			files: map[string]string{
				"proc/cpuinfo":                arm("0x41", "0xd4f", 2),
				"proc/sys/kernel/hostname":    "g4\n",
				"sys/firmware/dmi/tables/DMI": string(smbiosTable(withSpeeds(smbiosStruct(4, 0x30, "CPU 0", "AWS", "AWS Graviton4 Processor"), 2800, 0), smbiosStruct(127, 4))),
			},
			want: Host{
				Name: "g4", Arch: arch, CPUVendor: "ARM", CPUModel: "AWS Graviton4 Processor", CPUCore: "Neoverse-V2",
				CPUFamily: "0x41", CPUModelID: "0xd4f", Sockets: 1, Cores: 2, LogicalCPUs: 2, ThreadsPerCore: 1,
				NominalHz: 2.8e9,
			},
		},
		{
			name: "arm64: implausible SMBIOS speeds fall back to cpuinfo_max_freq",
			files: map[string]string{
				"proc/cpuinfo":             arm("0x48", "0xd01", 1),
				"proc/sys/kernel/hostname": "k\n",
				"sys/firmware/dmi/tables/DMI": string(smbiosTable(withSpeeds(smbiosStruct(4, 0x30, "CPU 0", "HiSilicon", "Kunpeng 920-4826"), 0xffff, 1),
					smbiosStruct(127, 4))),
				"sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": "2600000\n",
			},
			want: Host{
				Name: "k", Arch: arch, CPUVendor: "HiSilicon", CPUModel: "Kunpeng 920-4826", CPUCore: "TSV110",
				CPUFamily: "0x48", CPUModelID: "0xd01", Sockets: 1, Cores: 1, LogicalCPUs: 1, ThreadsPerCore: 1,
				NominalHz: 2.6e9,
			},
		},
		{
			name: "x86: base_frequency wins over the model name and the turbo max",
			files: map[string]string{
				"proc/cpuinfo":             x86,
				"proc/sys/kernel/hostname": "b\n",
				"sys/devices/system/cpu/cpu0/cpufreq/base_frequency":   "2100000\n",
				"sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": "3500000\n",
			},
			want: Host{
				Name: "b", Arch: arch, CPUVendor: "GenuineIntel",
				CPUModel: "Intel(R) Xeon(R) CPU E5-2680 0 @ 2.70GHz", CPUFamily: "6", CPUModelID: "45",
				Sockets: 2, Cores: 3, LogicalCPUs: 3, ThreadsPerCore: 1, NominalHz: 2.1e9,
			},
		},
		{
			name: "x86: the largest thread_siblings_list gives the SMT width, broken files are skipped",
			files: map[string]string{
				"proc/cpuinfo":             "processor : 0\nvendor_id : AuthenticAMD\nmodel name : AMD EPYC 9654 96-Core Processor\n\nprocessor : 1\nvendor_id : AuthenticAMD\n\nprocessor : 2\nvendor_id : AuthenticAMD\n\n",
				"proc/sys/kernel/hostname": "e\n",
				"sys/devices/system/cpu/cpu0/topology/thread_siblings_list": "0,2\n",
				"sys/devices/system/cpu/cpu1/topology/thread_siblings_list": "1\n",
				"sys/devices/system/cpu/cpu2/topology/thread_siblings_list": "garbage\n",
				"sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq":      "3700000\n",
			},
			want: Host{
				Name: "e", Arch: arch, CPUVendor: "AuthenticAMD", CPUModel: "AMD EPYC 9654 96-Core Processor",
				Sockets: 1, Cores: 3, LogicalCPUs: 3, ThreadsPerCore: 2, NominalHz: 3.7e9,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			for rel, data := range tt.files {
				writeFile(t, root, rel, data)
			}
			got, err := Detect(t.Context(), sysfs.New(root))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Detect() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDetectErrors(t *testing.T) {
	t.Parallel()
	t.Run("no cpuinfo", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		writeFile(t, root, "proc/stat", "cpu 1 1 1 1\ncpu0 1 1 1 1\n")
		_, err := Detect(t.Context(), sysfs.New(root))
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(root, "proc", "cpuinfo")) {
			t.Fatalf("Detect() error = %v, want ErrNotExist naming proc/cpuinfo", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := Detect(ctx, sysfs.New(fixture.Root(t, "amd-epyc")))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Detect() error = %v, want context.Canceled", err)
		}
	})
	t.Run("cpuinfo line too long", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		writeFile(t, root, "proc/cpuinfo", "processor : 0\nflags : "+strings.Repeat("x", maxCPUInfoLine)+"\n")
		_, err := Detect(t.Context(), sysfs.New(root))
		if err == nil || !strings.Contains(err.Error(), "cpuinfo") {
			t.Fatalf("Detect() error = %v, want one naming cpuinfo", err)
		}
	})
}

func TestParseCPUInfoOldARM64(t *testing.T) {
	t.Parallel()
	// arm64 kernels before 3.19 print the identity once, after the processor lines.
	in := "Processor\t: AArch64 Processor rev 0 (aarch64)\nprocessor\t: 0\nprocessor\t: 1\n" +
		"Features\t: fp asimd evtstrm\nCPU implementer\t: 0x50\nCPU architecture: AArch64\n" +
		"CPU variant\t: 0x0\nCPU part\t: 0x000\nCPU revision\t: 1\n\nHardware\t: APM X-Gene Mustang board\n"
	got, err := parseCPUInfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := cpuInfo{Logical: 2, Implementer: "0x50", Part: "0x000"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseCPUInfo() (-want +got):\n%s", diff)
	}
}

func TestAttributes(t *testing.T) {
	t.Parallel()
	h := Host{
		Name: "altra-q80-c03", Arch: "arm64", CPUVendor: "ARM", CPUModel: "Ampere(R) Altra(R) Processor",
		CPUCore: "Neoverse-N1", CPUFamily: "0x41", CPUModelID: "0xd0c",
		Sockets: 1, Cores: 80, LogicalCPUs: 80, SysVendor: "GIGABYTE", Product: "R272-P30-00",
		ThreadsPerCore: 1, NominalHz: 3e9,
	}
	want := []attribute.KeyValue{
		attribute.String(semconv.AttrHostName, "altra-q80-c03"),
		attribute.String(semconv.AttrHostArch, "arm64"),
		attribute.String(semconv.AttrHostCPUVendor, "ARM"),
		attribute.String(semconv.AttrHostCPUModel, "Ampere(R) Altra(R) Processor"),
		attribute.String(semconv.AttrHostCPUFamily, "0x41"),
		attribute.String(semconv.AttrHostCPUModelID, "0xd0c"),
		attribute.Int(semconv.AttrSockets, 1),
		attribute.Int(semconv.AttrCores, 80),
		attribute.Int(semconv.AttrLogicalCPUs, 80),
		attribute.String(semconv.AttrSystemVendor, "GIGABYTE"),
		attribute.String(semconv.AttrSystemProduct, "R272-P30-00"),
		attribute.String(semconv.AttrCPUCore, "Neoverse-N1"),
		attribute.Int(semconv.AttrThreadsPerCore, 1),
		attribute.Float64(semconv.AttrNominalHz, 3e9),
		attribute.Bool(semconv.AttrVirtual, false),
	}
	if diff := cmp.Diff(want, h.Attributes(), cmp.AllowUnexported(attribute.Value{})); diff != "" {
		t.Errorf("Attributes() (-want +got):\n%s", diff)
	}

	// A container with nothing but a host name: no empty values, no zero counts; whether
	// it is virtual is always said.
	got := Host{Name: "c", Arch: "amd64"}.Attributes()
	want = []attribute.KeyValue{
		attribute.String(semconv.AttrHostName, "c"),
		attribute.String(semconv.AttrHostArch, "amd64"),
		attribute.Bool(semconv.AttrVirtual, false),
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(attribute.Value{})); diff != "" {
		t.Errorf("Attributes() of a sparse host (-want +got):\n%s", diff)
	}
}

func TestOtelArch(t *testing.T) {
	t.Parallel()
	for goarch, want := range map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "x86", "arm": "arm32", "ppc64le": "ppc64", "s390x": "s390x"} {
		if got := otelArch(goarch); got != want {
			t.Errorf("otelArch(%q) = %q, want %q", goarch, got, want)
		}
	}
}

func TestParseSMBIOSProcessor(t *testing.T) {
	t.Parallel()
	altra := withSpeeds(smbiosStruct(4, 0x30, "CPU 0", "Ampere(R)", "Ampere(R) Altra(R) Processor"), 3000, 3000)
	tests := []struct {
		name  string
		table []byte
		want  smbiosProcessor
	}{
		{"after other structures", smbiosTable(smbiosStruct(0, 0x18, "v", "1"), altra, smbiosStruct(127, 4)), smbiosProcessor{Version: "Ampere(R) Altra(R) Processor", MaxMHz: 3000, CurrentMHz: 3000}},
		{"no strings", smbiosTable(withSpeeds(smbiosStruct(4, 0x30), 2600, 2500), smbiosStruct(127, 4)), smbiosProcessor{MaxMHz: 2600, CurrentMHz: 2500}},
		{"SMBIOS 1.x structure too short for speeds", smbiosTable(smbiosStruct(4, 0x11, "a", "b", "c"), smbiosStruct(127, 4)), smbiosProcessor{Version: "c"}},
		{"no processor", smbiosTable(smbiosStruct(1, 0x1b, "Dell Inc."), smbiosStruct(127, 4)), smbiosProcessor{}},
		{"processor after end", smbiosTable(smbiosStruct(127, 4), altra), smbiosProcessor{}},
		{"truncated", smbiosTable(altra)[:40], smbiosProcessor{}},
		{"length below header", []byte{4, 2, 0, 0, 0, 0}, smbiosProcessor{}},
		{"empty", nil, smbiosProcessor{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, parseSMBIOSProcessor(tt.table)); diff != "" {
				t.Errorf("parseSMBIOSProcessor() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestModelNameHz(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]float64{
		"Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz":     2e9,
		"Intel(R) Xeon(R) CPU E5-2680 0 @ 2.70GHz":     2.7e9,
		"Intel(R) Pentium(R) III CPU family @ 1400MHz": 1.4e9,
		"Intel(R) Xeon(R) CPU @ 2.20 GHz":              2.2e9,
		"AMD EPYC 7763 64-Core Processor":              0,
		"Intel(R) Xeon(R) Platinum 8480+":              0,
		"odd @ fastGHz":                                0,
		"odd @ 2.0THz":                                 0,
		"odd @ -1GHz":                                  0,
		"":                                             0,
	} {
		if got := modelNameHz(name); got != want {
			t.Errorf("modelNameHz(%q) = %g, want %g", name, got, want)
		}
	}
}

func TestCountCPUList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"0,8", 2, false},
		{"0-1", 2, false},
		{"5", 1, false},
		{"0-3,64-67\n", 8, false},
		{"", 0, true},
		{"1-0", 0, true},
		{"a", 0, true},
		{"0,", 0, true},
		{"0-99999999", 0, true},
	}
	for _, tt := range tests {
		got, err := countCPUList(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("countCPUList(%q) = %d, %v; want %d, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestARMPartsHaveNames(t *testing.T) {
	t.Parallel()
	for p, c := range armParts {
		if c.model == "" || c.core == "" {
			t.Errorf("part %#x/%#x: empty model %q or core %q", p.implementer, p.part, c.model, c.core)
		}
		if armImplementers[p.implementer] == "" {
			t.Errorf("part %#x/%#x: implementer has no name", p.implementer, p.part)
		}
	}
}

func FuzzParseCPUInfo(f *testing.F) {
	for _, m := range []string{"intel-xeon-2s", "amd-epyc", "ampere-altra"} {
		b, err := os.ReadFile(filepath.Join(fixture.Root(f, m), "proc", "cpuinfo"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Processor : AArch64\nprocessor : 0\nCPU implementer : 0x41\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ci, err := parseCPUInfo(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(ci.Topology) > ci.Logical {
			t.Fatalf("%d topology entries for %d processors", len(ci.Topology), ci.Logical)
		}
		sockets, cores := countTopology(ci.Topology)
		if sockets > cores || cores > ci.Logical {
			t.Fatalf("sockets %d, cores %d, logical %d", sockets, cores, ci.Logical)
		}
	})
}

func FuzzParseSMBIOSProcessor(f *testing.F) {
	f.Add(smbiosTable(smbiosStruct(0, 0x18, "v"), withSpeeds(smbiosStruct(4, 0x30, "CPU 0", "Ampere(R)", "Ampere(R) Altra(R) Processor"), 3000, 3000), smbiosStruct(127, 4)))
	f.Add([]byte{4, 0x11, 0, 0})
	f.Add([]byte{4, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xb8, 0x0b, 0xb8, 0x0b, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := parseSMBIOSProcessor(b)
		if strings.IndexByte(p.Version, 0) >= 0 || len(p.Version) > len(b) {
			t.Fatalf("version %q from a %d-byte table", p.Version, len(b))
		}
		if (p.MaxMHz != 0 || p.CurrentMHz != 0) && len(b) < smbiosProcCurSpeed+2 {
			t.Fatalf("speeds %d/%d from a %d-byte table", p.MaxMHz, p.CurrentMHz, len(b))
		}
	})
}

func FuzzCountCPUList(f *testing.F) {
	for _, m := range []string{"intel-xeon-2s", "amd-epyc"} {
		b, err := os.ReadFile(filepath.Join(fixture.Root(f, m), "sys", "devices", "system", "cpu", "cpu0", "topology", "thread_siblings_list"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("0-3,64-67")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := countCPUList(s)
		if err == nil && (n < 1 || n > maxCPUNumber+1) {
			t.Fatalf("countCPUList(%q) = %d", s, n)
		}
	})
}

func FuzzModelNameHz(f *testing.F) {
	f.Add("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz")
	f.Add("x @ 1e308GHz")
	f.Fuzz(func(t *testing.T, s string) {
		if hz := modelNameHz(s); hz < 0 || math.IsNaN(hz) || math.IsInf(hz, 0) {
			t.Fatalf("modelNameHz(%q) = %g", s, hz)
		}
	})
}

// smbiosStruct builds one SMBIOS structure whose formatted area is length bytes long. For
// type 4 the strings are numbered into Socket Designation (1), Processor Manufacturer (2) and
// Processor Version (3), as firmware lays them out.
func smbiosStruct(typ byte, length int, strs ...string) []byte {
	b := make([]byte, length)
	b[0], b[1] = typ, byte(length)
	if typ == 4 {
		for i, off := range []int{0x04, 0x07, smbiosProcVersion} {
			if i < len(strs) {
				b[off] = byte(i + 1)
			}
		}
	}
	for _, s := range strs {
		b = append(append(b, s...), 0)
	}
	if len(strs) == 0 {
		b = append(b, 0)
	}
	return append(b, 0)
}

func smbiosTable(structs ...[]byte) []byte { return bytes.Join(structs, nil) }

// withSpeeds sets Max Speed and Current Speed (MHz) of a type 4 structure from smbiosStruct,
// whose formatted area must reach past them.
func withSpeeds(b []byte, maxMHz, curMHz uint16) []byte {
	binary.LittleEndian.PutUint16(b[smbiosProcMaxSpeed:], maxMHz)
	binary.LittleEndian.PutUint16(b[smbiosProcCurSpeed:], curMHz)
	return b
}

// writeFile writes data to rel below root, creating the directories on the way.
func writeFile(t *testing.T, root, rel, data string) {
	t.Helper()
	path := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
