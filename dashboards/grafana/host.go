package grafana

import (
	"fmt"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// HostDetail is one host's dashboard: power by scope and source, measured against estimated,
// utilization, frequency, idle states, identity, and how fresh every host's data is.
func HostDetail() *Dashboard {
	b := newDashboard("fleetwatt-host", "fleetwatt — Host detail",
		"One host: power of every scope and source, CPU utilization, frequency and idle states, and the data's freshness across the fleet.",
		tagVar(semconv.TagRegion, "Region", semconv.MeasurementPower, ""),
		tagVar(semconv.TagArch, "Architecture", semconv.MeasurementPower, match(semconv.TagRegion)),
		oneVar(semconv.TagHost, "Host", semconv.MeasurementPower, semconv.TagHost, match(semconv.TagRegion, semconv.TagArch), "", "The host shown"),
	)
	host := match(semconv.TagHost)
	tCPU := id(semconv.TagCPU)
	tSource, tMethod, tState := id(semconv.TagSource), id(semconv.TagMethod), id(semconv.TagIdleState)

	b.row("Power: ${host}")
	perSensor := fmt.Sprintf(`SELECT sum(%s) / sum(%s) AS "p" FROM %s WHERE %s AND $timeFilter GROUP BY time($__interval), %s, %s, %s, %s fill(none)`,
		fEnergy, fIntvl, mPower, host, tScope, tSource, tMethod, tSensor)
	b.add(16, 9, timeseries("Power by scope and source",
		"Average power per interval of every scope and source the host reports, its sensors (sockets) summed. Scopes overlap "+
			"(wall ⊃ platform ⊃ cpu-package ⊃ cpu-core), so the lines are never to be added; measured readings and a model's estimates "+
			"(method) are told apart in the legend.",
		"watt", false, series("A", "$tag_scope · $tag_source ($tag_method)",
			fmt.Sprintf(`SELECT sum("p") AS "power_w" FROM (%s) WHERE $timeFilter GROUP BY time($__interval), %s, %s, %s fill(none)`, perSensor, tScope, tSource, tMethod),
			Check{Tags: []string{semconv.TagScope, semconv.TagSource, semconv.TagMethod}, Columns: []string{"power_w"}, Min: 0, Max: 1e6})))
	b.add(8, 9, table("Energy by scope, source and method",
		"Energy over the range of every scope and source, and whether it was measured or estimated by a model.",
		[]Override{renamed("energy_kwh", "Energy"), unitOf("energy_kwh", "kwatth")}, nil,
		rows("A", fmt.Sprintf(`SELECT sum(%s) / 3600000 AS "energy_kwh" FROM %s WHERE %s AND $timeFilter GROUP BY %s, %s, %s`,
			fEnergy, mPower, host, tScope, tSource, tMethod),
			Check{Tags: []string{semconv.TagScope, semconv.TagSource, semconv.TagMethod}, Columns: []string{"energy_kwh"}, Min: 0, Max: 1e9})))

	b.row("CPU")
	wholeHost := fmt.Sprintf(`%s AND %s = '' AND $timeFilter`, host, tCPU)
	b.add(8, 8, timeseries("CPU utilization",
		"Busy CPU time over all CPU time, per interval.", "percentunit", false,
		series("A", "utilization", fmt.Sprintf(`SELECT sum(%s) / sum(%s) AS "utilization" FROM %s WHERE %s GROUP BY time($__interval) fill(none)`, fBusy, fTotal, mCPU, wholeHost),
			Check{Columns: []string{"utilization"}, Min: 0, Max: 1})))
	b.add(8, 8, timeseries("CPU frequency",
		"Mean current frequency over the logical CPUs (cpufreq scaling_cur_freq), and the CPU's nominal clock.", "hertz", false,
		series("A", "current", fmt.Sprintf(`SELECT mean(%s) AS "frequency_hz" FROM %s WHERE %s GROUP BY time($__interval) fill(none)`, id(semconv.FieldFrequency), mCPU, wholeHost),
			Check{Columns: []string{"frequency_hz"}, Min: 1e7, Max: 1e10}),
		series("B", "nominal", fmt.Sprintf(`SELECT last(%s) AS "nominal_hz" FROM %s WHERE %s AND $timeFilter GROUP BY time($__interval) fill(none)`, id(semconv.FieldNominalHz), mHost, host),
			Check{Columns: []string{"nominal_hz"}, Min: 1e7, Max: 1e10})))
	p := timeseries("Idle states",
		"Average number of logical CPUs in each cpuidle state and busy, per interval (stacked: the logical CPUs). Deep states save "+
			"the most power; a host that never reaches them is never idle for long.", "none", true,
		series("A", "$tag_state", fmt.Sprintf(`SELECT sum(%s) / sum(%s) AS "cpus" FROM %s WHERE %s AND $timeFilter GROUP BY time($__interval), %s fill(none)`,
			id(semconv.FieldIdleTime), fIntvl, mIdle, host, tState),
			Check{Tags: []string{semconv.TagIdleState}, Columns: []string{"cpus"}, Min: 0, Max: 1 << 16}),
		series("B", "busy", fmt.Sprintf(`SELECT sum(%s) / sum(%s) AS "cpus" FROM %s WHERE %s GROUP BY time($__interval) fill(none)`, fBusy, fIntvl, mCPU, wholeHost),
			Check{Columns: []string{"cpus"}, Min: 0, Max: 1 << 16}))
	b.add(8, 8, p)

	b.row("Identity and freshness")
	b.add(10, 6, table("Host facts",
		"What the agent reported about the host: sockets, physical cores, logical CPUs, nominal clock and collection interval.",
		[]Override{unitOf("nominal_hz", "hertz"), unitOf("collect_interval_s", "s")}, nil,
		rows("A", fmt.Sprintf(`SELECT last(%s) AS "sockets", last(%s) AS "cores", last(%s) AS "logical_cpus", last(%s) AS "nominal_hz", last(%s) AS "collect_interval_s" FROM %s WHERE %s AND $timeFilter`,
			id(semconv.FieldSockets), id(semconv.FieldCores), id(semconv.FieldLogicalCPUs), id(semconv.FieldNominalHz), id(semconv.FieldIntervalCfg), mHost, host),
			Check{Columns: []string{"sockets", "cores", "logical_cpus", "nominal_hz", "collect_interval_s"}, Min: 0.001, Max: 1e10})))
	fresh := table("Data freshness: last reading per host",
		"For every host of the selected regions and architectures: when its last primary power reading arrived, and the interval it covered. "+
			"A host that stopped reporting falls behind here first.",
		[]Override{
			{Matcher: Matcher{ID: "byName", Options: "Time"}, Properties: []Property{{ID: "unit", Value: "dateTimeFromNow"}, {ID: "displayName", Value: "Last reading"}}},
			renamed("interval_s", "Interval"), unitOf("interval_s", "s"),
		}, nil,
		rows("A", fmt.Sprintf(`SELECT last(%s) AS "interval_s" FROM %s WHERE %s AND %s AND $timeFilter GROUP BY %s`,
			fIntvl, mPower, primary, match(semconv.TagRegion, semconv.TagArch), tHost),
			Check{Tags: []string{semconv.TagHost}, Columns: []string{"interval_s"}, Min: 0.001, Max: 86400}))
	// The time column is the point of this table: keep it.
	fresh.Transformations = []Transformation{{ID: "organize", Options: map[string]any{"excludeByName": map[string]any{}}}}
	b.add(14, 6, fresh)
	return b.build()
}
