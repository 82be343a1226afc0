// Package identity describes the host the agent runs on: its name, architecture, CPU vendor
// and model, socket/core/thread counts and the system's DMI vendor and product. These become
// the OpenTelemetry resource attributes of every metric, and they are what the reports group
// by when they compare the energy efficiency of ARM and x86 servers, so the same CPU must get
// the same name on every host and every kernel.
package identity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/cpu"
	"go.opentelemetry.io/otel/attribute"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpustat"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Host is the identity of one host.
type Host struct {
	Name string // host.name
	// Arch is host.arch as OpenTelemetry spells it ("amd64", "arm64"). It comes from the
	// agent's own GOARCH: the agent runs on the machine it reads.
	Arch string
	// CPUVendor is host.cpu.vendor.id: "GenuineIntel", "AuthenticAMD", or on arm64 the name
	// of the CPU implementer ("ARM", "Ampere", "HiSilicon"). Cloud CPUs built from ARM's
	// Neoverse cores (AWS Graviton, NVIDIA Grace, Ampere Altra) report ARM.
	CPUVendor string
	// CPUModel is host.cpu.model.name: the x86 "model name", or on arm64 the product named
	// by the SMBIOS processor version when firmware fills it in, else the name decoded from
	// implementer and part ("Neoverse-N1").
	CPUModel string
	// CPUCore is the arm64 core microarchitecture ("Neoverse-N1"); empty on x86. A part the
	// table below does not know still gets a name ("ARM 0x41 part 0xd99"), never "".
	CPUCore string
	// CPUFamily and CPUModelID are host.cpu.family and host.cpu.model.id: the x86 cpu family
	// and model in decimal, or the arm64 implementer and part in hex ("0x41", "0xd0c").
	CPUFamily, CPUModelID string
	// Sockets is the number of physical packages, Cores the physical cores of all packages,
	// LogicalCPUs the logical CPUs that /proc/stat counts.
	Sockets, Cores, LogicalCPUs int
	// ThreadsPerCore is the number of hardware threads (SMT siblings) of one core: 2 on x86
	// servers with Hyper-Threading or SMT on, 1 on every arm64 server CPU so far. It comes
	// from the largest thread_siblings_list of the topology, else from LogicalCPUs / Cores,
	// so that SMT turned off at run time (nosmt, smt/control) reads 1 as well.
	ThreadsPerCore int
	// NominalHz is the CPU's nominal (base, guaranteed) clock in Hz, 0 when no source
	// names it. It is what a core sustains with all cores busy, so energy per cycle compares
	// across CPUs. The sources, first one that has a value wins:
	//   - x86: cpufreq/base_frequency of cpu0 (kHz; intel_pstate only), then the
	//     "@ 2.00GHz" of the model name (Intel only), then cpufreq/cpuinfo_max_freq (kHz).
	//   - arm64: the SMBIOS processor structure's Current Speed, then its Max Speed (MHz;
	//     the table is root-only), then cpufreq/cpuinfo_max_freq of cpu0 (kHz).
	// cpuinfo_max_freq comes last because it is the highest clock the driver can ask for:
	// the single-core turbo/boost clock under intel_pstate, amd-pstate and CPPC with boost,
	// well above nominal. Only acpi-cpufreq, which lists no boost states, shows the base
	// clock (P0) there, and arm64 CPUs without boost (Altra, Graviton) have max = nominal.
	NominalHz float64
	// SysVendor and Product are DMI sys_vendor and product_name; empty without DMI (VMs on
	// some hypervisors, containers without /sys).
	SysVendor, Product string
	// Virtual is true when the CPU says it runs under a hypervisor (the x86 "hypervisor"
	// flag). A virtual machine has no power sensors of its own, which is worth saying when
	// none are found.
	Virtual bool
}

