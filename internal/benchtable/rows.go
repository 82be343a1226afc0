package main

// Better says which way a figure improves.
type Better int

const (
	// Lower is better: time, memory, allocations.
	Lower Better = iota
	// Higher is better: throughput, ratios.
	Higher
)

// Row is one line of the table: one metric of one benchmark.
type Row struct {
	// ID keys the row's recorded figure in bench/baseline.json; it never changes once
	// recorded.
	ID string
	// What the figure is, as the table shows it.
	What string
	// Pkg and Bench name the benchmark: the package's import path and the benchmark's full
	// name without the GOMAXPROCS suffix ("BenchmarkExport/protocol=grpc"). Bench "" marks a
	// placeholder: the benchmark is yet to be written, the row shows as such and counts for
	// nothing.
	Pkg, Bench string
	// Metric is the unit the benchmark reports it in: "ns/op", "B/op", "allocs/op", or a
	// b.ReportMetric unit such as "ms-cpu/cycle".
	Metric string
	// Scale converts the metric into Unit (1e-3 for ns/op shown in µs); 0 means 1.
	Scale float64
	// Unit is the unit shown.
	Unit string
	// Target is the figure to meet, in Unit; 0 means none.
	Target float64
	// Better is the direction of improvement: it decides whether the target is met and
	// whether a change is a regression.
	Better Better
	// Tolerance is the change beyond which the figure counts as a regression, as a fraction
	// (0.2 is 20 %); 0 means DefaultTolerance.
	Tolerance float64
}

// DefaultTolerance is the regression threshold of a row that sets none: 20 %.
const DefaultTolerance = 0.20

const (
	agent       = "github.com/fleetwatt/fleetwatt/agent"
	collect     = "github.com/fleetwatt/fleetwatt/agent/internal/collect"
	export      = "github.com/fleetwatt/fleetwatt/agent/internal/export"
	cpuidle     = "github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpuidle"
	footprint10 = "BenchmarkAgentFootprint/interval=10s"
	footprint1  = "BenchmarkAgentFootprint/interval=1s"
	pipeline    = "github.com/fleetwatt/fleetwatt/collector/internal/pipeline"
	wal         = "github.com/fleetwatt/fleetwatt/collector/internal/wal"
	report      = "github.com/fleetwatt/fleetwatt/collector/internal/report"
	simulate    = "github.com/fleetwatt/fleetwatt/agent/internal/simulate"
)

