// Package semconv is the contract between fleetwatt-agent and fleetwatt-collector: the names,
// units and attribute keys of every metric the agent sends over OTLP, the vocabulary of power
// scopes and sources, and how each attribute becomes an InfluxDB tag. docs/schema.md is the
// human-readable form of this file; a test keeps the two in step.
//
// Names follow the OpenTelemetry semantic conventions (v1.43.0) wherever one exists
// (hw.energy, hw.power, system.cpu.time, host.*, cloud.*); fleetwatt's own attributes live
// under the "fleetwatt." namespace.
package semconv

import "slices"

// SchemaURL is the OpenTelemetry schema the attribute and metric names follow.
const SchemaURL = "https://opentelemetry.io/schemas/1.43.0"

// InstrumentationScope names the agent's OTLP instrumentation scope. The collector treats
// metrics from this scope (and any other scope that uses these names) as fleetwatt metrics.
const InstrumentationScope = "github.com/fleetwatt/fleetwatt/agent"

// Metric names, units and meaning. Energy and CPU time travel as monotonic sums (counters),
// delta temporality by default; the collector accepts cumulative too.
const (
	// MetricEnergy is the energy a power sensor measured (or the model estimated) over the
	// interval between two readings. Double sum, monotonic, unit J.
	MetricEnergy = "hw.energy"
	// MetricPower is the average power over the same interval (Δenergy / Δt). Double gauge, W.
	MetricPower = "hw.power"
	// MetricCPUTime is CPU time per mode summed over all logical CPUs of the host (or per CPU
	// when cpu.logical_number is set). Double sum, monotonic, unit s.
	MetricCPUTime = "system.cpu.time"
	// MetricCPUUtilization is the busy fraction (all modes but idle and iowait) of all logical
	// CPUs over the interval, 0..1. Double gauge, unit 1.
	MetricCPUUtilization = "system.cpu.utilization"
	// MetricCPUFrequency is the current CPU frequency, the mean over all logical CPUs (or one
	// CPU with cpu.logical_number). Double gauge, unit Hz.
	MetricCPUFrequency = "system.cpu.frequency"
	// MetricCPUIdleTime is the time logical CPUs spent in an idle state (cpuidle), summed over
	// all CPUs, per state. Double sum, monotonic, unit s.
	MetricCPUIdleTime = "fleetwatt.cpu.idle_state.time"
	// MetricCPUIdleUsage is how many times CPUs entered an idle state, summed over all CPUs.
	// Double sum, monotonic, unit {entry}.
	MetricCPUIdleUsage = "fleetwatt.cpu.idle_state.usage"
	// MetricWork is the useful work a host did: operations (requests, transactions, benchmark
	// ops) counted by an application, or by the simulator. Double sum, monotonic, delta or
	// cumulative, unit {operation}. Energy per operation is the architecture-neutral measure.
	MetricWork = "fleetwatt.work.operations"
	// MetricRejected counts power readings the agent rejected as physically implausible, by
	// source and reason, since it started. Double sum, monotonic, cumulative, unit {reading}.
	MetricRejected = "fleetwatt.agent.readings.rejected"
)

// Units in UCUM, as OpenTelemetry writes them.
const (
	UnitJoule  = "J"
	UnitWatt   = "W"
	UnitSecond = "s"
	UnitRatio  = "1"
	UnitHertz  = "Hz"
)

// Resource attribute keys (OpenTelemetry semantic conventions unless prefixed fleetwatt.).
const (
	AttrHostName       = "host.name"
	AttrHostArch       = "host.arch" // amd64 | arm64, as OpenTelemetry spells them
	AttrHostCPUVendor  = "host.cpu.vendor.id"
	AttrHostCPUModel   = "host.cpu.model.name"
	AttrHostCPUFamily  = "host.cpu.family"
	AttrHostCPUModelID = "host.cpu.model.id"
	AttrCloudRegion    = "cloud.region"
	AttrCloudZone      = "cloud.availability_zone"
	AttrServiceName    = "service.name"
	AttrServiceVersion = "service.version"
	AttrOSType         = "os.type"
	AttrDatacenter     = "fleetwatt.datacenter"
	AttrSockets        = "fleetwatt.host.cpu.sockets"       // int: physical packages
	AttrCores          = "fleetwatt.host.cpu.cores"         // int: physical cores, all sockets
	AttrLogicalCPUs    = "fleetwatt.host.cpu.logical_count" // int: logical CPUs (vCPUs)
	AttrSystemVendor   = "fleetwatt.host.dmi.sys_vendor"
	AttrSystemProduct  = "fleetwatt.host.dmi.product_name"
	AttrAgentInterval  = "fleetwatt.agent.interval_s"          // double: the agent's collection interval
	AttrThreadsPerCore = "fleetwatt.host.cpu.threads_per_core" // int: SMT threads per core
	AttrNominalHz      = "fleetwatt.host.cpu.nominal_hz"       // double: nominal (base) frequency, Hz
	AttrCPUCore        = "fleetwatt.host.cpu.core"             // arm64 core design: "Neoverse-N1"
	AttrVirtual        = "fleetwatt.host.virtual"              // bool: runs under a hypervisor
)

