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
	// CPUCore is the arm64 core microarchitecture ("Neoverse-N1"); empty on x86.
	CPUCore string
	// CPUFamily and CPUModelID are host.cpu.family and host.cpu.model.id: the x86 cpu family
	// and model in decimal, or the arm64 implementer and part in hex ("0x41", "0xd0c").
	CPUFamily, CPUModelID string
	// Sockets is the number of physical packages, Cores the physical cores of all packages,
	// LogicalCPUs the logical CPUs that /proc/stat counts.
	Sockets, Cores, LogicalCPUs int
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
	return h, nil
}

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
	} else if ci.Part != "" {
		// An unknown core still gets a stable, searchable name.
		h.CPUModel = h.CPUVendor + " " + ci.Part
	}
	// The DMI table is readable by root only; the agent without root keeps the core name.
	if b, err := sysfs.ReadFile(fs.Path("sys", "firmware", "dmi", "tables", "DMI")); err == nil {
		if v := clean(smbiosProcessorVersion(b)); v != "" {
			h.CPUModel = v
		}
	}
}

// armImplementers names the arm64 MIDR implementer codes (arch/arm64/include/asm/cputype.h).
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
	0xc0: "Ampere",
}

type armPart struct{ implementer, part uint64 }

// armParts names server cores by implementer and part (arch/arm64/include/asm/cputype.h):
// the model is the product where the part number is one, the core its microarchitecture.
var armParts = map[armPart]struct{ model, core string }{
	{0x41, 0xd03}: {"Cortex-A53", "Cortex-A53"},
	{0x41, 0xd07}: {"Cortex-A57", "Cortex-A57"},
	{0x41, 0xd08}: {"Cortex-A72", "Cortex-A72"},   // AWS Graviton (first generation)
	{0x41, 0xd0c}: {"Neoverse-N1", "Neoverse-N1"}, // Ampere Altra, AWS Graviton2
	{0x41, 0xd40}: {"Neoverse-V1", "Neoverse-V1"}, // AWS Graviton3
	{0x41, 0xd49}: {"Neoverse-N2", "Neoverse-N2"},
	{0x41, 0xd4a}: {"Neoverse-E1", "Neoverse-E1"},
	{0x41, 0xd4f}: {"Neoverse-V2", "Neoverse-V2"}, // NVIDIA Grace, AWS Graviton4, Google Axion
	{0x41, 0xd84}: {"Neoverse-V3", "Neoverse-V3"},
	{0x41, 0xd8e}: {"Neoverse-N3", "Neoverse-N3"},
	{0x43, 0x0af}: {"ThunderX2", "Vulcan"},
	{0x42, 0x516}: {"ThunderX2", "Vulcan"},
	{0x46, 0x001}: {"A64FX", "A64FX"},
	{0x48, 0xd01}: {"Kunpeng-920", "TSV110"},
	{0x50, 0x000}: {"X-Gene", "X-Gene"},
	{0x6d, 0xd49}: {"Azure Cobalt 100", "Neoverse-N2"},
	{0xc0, 0xac3}: {"AmpereOne", "AmpereOne"},
	{0xc0, 0xac4}: {"AmpereOne A", "AmpereOne"},
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
		n, ok := strings.CutPrefix(e.Name(), "cpu")
		if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
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
	return kvs
}