// Detect reads the identity of the host whose /proc and /sys lie below fs. Only an
// unreadable /proc/cpuinfo is an error: every other file is optional and missing ones leave
// their fields empty or fall back to what cpuinfo says.
func Detect(ctx context.Context, fs sysfs.FS) (Host, error) {
	if err := ctx.Err(); err != nil {
		return Host{}, fmt.Errorf("detect host: %w", err)
	}
	ci, err := readCPUInfo(fs)
	if err != nil {
		return Host{}, err
	}
	h := Host{
		Name:      hostname(fs),
		Arch:      otelArch(runtime.GOARCH),
		SysVendor: dmi(fs, "sys_vendor"),
		Product:   dmi(fs, "product_name"),
	}
	if ci.Implementer != "" {
		setARM(&h, ci, fs)
	} else {
		h.CPUVendor = ci.VendorID
		h.CPUModel = ci.ModelName
		h.CPUFamily = ci.Family
		h.CPUModelID = ci.Model
		setX86(ctx, &h, fs)
	}

	// /proc/stat is what the CPU time metrics sum over, so its count is the one that makes
	// utilization consistent; cpuinfo counts the same online CPUs where stat is unreadable.
	h.LogicalCPUs = ci.Logical
	if st, err := cpustat.Read(fs); err == nil && len(st.CPUs) > 0 {
		h.LogicalCPUs = len(st.CPUs)
	}

	topo := sysTopology(fs)
	if len(topo) == 0 {
		topo = ci.Topology
	}
	h.Sockets, h.Cores = countTopology(topo)
	if h.Sockets == 0 {
		// No topology anywhere (containers without /sys, arm64 kernels without it): one
		// package, no SMT, which is what every arm64 server CPU without topology files is.
		h.Sockets, h.Cores = 1, h.LogicalCPUs
	}
	h.ThreadsPerCore = threadsPerCore(fs, h.LogicalCPUs, h.Cores)

	if h.NominalHz == 0 && ci.Implementer == "" {
		h.NominalHz = x86NominalHz(fs, h.CPUModel)
	}
	if h.NominalHz == 0 {
		h.NominalHz = maxFreqHz(fs)
	}
	return h, nil
}

// threadsPerCore is the SMT width: the most CPUs any thread_siblings_list names, else
// logical CPUs per core rounded to the nearest integer, else 0 (nothing counted).
func threadsPerCore(fs sysfs.FS, logical, cores int) int {
	if n := maxThreadSiblings(fs); n > 0 {
		return n
	}
	if cores <= 0 || logical <= 0 {
		return 0
	}
	return max(1, (logical+cores/2)/cores)
}

// maxThreadSiblings returns the largest number of CPUs in a cpuN/topology/
// thread_siblings_list, 0 when no CPU has a readable, well-formed one. The largest, not
// cpu0's: a hybrid part's cpu0 may be a core without SMT.
func maxThreadSiblings(fs sysfs.FS) int {
	entries, err := os.ReadDir(fs.Path("sys", "devices", "system", "cpu"))
	if err != nil {
		return 0
	}
	most := 0
	for _, e := range entries {
		if !isCPUDir(e.Name()) {
			continue
		}
		s, err := sysfs.ReadString(fs.Path("sys", "devices", "system", "cpu", e.Name(), "topology", "thread_siblings_list"))
		if err != nil {
			continue
		}
		if n, err := countCPUList(s); err == nil {
			most = max(most, n)
		}
	}
	return most
}

// isCPUDir reports whether name is a cpuN directory of sys/devices/system/cpu.
func isCPUDir(name string) bool {
	n, ok := strings.CutPrefix(name, "cpu")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}

