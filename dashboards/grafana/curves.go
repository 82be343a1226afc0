package grafana

import (
	"fmt"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// The least-squares line P = idle + slope·u through every interval of the selected host-hours,
// from the rollups' sums (n, Σu, Σu², ΣP, ΣuP): a pooled fit over the hosts of a group. The
// report fits each host on its own (and a quadratic where the data carry one); for hosts of
// one model the pooled line is the same within their part-to-part spread.
var (
	fitN     = `sum("samples")`
	fitSlope = `(sum("samples") * sum("sum_up") - sum("sum_u") * sum("sum_p")) / (sum("samples") * sum("sum_uu") - sum("sum_u") * sum("sum_u"))`
	fitIdle  = fmt.Sprintf(`(sum("sum_p") - %s * sum("sum_u")) / sum("samples")`, fitSlope)
	fitAt    = func(u string) string { return fmt.Sprintf(`%s + %s * %s`, fitIdle, u, fitSlope) }
)

// PowerCurves is the power-curve dashboard: power against utilization per CPU model, the
// fitted idle and peak power, and energy proportionality.
func PowerCurves() *Dashboard {
	b := newDashboard("fleetwatt-power-curves", "fleetwatt — Power curves",
		"Power against CPU utilization per CPU model: the measured points, the fitted line's idle and peak power and energy proportionality, from the hourly rollups (host_1h).",
		fleetVars()...)
	hour := fmt.Sprintf(`%s AND %s AND "samples" > 0 AND $timeFilter`, fleetFilter, scopeFilter)
	byModel := groupBy(semconv.TagCPUModel, semconv.TagArch)

	b.row("Power against utilization (scope ${scope})")
	xy := Panel{
		Datasource: &ds,
		Description: "One point per host and hour: the hour's mean utilization (Σu / n) and mean power (ΣP / n) over its collection intervals, " +
			"one colour per CPU model. Idle power is where a model's cloud meets u = 0, peak power where it would meet u = 1.",
		FieldConfig: fieldConfig("watt", map[string]any{
			"show": "points", "pointSize": map[string]any{"fixed": 4},
			"axisPlacement": "auto", "axisLabel": "",
		}, unitOf("utilization", "percentunit")),
		Options: map[string]any{
			"seriesMapping": "auto", "dims": map[string]any{"x": "utilization"},
			"legend":  map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
			"tooltip": map[string]any{"mode": "single", "sort": "none"},
		},
		Targets: []Target{series("A", "$tag_cpu_model",
			fmt.Sprintf(`SELECT "sum_u" / "samples" AS "utilization", "sum_p" / "samples" AS "power_w" FROM %s WHERE %s GROUP BY %s`, mHour, hour, tModel),
			Check{Tags: []string{semconv.TagCPUModel}, Columns: []string{"utilization", "power_w"}, Min: 0, Max: 1e6})},
		Title: "Power against CPU utilization, per CPU model", Type: "xychart",
	}
	b.add(14, 12, xy)
	b.add(10, 12, table("Fitted power curve per CPU model",
		"The least-squares line P(u) = idle + slope·u through all intervals of the model's hosts in the range: power at 0 %, 50 % and 100 % "+
			"utilization, and idle / peak (0 would be perfectly energy proportional). Extrapolated where the hosts never idle or saturate.",
		[]Override{
			renamed("idle_w", "Idle"), unitOf("idle_w", "watt"),
			renamed("p50_w", "At 50 %"), unitOf("p50_w", "watt"),
			renamed("peak_w", "Peak"), unitOf("peak_w", "watt"),
			renamed("idle_to_peak", "Idle / peak"), unitOf("idle_to_peak", "percentunit"),
			renamed("samples", "Intervals"), unitOf("samples", "none"),
		}, nil,
		rows("A", fmt.Sprintf(`SELECT %s AS "idle_w", %s AS "p50_w", %s AS "peak_w", (%s) / (%s) AS "idle_to_peak", %s AS "samples" FROM %s WHERE %s GROUP BY %s`,
			fitIdle, fitAt("0.5"), fitAt("1"), fitIdle, fitAt("1"), fitN, mHour, hour, byModel),
			Check{Tags: []string{semconv.TagCPUModel, semconv.TagArch}, Columns: []string{"idle_w", "p50_w", "peak_w", "idle_to_peak", "samples"}, Min: 0, Max: 1e9}),
	))

	b.row("Over time")
	// A host's power: its sensors summed; the model's: the mean over its hosts.
	perSensor := fmt.Sprintf(`SELECT sum(%s) / sum(%s) AS "p" FROM %s WHERE %s AND %s AND $timeFilter GROUP BY time($__interval), %s, %s, %s fill(none)`,
		fEnergy, fIntvl, mPower, primary, fleetFilter, tHost, tSensor, tModel)
	perHost := fmt.Sprintf(`SELECT sum("p") AS "ph" FROM (%s) WHERE $timeFilter GROUP BY time($__interval), %s, %s fill(none)`, perSensor, tHost, tModel)
	p := timeseries("Average host power by CPU model",
		"Mean over the model's hosts of each host's average power per interval, from the readings that stand for each host (primary).",
		"watt", false, series("A", "$tag_cpu_model",
			fmt.Sprintf(`SELECT mean("ph") AS "power_w" FROM (%s) WHERE $timeFilter GROUP BY time($__interval), %s fill(none)`, perHost, tModel),
			Check{Tags: []string{semconv.TagCPUModel}, Columns: []string{"power_w"}, Min: 1e-3, Max: 1e6}))
	p.Interval = "5m"
	b.add(12, 9, p)
	b.add(12, 9, timeseries("CPU utilization by CPU model",
		"Busy CPU time over all CPU time of the model's hosts, per interval.",
		"percentunit", false, series("A", "$tag_cpu_model",
			fmt.Sprintf(`SELECT sum(%s) / sum(%s) AS "utilization" FROM %s WHERE %s = '' AND %s AND $timeFilter GROUP BY time($__interval), %s fill(none)`,
				fBusy, fTotal, mCPU, id(semconv.TagCPU), fleetFilter, tModel),
			Check{Tags: []string{semconv.TagCPUModel}, Columns: []string{"utilization"}, Min: 0, Max: 1})))
	return b.build()
}