// Rows is the table, in the order it is printed. Add a row here for a new figure: its
// benchmark, the metric, the target if there is one, and the direction of improvement;
// record it with `go run ./internal/benchtable -record` on the reference machine.
var Rows = []Row{
	// The agent binary as released, against the 2-socket Intel fixture, exporting to a real
	// collector and InfluxDB on loopback (agent/footprint_bench_test.go).
	{ID: "agent.cpu.10s", What: "agent CPU per cycle, --interval 10s", Pkg: agent, Bench: footprint10, Metric: "ms-cpu/cycle", Unit: "ms", Target: 1, Better: Lower},
	{ID: "agent.cpu.1s", What: "agent CPU per cycle, --interval 1s", Pkg: agent, Bench: footprint1, Metric: "ms-cpu/cycle", Unit: "ms", Target: 1, Better: Lower},
	{ID: "agent.rss.10s", What: "agent RSS, --interval 10s", Pkg: agent, Bench: footprint10, Metric: "MB-rss", Unit: "MiB", Target: 12, Better: Lower},
	{ID: "agent.rss.peak.10s", What: "agent peak RSS (VmHWM), --interval 10s", Pkg: agent, Bench: footprint10, Metric: "MB-peak-rss", Unit: "MiB", Better: Lower},
	{ID: "agent.rss.anon.10s", What: "agent anonymous RSS (heap, stacks), --interval 10s", Pkg: agent, Bench: footprint10, Metric: "MB-anon", Unit: "MiB", Better: Lower},
	{ID: "agent.rss.file.10s", What: "agent file-backed RSS (its binary), --interval 10s", Pkg: agent, Bench: footprint10, Metric: "MB-file", Unit: "MiB", Better: Lower},
	{ID: "agent.rss.1s", What: "agent RSS, --interval 1s", Pkg: agent, Bench: footprint1, Metric: "MB-rss", Unit: "MiB", Target: 12, Better: Lower},

	// The agent's hot paths in process.
	{ID: "agent.cycle.time", What: "collection cycle (read, compute, build), Intel fixture", Pkg: collect, Bench: "BenchmarkCycle", Metric: "ns/op", Scale: 1e-3, Unit: "µs", Better: Lower},
	{ID: "agent.cycle.bytes", What: "collection cycle, bytes allocated", Pkg: collect, Bench: "BenchmarkCycle", Metric: "B/op", Scale: 1e-3, Unit: "kB", Better: Lower},
	{ID: "agent.cycle.allocs", What: "collection cycle, allocations", Pkg: collect, Bench: "BenchmarkCycle", Metric: "allocs/op", Unit: "allocs", Better: Lower},
	{ID: "agent.export.grpc.time", What: "one export over OTLP/gRPC, loopback endpoint included", Pkg: export, Bench: "BenchmarkExport/protocol=grpc", Metric: "ns/op", Scale: 1e-3, Unit: "µs", Better: Lower},
	{ID: "agent.export.grpc.allocs", What: "one export over OTLP/gRPC, allocations", Pkg: export, Bench: "BenchmarkExport/protocol=grpc", Metric: "allocs/op", Unit: "allocs", Better: Lower},
	{ID: "agent.export.http.time", What: "one export over OTLP/HTTP, loopback endpoint included", Pkg: export, Bench: "BenchmarkExport/protocol=http/protobuf", Metric: "ns/op", Scale: 1e-3, Unit: "µs", Better: Lower},
	{ID: "agent.cpuidle.1024", What: "cpuidle reading, 256 CPUs × 4 states", Pkg: cpuidle, Bench: "BenchmarkRead", Metric: "ns/op", Scale: 1e-6, Unit: "ms", Better: Lower},

	// The collector. A point is an InfluxDB point (one line); an agent's export of one host is
	// 11 OTLP data points folded into 4 points.
	{ID: "collector.decode.points", What: "collector decode+convert to points, one core, 100 hosts per request", Pkg: pipeline, Bench: "BenchmarkDecode/hosts-per-request=100", Metric: "points/s", Unit: "points/s", Target: 400_000, Better: Higher},
	{ID: "collector.decode.datapoints", What: "the same in OTLP data points", Pkg: pipeline, Bench: "BenchmarkDecode/hosts-per-request=100", Metric: "datapoints/s", Unit: "datapoints/s", Target: 400_000, Better: Higher},
	{ID: "collector.decode.points.1", What: "collector decode+convert, one host per request", Pkg: pipeline, Bench: "BenchmarkDecode/hosts-per-request=1", Metric: "points/s", Unit: "points/s", Better: Higher},
	{ID: "collector.e2e.ratio", What: "collector into InfluxDB vs influxdb-client-go direct, 100 hosts per request", Pkg: pipeline, Bench: "BenchmarkEndToEndVsDirect/hosts-per-request=100", Metric: "ratio", Unit: "ratio", Target: 0.9, Better: Higher},
	{ID: "collector.e2e.points", What: "collector into InfluxDB, 100 hosts per request", Pkg: pipeline, Bench: "BenchmarkEndToEndVsDirect/hosts-per-request=100", Metric: "collector-points/s", Unit: "points/s", Better: Higher},
	{ID: "collector.e2e.ratio.1", What: "the same ratio, one host per request", Pkg: pipeline, Bench: "BenchmarkEndToEndVsDirect/hosts-per-request=1", Metric: "ratio", Unit: "ratio", Better: Higher},
	{ID: "collector.wal.records", What: "WAL append with fsync, 64 appenders, 8 KiB records", Pkg: wal, Bench: "BenchmarkAppend/appenders=64", Metric: "records/s", Unit: "records/s", Better: Higher},
	{ID: "collector.wal.bytes", What: "WAL append with fsync, 64 appenders, bytes", Pkg: wal, Bench: "BenchmarkAppend/appenders=64", Metric: "MB/s", Unit: "MB/s", Better: Higher},
	{ID: "collector.report.latency", What: "report over 30 days × 2,000 hosts (fetch + build)", Pkg: report, Bench: "BenchmarkReport30d/report", Metric: "s/report", Unit: "s", Target: 1, Better: Lower},
	{ID: "collector.plan.latency", What: "plan over 30 days × 2,000 hosts", Pkg: report, Bench: "BenchmarkReport30d/plan", Metric: "s/plan", Unit: "s", Target: 1, Better: Lower},
	{ID: "collector.rss.load", What: "collector peak RSS, 3,000 hosts every 10 s with its WAL", Pkg: simulate, Bench: "BenchmarkLoad", Metric: "MB-rss", Unit: "MiB", Better: Lower},
}