// Data point attribute keys.
const (
	AttrHwID      = "hw.id"   // sensor identity within a host and source: "package-0", "ACPI000D:00"
	AttrHwType    = "hw.type" // OpenTelemetry hw.type: cpu, memory, power_supply, enclosure, gpu
	AttrHwName    = "hw.name" // the driver's label: "package-0", "CPU power", "Grace Power Socket 0"
	AttrSource    = "fleetwatt.power.source"
	AttrScope     = "fleetwatt.power.scope"
	AttrMethod    = "fleetwatt.power.method"
	AttrPrimary   = "fleetwatt.power.primary"  // bool: this reading stands for the host in comparisons
	AttrIdleState = "fleetwatt.cpu.idle_state" // cpuidle state name: "C6", "WFI"
	AttrReason    = "fleetwatt.reason"         // why a reading was rejected
	AttrCPUMode   = "cpu.mode"
	AttrCPUNumber = "cpu.logical_number"
)

// Scope says what a power reading covers. Readings of different scopes overlap and are never
// summed (psys ⊃ package ⊃ core; Grace Module ⊃ Grace socket ⊃ CPU rail); per-socket readings of
// the same scope are.
type Scope string

// The scope vocabulary, widest first.
const (
	ScopeWall          Scope = "wall"           // PSU input, as a BMC or a PDU sees it
	ScopeNodeDC        Scope = "node-dc"        // PSU output
	ScopePlatform      Scope = "platform"       // RAPL psys, ACPI power meter, Grace "Module"
	ScopeCPUPackage    Scope = "cpu-package"    // RAPL package, Ampere "CPU power", Grace "Grace" (CPU+LPDDR5X)
	ScopeCPUCore       Scope = "cpu-core"       // RAPL core (PP0), Grace "CPU" rail
	ScopeDRAM          Scope = "dram"           // RAPL dram
	ScopeIO            Scope = "io"             // Ampere "IO power", Grace SysIO
	ScopeGPU           Scope = "gpu"            // NVML board power
	ScopeEstimatedHost Scope = "estimated-host" // model estimate for the whole host
)

// Scopes lists the vocabulary, widest first.
var Scopes = []Scope{
	ScopeWall, ScopeNodeDC, ScopePlatform, ScopeCPUPackage, ScopeCPUCore,
	ScopeDRAM, ScopeIO, ScopeGPU, ScopeEstimatedHost,
}

// Valid reports whether s is in the vocabulary.
func (s Scope) Valid() bool { return slices.Contains(Scopes, s) }

// HwType is the OpenTelemetry hw.type of the component a scope measures.
func (s Scope) HwType() string {
	switch s {
	case ScopeWall, ScopeNodeDC:
		return "power_supply"
	case ScopeCPUPackage, ScopeCPUCore:
		return "cpu"
	case ScopeDRAM:
		return "memory"
	case ScopeGPU:
		return "gpu"
	default: // platform, io, estimated-host: the enclosure as a whole
		return "enclosure"
	}
}

// Power sources, the value of fleetwatt.power.source.
const (
	SourceRAPL    = "rapl"
	SourceHwmon   = "hwmon"
	SourceACPI    = "acpi"
	SourceIPMI    = "ipmi"
	SourceRedfish = "redfish"
	SourceNVML    = "nvml"
	SourceModel   = "model"
	// SourceSimulator marks readings of the simulated fleet, so that they are never mistaken
	// for measurements of real hosts.
	SourceSimulator = "simulator"
)

// Methods, the value of fleetwatt.power.method.
const (
	MethodMeasured  = "measured"
	MethodEstimated = "estimated"
)

// CPU modes, the values of cpu.mode that the agent sends. Busy time is every mode but idle
// and iowait.
const (
	ModeUser      = "user"
	ModeNice      = "nice"
	ModeSystem    = "system"
	ModeIdle      = "idle"
	ModeIOWait    = "iowait"
	ModeInterrupt = "interrupt"
	ModeSteal     = "steal"
)

// CPUModes lists the modes in /proc/stat order.
var CPUModes = []string{ModeUser, ModeNice, ModeSystem, ModeIdle, ModeIOWait, ModeInterrupt, ModeSteal}

// Busy reports whether time in mode counts as busy.
func Busy(mode string) bool { return mode != ModeIdle && mode != ModeIOWait }