// x86NominalHz is the base clock of an x86 CPU in Hz from intel_pstate's base_frequency
// or the model name, 0 when neither has it.
func x86NominalHz(fs sysfs.FS, model string) float64 {
	// base_frequency is intel_pstate's (HWP) guaranteed frequency: the base clock even
	// where the model name has none (Xeon Max, some OEM parts).
	if khz, err := sysfs.ReadUint(fs.Path("sys", "devices", "system", "cpu", "cpu0", "cpufreq", "base_frequency")); err == nil && plausibleHz(float64(khz)*1e3) {
		return float64(khz) * 1e3
	}
	if hz := modelNameHz(model); plausibleHz(hz) {
		return hz
	}
	return 0
}

// maxFreqHz is cpu0's cpufreq/cpuinfo_max_freq in Hz, 0 without cpufreq (VMs, Graviton).
func maxFreqHz(fs sysfs.FS) float64 {
	khz, err := sysfs.ReadUint(fs.Path("sys", "devices", "system", "cpu", "cpu0", "cpufreq", "cpuinfo_max_freq"))
	if err != nil || !plausibleHz(float64(khz)*1e3) {
		return 0
	}
	return float64(khz) * 1e3
}

// plausibleHz rejects clocks no server CPU runs at: firmware fills unknown SMBIOS speeds
// with 0 or garbage, and a wrong nominal clock would skew every per-cycle figure.
func plausibleHz(hz float64) bool { return hz >= 100e6 && hz <= 10e9 }

// readCPUInfo reads proc/cpuinfo. It streams the file instead of using sysfs.ReadFile,
// whose 64 KiB bound a 256-thread x86 host exceeds about six times over.
func readCPUInfo(fs sysfs.FS) (cpuInfo, error) {
	path := fs.Path("proc", "cpuinfo")
	f, err := os.Open(path)
	if err != nil {
		return cpuInfo{}, fmt.Errorf("detect host: %w", err)
	}
	defer f.Close()
	ci, err := parseCPUInfo(f)
	if err != nil {
		return cpuInfo{}, fmt.Errorf("detect host: read %s: %w", path, err)
	}
	return ci, nil
}

// setARM fills the CPU fields of an arm64 host from the implementer and part numbers, and
// the model from SMBIOS where firmware names the product there.
func setARM(h *Host, ci cpuInfo, fs sysfs.FS) {
	impl, _ := strconv.ParseUint(strings.TrimPrefix(ci.Implementer, "0x"), 16, 8)
	part, _ := strconv.ParseUint(strings.TrimPrefix(ci.Part, "0x"), 16, 12)
	h.CPUFamily, h.CPUModelID = ci.Implementer, ci.Part
	h.CPUVendor = armImplementers[impl]
	if h.CPUVendor == "" {
		h.CPUVendor = ci.Implementer
	}
	if c, ok := armParts[armPart{impl, part}]; ok {
		h.CPUModel, h.CPUCore = c.model, c.core
	} else {
		// An unknown core still gets a stable, searchable name that says what it is.
		h.CPUModel = unknownARMName(h.CPUVendor, ci.Implementer, ci.Part)
		h.CPUCore = h.CPUModel
	}
	// The DMI table is readable by root only; the agent without root keeps the core name
	// and takes the nominal clock from cpufreq.
	if b, err := sysfs.ReadFile(fs.Path("sys", "firmware", "dmi", "tables", "DMI")); err == nil {
		p := parseSMBIOSProcessor(b)
		if v := clean(p.Version); v != "" {
			h.CPUModel = v
		}
		// Current Speed is the clock firmware set at boot, the nominal one; Max Speed is
		// often what the socket supports rather than the fitted part, so it comes second.
		for _, mhz := range []uint16{p.CurrentMHz, p.MaxMHz} {
			if hz := float64(mhz) * 1e6; plausibleHz(hz) {
				h.NominalHz = hz
				break
			}
		}
	}
}

// unknownARMName names a core the table does not know: "ARM 0x41 part 0xd99", or
// "0x99 part 0x123" when the implementer is unknown too.
func unknownARMName(vendor, implementer, part string) string {
	name := implementer
	if vendor != implementer {
		name = vendor + " " + implementer
	}
	if part == "" {
		return name
	}
	return name + " part " + part
}

