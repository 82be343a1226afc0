package grafana

import (
	"fmt"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Short names of the schema, for readable queries.
var (
	mPower  = id(semconv.MeasurementPower)
	mCPU    = id(semconv.MeasurementCPU)
	mHour   = id(semconv.MeasurementHostHour)
	mIdle   = id(semconv.MeasurementCPUIdle)
	mHost   = id(semconv.MeasurementHost)
	fEnergy = id(semconv.FieldEnergy)
	fIntvl  = id(semconv.FieldInterval)
	fBusy   = id(semconv.FieldBusy)
	fTotal  = id(semconv.FieldTotal)
	fCPUInt = id(semconv.FieldCPUInterval)
	fOps    = id(semconv.FieldOps)
	fCost   = id(semconv.FieldCost)
	fCO2e   = id(semconv.FieldCO2e)
	tHost   = id(semconv.TagHost)
	tSensor = id(semconv.TagSensor)
	tRegion = id(semconv.TagRegion)
	tModel  = id(semconv.TagCPUModel)
	tScope  = id(semconv.TagScope)
)

// fleetFilter is the condition of the fleet variables; scopeFilter picks the rollups' one
// scope: summing two scopes of one host would count its energy twice (wall ⊃ package).
var (
	fleetFilter = match(semconv.TagRegion, semconv.TagZone, semconv.TagArch, semconv.TagCPUModel)
	scopeFilter = match(semconv.TagScope)
	// primary selects the readings that stand for each host (its widest measured scope,
	// best source), so that a fleet total counts every host once.
	primary = fmt.Sprintf(`%s = 'true'`, id(semconv.TagPrimary))
)

// fleetVars are the efficiency and power-curve dashboards' filters, each narrowing the next.
func fleetVars() []Variable {
	return []Variable{
		tagVar(semconv.TagRegion, "Region", semconv.MeasurementPower, ""),
		tagVar(semconv.TagZone, "Zone", semconv.MeasurementPower, match(semconv.TagRegion)),
		tagVar(semconv.TagArch, "Architecture", semconv.MeasurementPower, match(semconv.TagRegion)),
		tagVar(semconv.TagCPUModel, "CPU model", semconv.MeasurementPower, match(semconv.TagRegion, semconv.TagArch)),
		oneVar(semconv.TagScope, "Scope", semconv.MeasurementHostHour, semconv.TagScope, "", string(semconv.ScopeWall),
			"The power scope the hourly rollups are summed over: one at a time, because scopes overlap (wall ⊃ platform ⊃ cpu-package)"),
	}
}

// The W-per-busy-CPU expression over rollups: average power over average busy CPUs, both
// ratios of sums (the report's Σ P̄ / Σ b when every host covers the range).
var wPerBusyCPU = fmt.Sprintf(`sum(%s) / sum(%s) / (sum(%s) / sum(%s))`, fEnergy, fIntvl, fBusy, fCPUInt)

// fleetPower is the fleet's power by tag over time: each host's average power per interval
// (its sensors summed: sockets), summed over the hosts. The buckets must hold every host's
// reading, hence the panels' 5-minute minimum interval.
func fleetPower(by string) string {
	inner := fmt.Sprintf(`SELECT sum(%s) / sum(%s) AS "p" FROM %s WHERE %s AND %s AND $timeFilter GROUP BY time($__interval), %s, %s, %s fill(none)`,
		fEnergy, fIntvl, mPower, primary, fleetFilter, tHost, tSensor, by)
	return fmt.Sprintf(`SELECT sum("p") AS "power_w" FROM (%s) WHERE $timeFilter GROUP BY time($__interval), %s fill(none)`, inner, by)
}

// Efficiency is the fleet efficiency dashboard: ARM against x86 per region, energy, cost and
// carbon over the selected range, and the fleet's power over time.
func Efficiency() *Dashboard {
	b := newDashboard("fleetwatt-efficiency", "fleetwatt — Fleet efficiency",
		"ARM against x86 per region: watts per busy CPU, work per joule, energy, cost and carbon over the selected range, from the hourly rollups (host_1h).",
		fleetVars()...)
	hour := fmt.Sprintf(`%s AND %s AND $timeFilter`, fleetFilter, scopeFilter)

	b.row("Selected range (whole hours, scope ${scope})")
	b.add(4, 4, stat("Energy", "IT energy of the selected hosts over the range: Σ energy_j of the hourly rollups of the chosen scope, before PUE.", "kwatth",
		rows("A", fmt.Sprintf(`SELECT sum(%s) / 3600000 AS "energy_kwh" FROM %s WHERE %s`, fEnergy, mHour, hour),
			Check{Columns: []string{"energy_kwh"}, Min: 1e-6, Max: 1e12})))
	b.add(4, 4, stat("Electricity cost", "Σ cost_usd: each host-hour's energy × its region's electricity price × PUE (collector regions table, docs/schema.md).", "currencyUSD",
		rows("A", fmt.Sprintf(`SELECT sum(%s) AS "cost_usd" FROM %s WHERE %s`, fCost, mHour, hour),
			Check{Columns: []string{"cost_usd"}, Min: 1e-9, Max: 1e12})))
	b.add(4, 4, stat("Carbon", "Σ co2e_kg: each host-hour's energy × its region's grid carbon intensity (location-based) × PUE. Operational only: no embodied carbon.", "masskg",
		rows("A", fmt.Sprintf(`SELECT sum(%s) AS "co2e_kg" FROM %s WHERE %s`, fCO2e, mHour, hour),
			Check{Columns: []string{"co2e_kg"}, Min: 1e-9, Max: 1e12})))
	b.add(4, 4, stat("Average power", "Σ over hosts of each host's average power over the range (energy_j / interval_s).", "watt",
		rows("A", fmt.Sprintf(`SELECT sum("p") AS "power_w" FROM (SELECT sum(%s) / sum(%s) AS "p" FROM %s WHERE %s GROUP BY %s)`, fEnergy, fIntvl, mHour, hour, tHost),
			Check{Columns: []string{"power_w"}, Min: 1e-3, Max: 1e9})))
	b.add(4, 4, stat("Hosts", "Hosts with rollups of the chosen scope in the range.", "none",
		rows("A", fmt.Sprintf(`SELECT count("e") AS "hosts" FROM (SELECT sum(%s) AS "e" FROM %s WHERE %s GROUP BY %s)`, fEnergy, mHour, hour, tHost),
			Check{Columns: []string{"hosts"}, Min: 1, Max: 1e7})))
	b.add(4, 4, stat("CPU utilization", "Busy CPU time over all CPU time (Σ busy_s / Σ total_s).", "percentunit",
		rows("A", fmt.Sprintf(`SELECT sum(%s) / sum(%s) AS "utilization" FROM %s WHERE %s AND %s >= 0`, fBusy, fTotal, mHour, hour, fBusy),
			Check{Columns: []string{"utilization"}, Min: 0, Max: 1})))

	b.row("ARM against x86, by region")
	byGroup := groupBy(semconv.TagRegion, semconv.TagArch)
	b.add(14, 9, table("Efficiency by region and architecture",
		"Watts per busy CPU = average power / average busy logical CPUs (idle power included), from the rollups: the report's w_per_busy_core. "+
			"Work per joule = Σ ops / Σ energy_j over hosts that report work. These are the groups' figures at their own utilization; "+
			"the comparison at matched utilization, with its 95 % confidence interval, is the report's (fleetwatt-collector report, /api/v1/report).",
		[]Override{
			renamed("w_per_busy_cpu", "W per busy CPU"), unitOf("w_per_busy_cpu", "watt"),
			renamed("utilization", "CPU utilization"), unitOf("utilization", "percentunit"),
			renamed("ops_per_joule", "Work per joule (ops/J)"), unitOf("ops_per_joule", "none"),
			renamed("hosts", "Hosts"), unitOf("hosts", "none"),
		}, nil,
		rows("A", fmt.Sprintf(`SELECT %s AS "w_per_busy_cpu", sum(%s) / sum(%s) AS "utilization" FROM %s WHERE %s AND %s >= 0 GROUP BY %s`,
			wPerBusyCPU, fBusy, fTotal, mHour, hour, fBusy, byGroup),
			Check{Tags: []string{semconv.TagRegion, semconv.TagArch}, Columns: []string{"w_per_busy_cpu", "utilization"}, Min: 0, Max: 1e4}),
		rows("B", fmt.Sprintf(`SELECT sum(%s) / sum(%s) AS "ops_per_joule" FROM %s WHERE %s AND %s >= 0 GROUP BY %s`,
			fOps, fEnergy, mHour, hour, fOps, byGroup),
			Check{Tags: []string{semconv.TagRegion, semconv.TagArch}, Columns: []string{"ops_per_joule"}, Min: 1e-6, Max: 1e9}),
		rows("C", fmt.Sprintf(`SELECT count("e") AS "hosts" FROM (SELECT sum(%s) AS "e" FROM %s WHERE %s GROUP BY %s, %s) GROUP BY %s`,
			fEnergy, mHour, hour, tHost, byGroup, byGroup),
			Check{Tags: []string{semconv.TagRegion, semconv.TagArch}, Columns: []string{"hosts"}, Min: 1, Max: 1e7}),
	))
	b.add(10, 9, text("How to read these numbers", `Every figure on this dashboard is computed by InfluxDB from the collector's hourly rollups
(measurement `+"`host_1h`"+`), over whole hours of the selected range and one power scope (the *Scope*
variable): scopes overlap, so they are never added.

* **W per busy CPU** is the report's `+"`w_per_busy_core`"+`: Σ energy / Σ time over Σ busy CPU-seconds /
  Σ time. It includes idle power, so a pool that runs cooler looks worse: that is real, but it is
  no architecture comparison.
* **ARM against x86 at matched utilization**, with a 95 % bootstrap confidence interval over hosts, is
  what `+"`fleetwatt-collector report`"+` (and `+"`/api/v1/report`"+`) computes from the same rollups: per-host
  power-curve fits evaluated at the x86 pool's utilization. InfluxQL can do neither the fits nor the
  bootstrap, so it is not repeated here.
* **Cost and carbon** use each region's price, grid intensity and PUE as the rollup was computed
  (collector/internal/regions/regions.csv, or the collector's `+"`--regions`"+` file).

docs/dashboards.md explains every panel.`))
	b.add(24, 8, table("Energy, cost and carbon by region and architecture",
		"Σ over the range of the rollups' energy_j (kWh, before PUE), cost_usd and co2e_kg (PUE included).",
		[]Override{
			renamed("energy_kwh", "Energy"), unitOf("energy_kwh", "kwatth"),
			renamed("cost_usd", "Cost"), unitOf("cost_usd", "currencyUSD"),
			renamed("co2e_kg", "Carbon"), unitOf("co2e_kg", "masskg"),
		}, nil,
		rows("A", fmt.Sprintf(`SELECT sum(%s) / 3600000 AS "energy_kwh", sum(%s) AS "cost_usd", sum(%s) AS "co2e_kg" FROM %s WHERE %s GROUP BY %s`,
			fEnergy, fCost, fCO2e, mHour, hour, byGroup),
			Check{Tags: []string{semconv.TagRegion, semconv.TagArch}, Columns: []string{"energy_kwh", "cost_usd", "co2e_kg"}, Min: 1e-9, Max: 1e12}),
	))

	b.row("Over time")
	p := timeseries("Fleet power by region",
		"Σ over hosts of each host's average power in each interval, from the readings that stand for each host (primary: its widest measured scope). "+
			"The interval is at least 5 minutes so that every host has a reading in each: lower the panel's min interval for faster agents.",
		"watt", true, series("A", "$tag_region", fleetPower(tRegion),
			Check{Tags: []string{semconv.TagRegion}, Columns: []string{"power_w"}, Min: 1e-3, Max: 1e9}))
	p.Interval = "5m"
	b.add(12, 9, p)
	p = timeseries("Watts per busy CPU by region and architecture",
		"Hour by hour from the rollups of the chosen scope: average power / average busy logical CPUs.",
		"watt", false, series("A", "$tag_region $tag_arch",
			fmt.Sprintf(`SELECT %s AS "w_per_busy_cpu" FROM %s WHERE %s AND %s >= 0 GROUP BY time($__interval), %s fill(none)`, wPerBusyCPU, mHour, hour, fBusy, byGroup),
			Check{Tags: []string{semconv.TagRegion, semconv.TagArch}, Columns: []string{"w_per_busy_cpu"}, Min: 0, Max: 1e4}))
	p.Interval = "1h"
	b.add(12, 9, p)
	b.add(12, 8, timeseries("CPU utilization by region and architecture",
		"Busy CPU time over all CPU time of the whole-host cpu points, per interval.",
		"percentunit", false, series("A", "$tag_region $tag_arch",
			fmt.Sprintf(`SELECT sum(%s) / sum(%s) AS "utilization" FROM %s WHERE %s = '' AND %s AND $timeFilter GROUP BY time($__interval), %s fill(none)`,
				fBusy, fTotal, mCPU, id(semconv.TagCPU), fleetFilter, byGroup),
			Check{Tags: []string{semconv.TagRegion, semconv.TagArch}, Columns: []string{"utilization"}, Min: 0, Max: 1})))
	p = timeseries("Energy per hour by region",
		"Energy of each hour of the rollups of the chosen scope, by region (kWh per hour = average kW).", "kwatth", true,
		series("A", "$tag_region", fmt.Sprintf(`SELECT sum(%s) / 3600000 AS "energy_kwh" FROM %s WHERE %s GROUP BY time(1h), %s fill(none)`, fEnergy, mHour, hour, tRegion),
			Check{Tags: []string{semconv.TagRegion}, Columns: []string{"energy_kwh"}, Min: 1e-9, Max: 1e9}))
	p.FieldConfig.Defaults.Custom["drawStyle"] = "bars"
	b.add(12, 8, p)
	return b.build()
}
