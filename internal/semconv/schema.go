package semconv

// The InfluxDB schema: measurements, tags and fields the collector writes and the queries read.
// docs/schema.md explains each one.

// Measurements.
const (
	// MeasurementPower holds one point per power sensor per interval: FieldEnergy,
	// FieldInterval and FieldPower from a delta hw.energy, FieldEnergyTotal from a cumulative
	// one, and FieldPower from hw.power (the agent sends both at the same timestamp, so they
	// land in one point).
	MeasurementPower = "power"
	// MeasurementCPU holds one point per host (or logical CPU) per interval from
	// system.cpu.time: FieldBusy, FieldTotal, FieldInterval, one "<mode>_s" field per mode, and
	// FieldUtilization from system.cpu.utilization.
	MeasurementCPU = "cpu"
	// MeasurementHost holds one point per host per OTLP export: its identity facts as fields.
	MeasurementHost = "host"
	// MeasurementWork holds one point per host per interval from fleetwatt.work.operations:
	// FieldOps (delta) or FieldOpsTotal (cumulative), and FieldInterval.
	MeasurementWork = "work"
	// MeasurementHostHour holds the collector's hourly rollup per host and power scope and
	// source: energy, CPU time, work, and the sums a power-curve fit needs. Written at the
	// hour's start; computing it twice writes the same point.
	MeasurementHostHour = "host_1h"
	// MeasurementHostDay holds the daily rollup: the same tags and fields as
	// MeasurementHostHour, each field the sum over the UTC day's hourly points, written at the
	// day's start (00:00 UTC), so that a report over a month reads 30 points per host instead
	// of 720.
	MeasurementHostDay = "host_1d"
	// MeasurementCPUIdle holds one point per host (and idle state) per interval from
	// fleetwatt.cpu.idle_state.*: FieldIdleTime and FieldIdleUsage.
	MeasurementCPUIdle = "cpuidle"
)

// Tag keys. Every tag is bounded: host by the fleet, cpu by the cores of a host, the others by
// small vocabularies.
const (
	TagHost       = "host"
	TagArch       = "arch"
	TagCPUVendor  = "cpu_vendor"
	TagCPUModel   = "cpu_model"
	TagRegion     = "region"
	TagZone       = "zone"
	TagDatacenter = "datacenter"
	TagSource     = "source"
	TagScope      = "scope"
	TagMethod     = "method"
	TagSensor     = "sensor"
	TagCPU        = "cpu"
	TagPrimary    = "primary"
	TagIdleState  = "state"
)

// ResourceTags maps resource attributes to the tags every fleetwatt point carries.
var ResourceTags = []struct{ Attr, Tag string }{
	{AttrHostName, TagHost},
	{AttrHostArch, TagArch},
	{AttrHostCPUVendor, TagCPUVendor},
	{AttrHostCPUModel, TagCPUModel},
	{AttrCloudRegion, TagRegion},
	{AttrCloudZone, TagZone},
	{AttrDatacenter, TagDatacenter},
}

// PowerTags maps hw.energy and hw.power data point attributes to tags.
var PowerTags = []struct{ Attr, Tag string }{
	{AttrSource, TagSource},
	{AttrScope, TagScope},
	{AttrMethod, TagMethod},
	{AttrHwID, TagSensor},
	{AttrPrimary, TagPrimary},
}

// Field keys.
const (
	FieldEnergy      = "energy_j"       // J over the interval (delta)
	FieldEnergyTotal = "energy_total_j" // J since the sender's start time (cumulative senders)
	FieldInterval    = "interval_s"     // s covered by the point (end − start)
	FieldPower       = "power_w"        // W, energy_j / interval_s, or hw.power as sent

	FieldBusy        = "busy_s"       // busy CPU-seconds over the interval, all CPUs
	FieldBusyTotal   = "busy_total_s" // busy CPU-seconds since the sender's start (cumulative senders)
	FieldTotal       = "total_s"      // CPU-seconds of all modes over the interval
	FieldUtilization = "utilization"  // 0..1, from system.cpu.utilization
	FieldFrequency   = "frequency_hz" // Hz, from system.cpu.frequency

	FieldOps      = "ops"       // operations over the interval
	FieldOpsTotal = "ops_total" // operations since the sender's start (cumulative)

	// Fields of MeasurementHostHour. P is the host's power of the point's scope and source
	// (its sensors summed) over one collection interval, u the CPU utilization over the same
	// interval; the sums run over the intervals of the hour that have both.
	FieldCPUInterval = "cpu_interval_s" // s covered by cpu points
	FieldSamples     = "samples"        // intervals with both power and utilization
	FieldSumU        = "sum_u"
	FieldSumUU       = "sum_uu"
	FieldSumUUU      = "sum_uuu"
	FieldSumUUUU     = "sum_uuuu"
	FieldSumP        = "sum_p"
	FieldSumUP       = "sum_up"
	FieldSumUUP      = "sum_uup"
	FieldSumPP       = "sum_pp"
	// FieldCost and FieldCO2e are the rollup's energy priced and turned into carbon with the
	// host's region's factors (electricity price, grid carbon intensity, both times the PUE),
	// so that InfluxQL can sum money and carbon without a join.
	FieldCost = "cost_usd" // USD
	FieldCO2e = "co2e_kg"  // kg CO2e

	FieldIdleTime  = "time_s"       // s in the idle state over the interval, all CPUs
	FieldIdleUsage = "usage"        // entries into the idle state over the interval, all CPUs
	FieldIdleTimeT = "time_total_s" // s in the idle state since the sender's start (cumulative)
	FieldIdleUseT  = "usage_total"  // entries since the sender's start (cumulative)

	FieldSockets     = "sockets"
	FieldCores       = "cores"
	FieldLogicalCPUs = "logical_cpus"
	FieldSysVendor   = "sys_vendor"
	FieldProduct     = "product_name"
	FieldAgent       = "agent_version"
	FieldIntervalCfg = "collect_interval_s"
	FieldThreads     = "threads_per_core"
	FieldNominalHz   = "nominal_hz"
	FieldCPUCore     = "cpu_core"
	FieldVirtual     = "virtual"
)

// ModeField is the cpu measurement's field for time spent in mode ("user_s").
func ModeField(mode string) string { return mode + "_s" }

// ModeTotalField is the field for time spent in mode since a cumulative sender's start
// ("user_total_s").
func ModeTotalField(mode string) string { return mode + "_total_s" }