// armImplementers names the arm64 MIDR implementer codes: arch/arm64/include/asm/cputype.h
// (ARM_CPU_IMP_*) and, for Phytium, which the kernel has no constant for, util-linux
// sys-utils/lscpu-arm.c.
var armImplementers = map[uint64]string{
	0x41: "ARM",
	0x42: "Broadcom",
	0x43: "Cavium",
	0x46: "Fujitsu",
	0x48: "HiSilicon",
	0x4e: "NVIDIA",
	0x50: "APM",
	0x51: "Qualcomm",
	0x61: "Apple",
	0x6d: "Microsoft",
	0x70: "Phytium",
	0xc0: "Ampere",
}

type armPart struct{ implementer, part uint64 }

// armParts names server cores by implementer and part: the model is the product where the
// part number identifies one, the core its microarchitecture. Codes checked against
// arch/arm64/include/asm/cputype.h (*_CPU_PART_*) and util-linux sys-utils/lscpu-arm.c.
//
// Most cloud ARM CPUs license Arm's cores and report implementer 0x41, so the part names the
// core, not the product: Ampere Altra and Graviton2 are both Neoverse-N1, Grace, Graviton4
// and Axion are all Neoverse-V2, and Alibaba's Yitian 710 is a plain Neoverse-N2 (0x41
// 0xd49, unlike Microsoft's Cobalt 100, which reports its own implementer). Only DMI/SMBIOS
// (CPUModel from the processor version, SysVendor/Product) tells those apart.
var armParts = map[armPart]struct{ model, core string }{
	{0x41, 0xd03}: {"Cortex-A53", "Cortex-A53"},
	{0x41, 0xd07}: {"Cortex-A57", "Cortex-A57"},
	{0x41, 0xd08}: {"Cortex-A72", "Cortex-A72"},   // AWS Graviton (first generation)
	{0x41, 0xd0b}: {"Cortex-A76", "Cortex-A76"},   // Kunpeng 920's cores are tsv110, not this
	{0x41, 0xd0c}: {"Neoverse-N1", "Neoverse-N1"}, // Ampere Altra/Altra Max, AWS Graviton2
	{0x41, 0xd40}: {"Neoverse-V1", "Neoverse-V1"}, // AWS Graviton3
	{0x41, 0xd49}: {"Neoverse-N2", "Neoverse-N2"}, // Alibaba Yitian 710: needs DMI to tell
	{0x41, 0xd4a}: {"Neoverse-E1", "Neoverse-E1"},
	{0x41, 0xd4f}: {"Neoverse-V2", "Neoverse-V2"}, // NVIDIA Grace, AWS Graviton4, Google Axion
	{0x41, 0xd83}: {"Neoverse-V3AE", "Neoverse-V3AE"},
	{0x41, 0xd84}: {"Neoverse-V3", "Neoverse-V3"},
	{0x41, 0xd8e}: {"Neoverse-N3", "Neoverse-N3"},
	{0x42, 0x516}: {"ThunderX2", "Vulcan"}, // Broadcom Vulcan, before Cavium took it over
	{0x43, 0x0a1}: {"ThunderX", "ThunderX"},
	{0x43, 0x0af}: {"ThunderX2", "Vulcan"}, // Marvell (Cavium) ThunderX2 CN99xx
	{0x46, 0x001}: {"A64FX", "A64FX"},
	{0x46, 0x003}: {"MONAKA", "MONAKA"},
	{0x48, 0xd01}: {"Kunpeng-920", "TSV110"}, // lscpu: TaiShan-v110
	// The kernel calls 0xd02 HIP09 and lscpu TaiShan-v120; public sources do not tie it to
	// a Kunpeng product name (930 or a 920 revision), so the model stays the chip's name.
	{0x48, 0xd02}: {"HIP09", "TaiShan-v120"},
	{0x48, 0xd06}: {"HIP12", "HIP12"},
	{0x4e, 0x010}: {"Olympus", "Olympus"},
	{0x50, 0x000}: {"X-Gene", "X-Gene"},
	// Centriq 2400. The kernel shares 0x800 between Falkor v1 and the mobile Kryo 2xx
	// Gold; an arm64 server reporting it is a Centriq.
	{0x51, 0x800}: {"Centriq 2400", "Falkor"},
	{0x51, 0xc00}: {"Centriq 2400", "Falkor"},
	{0x6d, 0xd49}: {"Azure Cobalt 100", "Neoverse-N2"}, // r0p0 Neoverse N2 (cputype.h)
	{0x70, 0x662}: {"FTC662", "FTC662"},
	{0x70, 0x663}: {"FTC663", "FTC663"},
	// Both are AmpereOne. Which product (AmpereOne, AmpereOne M) a part is cannot be told
	// from MIDR: Ampere dropped its lscpu name for 0xac4 and points to the SMCCC SOC_ID
	// name in /sys/bus/soc/devices/soc0/machine, and SMBIOS names the product.
	{0xc0, 0xac3}: {"AmpereOne", "Ampere-1"},
	{0xc0, 0xac4}: {"AmpereOne", "Ampere-1a"},
}

// sysTopology reads the package and core of every CPU with a topology directory under
// sys/devices/system/cpu. It returns nil unless every such CPU has both files, so a partial
// tree never undercounts.
func sysTopology(fs sysfs.FS) []topology {
	dir := fs.Path("sys", "devices", "system", "cpu")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var topo []topology
	for _, e := range entries {
		if !isCPUDir(e.Name()) {
			continue // cpufreq, cpuidle, online, ...
		}
		pkg, perr := sysfs.ReadString(fs.Path("sys", "devices", "system", "cpu", e.Name(), "topology", "physical_package_id"))
		core, cerr := sysfs.ReadString(fs.Path("sys", "devices", "system", "cpu", e.Name(), "topology", "core_id"))
		if errors.Is(perr, os.ErrNotExist) && errors.Is(cerr, os.ErrNotExist) {
			continue // an offline CPU has no topology
		}
		if perr != nil || cerr != nil {
			return nil
		}
		// Older arm64 kernels without socket information report package −1: one package.
		if pkg == "-1" {
			pkg = "0"
		}
		topo = append(topo, topology{Package: pkg, Core: core})
	}
	return topo
}

// countTopology counts the distinct packages and the distinct (package, core) pairs: core ids
// are unique within a package only, and SMT siblings share theirs.
func countTopology(topo []topology) (sockets, cores int) {
	pkgs := make(map[string]bool)
	pairs := make(map[topology]bool)
	for _, t := range topo {
		pkgs[t.Package] = true
		pairs[t] = true
	}
	return len(pkgs), len(pairs)
}

// hostname reads the kernel's host name below the root. The value is that of the reader's
// UTS namespace, so the agent in a container needs the host's UTS namespace (hostNetwork or
// --uts=host) to see the host's name. os.Hostname is the fallback for trees without it.
func hostname(fs sysfs.FS) string {
	if s, err := sysfs.ReadString(fs.Path("proc", "sys", "kernel", "hostname")); err == nil && s != "" {
		return s
	}
	s, _ := os.Hostname()
	return s
}

// dmi reads one /sys/class/dmi/id attribute; "" when it is missing or a placeholder.
func dmi(fs sysfs.FS, name string) string {
	s, err := sysfs.ReadString(fs.Path("sys", "class", "dmi", "id", name))
	if err != nil {
		return ""
	}
	return clean(s)
}

// placeholders are what board vendors leave in DMI and SMBIOS strings they do not fill in.
// Kept as tag values they would group unrelated machines together.
var placeholders = map[string]bool{
	"to be filled by o.e.m.": true,
	"default string":         true,
	"not specified":          true,
	"not applicable":         true,
	"system product name":    true,
	"system manufacturer":    true,
	"unknown":                true,
	"none":                   true,
	"0123456789":             true,
	"123456789":              true,
	"n/a":                    true,
	"o.e.m.":                 true,
	"oem":                    true,
}

// clean collapses white space and drops placeholder values.
func clean(s string) string {
	s = collapse(s)
	if placeholders[strings.ToLower(s)] {
		return ""
	}
	return s
}

// otelArch spells a GOARCH as OpenTelemetry's host.arch does.
func otelArch(goarch string) string {
	switch goarch {
	case "386":
		return "x86"
	case "arm":
		return "arm32"
	case "ppc64le":
		return "ppc64"
	case "ppc":
		return "ppc32"
	default: // amd64, arm64, s390x, ia64 are spelled alike
		return goarch
	}
}

// setX86 fills the x86 CPU facts from gopsutil, which reads the same /proc/cpuinfo below the
// root, and keeps what the own parser found where gopsutil has nothing. gopsutil does not
// decode arm64 implementer/part codes into server CPU names, so setARM does that itself.
func setX86(ctx context.Context, h *Host, fs sysfs.FS) {
	ctx = context.WithValue(ctx, common.EnvKey, common.EnvMap{
		common.HostProcEnvKey: fs.Path("proc"),
		common.HostSysEnvKey:  fs.Path("sys"),
	})
	infos, err := cpu.InfoWithContext(ctx)
	if err != nil || len(infos) == 0 {
		return
	}
	ci := infos[0]
	for dst, v := range map[*string]string{
		&h.CPUVendor: ci.VendorID, &h.CPUModel: clean(ci.ModelName),
		&h.CPUFamily: ci.Family, &h.CPUModelID: ci.Model,
	} {
		if v != "" {
			*dst = v
		}
	}
	for _, f := range ci.Flags {
		if f == "hypervisor" {
			h.Virtual = true
		}
	}
}

// Attributes returns the host's resource attributes with the keys of internal/semconv,
// leaving out empty strings and zero counts so a missing fact is absent, not "".
func (h Host) Attributes() []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, 0, 11)
	for _, s := range []struct{ key, value string }{
		{semconv.AttrHostName, h.Name},
		{semconv.AttrHostArch, h.Arch},
		{semconv.AttrHostCPUVendor, h.CPUVendor},
		{semconv.AttrHostCPUModel, h.CPUModel},
		{semconv.AttrHostCPUFamily, h.CPUFamily},
		{semconv.AttrHostCPUModelID, h.CPUModelID},
	} {
		if s.value != "" {
			kvs = append(kvs, attribute.String(s.key, s.value))
		}
	}
	for _, n := range []struct {
		key   string
		value int
	}{
		{semconv.AttrSockets, h.Sockets},
		{semconv.AttrCores, h.Cores},
		{semconv.AttrLogicalCPUs, h.LogicalCPUs},
	} {
		if n.value > 0 {
			kvs = append(kvs, attribute.Int(n.key, n.value))
		}
	}
	for _, s := range []struct{ key, value string }{
		{semconv.AttrSystemVendor, h.SysVendor},
		{semconv.AttrSystemProduct, h.Product},
	} {
		if s.value != "" {
			kvs = append(kvs, attribute.String(s.key, s.value))
		}
	}
	if h.CPUCore != "" {
		kvs = append(kvs, attribute.String(semconv.AttrCPUCore, h.CPUCore))
	}
	if h.ThreadsPerCore > 0 {
		kvs = append(kvs, attribute.Int(semconv.AttrThreadsPerCore, h.ThreadsPerCore))
	}
	if h.NominalHz > 0 {
		kvs = append(kvs, attribute.Float64(semconv.AttrNominalHz, h.NominalHz))
	}
	kvs = append(kvs, attribute.Bool(semconv.AttrVirtual, h.Virtual))
	return kvs
}
