package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Formats lists the output formats; the first is the default.
var Formats = []string{"table", "csv", "json", "markdown"}

// ParseFormat checks a format name; "" means the default given.
func ParseFormat(s, def string) (string, error) {
	if s == "" {
		return def, nil
	}
	if !slices.Contains(Formats, s) {
		return "", fmt.Errorf("%w: format %q: want %s", ErrBadOptions, s, strings.Join(Formats, ", "))
	}
	return s, nil
}

// ContentType is the HTTP media type of a format.
func ContentType(format string) string {
	switch format {
	case "json":
		return "application/json"
	case "csv":
		return "text/csv; charset=utf-8"
	case "markdown":
		return "text/markdown; charset=utf-8"
	}
	return "text/plain; charset=utf-8"
}

// Write writes rep in format: table (aligned, for people), csv (the groups, one row each),
// json (the documented contract) or markdown (groups, comparisons and notes).
func Write(w io.Writer, rep *Report, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	case "csv":
		return writeCSV(w, rep)
	case "markdown":
		return writeMarkdown(w, rep)
	case "table", "":
		return writeTable(w, rep)
	}
	return fmt.Errorf("%w: format %q: want %s", ErrBadOptions, format, strings.Join(Formats, ", "))
}

// column is one column of the group tables: a header with its unit and a formatter.
type column struct {
	header, csv string
	value       func(Group) string
}

func num(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

func opt(v *float64, prec int) string {
	if v == nil {
		return "-"
	}
	return num(*v, prec)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func columns(by []string) []column {
	var cols []column
	keys := map[string]column{
		KeyRegion:   {"REGION", "region", func(g Group) string { return dash(g.Region) }},
		KeyZone:     {"ZONE", "zone", func(g Group) string { return dash(g.Zone) }},
		KeyArch:     {"ARCH", "arch", func(g Group) string { return dash(g.Arch) }},
		KeyCPUModel: {"CPU MODEL", "cpu_model", func(g Group) string { return dash(g.CPUModel) }},
		KeyScope:    {"SCOPE", "scope", func(g Group) string { return dash(g.Scope) }},
	}
	for _, k := range by {
		cols = append(cols, keys[k])
	}
	if !slices.Contains(by, KeyScope) {
		cols = append(cols, keys[KeyScope])
	}
	return append(cols,
		column{"HOSTS", "hosts", func(g Group) string { return strconv.Itoa(g.Hosts) }},
		column{"CPUS/HOST", "cores_per_host", func(g Group) string { return num(g.CoresPerHost, 0) }},
		column{"UTIL %", "avg_util", func(g Group) string { return num(100*g.AvgUtil, 1) }},
		column{"AVG W", "avg_power_w", func(g Group) string { return num(g.AvgPowerW, 1) }},
		column{"ENERGY kWh", "energy_kwh", func(g Group) string { return num(g.EnergyKWh, 1) }},
		column{"W/BUSY CPU", "w_per_busy_core", func(g Group) string { return opt(g.WPerBusyCore, 2) }},
		column{"IDLE W", "idle_w", func(g Group) string { return opt(g.IdleW, 1) }},
		column{"PEAK W", "peak_w", func(g Group) string { return opt(g.PeakW, 1) }},
		column{"OPS/J", "ops_per_joule", func(g Group) string { return opt(g.OpsPerJoule, 1) }},
		column{"USD/CPU-YR", "usd_per_core_year", func(g Group) string { return opt(g.USDPerCoreYear, 2) }},
		column{"kgCO2e/CPU-YR", "kgco2_per_core_year", func(g Group) string { return opt(g.KgCO2ePerCoreYear, 2) }},
	)
}

// csvColumns are every group field, by its JSON name, whatever the grouping.
func csvColumns() []column {
	str := func(name string, f func(Group) string) column { return column{csv: name, value: f} }
	o := func(name string, f func(Group) *float64) column {
		return column{csv: name, value: func(g Group) string {
			if v := f(g); v != nil {
				return strconv.FormatFloat(*v, 'g', 10, 64)
			}
			return ""
		}}
	}
	v := func(name string, f func(Group) float64) column {
		return column{csv: name, value: func(g Group) string { return strconv.FormatFloat(f(g), 'g', 10, 64) }}
	}
	return []column{
		str("region", func(g Group) string { return g.Region }),
		str("zone", func(g Group) string { return g.Zone }),
		str("arch", func(g Group) string { return g.Arch }),
		str("cpu_model", func(g Group) string { return g.CPUModel }),
		str("scope", func(g Group) string { return g.Scope }),
		str("hosts", func(g Group) string { return strconv.Itoa(g.Hosts) }),
		str("hosts_fitted", func(g Group) string { return strconv.Itoa(g.HostsFitted) }),
		str("hosts_with_work", func(g Group) string { return strconv.Itoa(g.HostsWithWork) }),
		v("cores_per_host", func(g Group) float64 { return g.CoresPerHost }),
		v("avg_util", func(g Group) float64 { return g.AvgUtil }),
		v("busy_cores", func(g Group) float64 { return g.BusyCores }),
		v("avg_power_w", func(g Group) float64 { return g.AvgPowerW }),
		v("energy_kwh", func(g Group) float64 { return g.EnergyKWh }),
		o("w_per_busy_core", func(g Group) *float64 { return g.WPerBusyCore }),
		o("idle_w", func(g Group) *float64 { return g.IdleW }),
		o("p50_w", func(g Group) *float64 { return g.P50W }),
		o("peak_w", func(g Group) *float64 { return g.PeakW }),
		o("idle_to_peak", func(g Group) *float64 { return g.IdleToPeak }),
		o("ops_per_joule", func(g Group) *float64 { return g.OpsPerJoule }),
		o("ops_per_second", func(g Group) *float64 { return g.OpsPerSecond }),
		o("usd_per_core_year", func(g Group) *float64 { return g.USDPerCoreYear }),
		o("kgco2_per_core_year", func(g Group) *float64 { return g.KgCO2ePerCoreYear }),
		o("cost_usd", func(g Group) *float64 { return g.CostUSD }),
		o("carbon_kgco2e", func(g Group) *float64 { return g.CarbonKgCO2e }),
	}
}

func rangeLine(rep *Report) string {
	return fmt.Sprintf("%s to %s (%d whole hours, UTC; the rollups are hourly)",
		rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339), rep.Hours)
}

// plural writes "1 host", "2 hosts".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func pct(v float64) string { return fmt.Sprintf("%+.1f%%", 100*v) }

// ComparisonLines describes a comparison in a sentence per metric, and its note.
func ComparisonLines(c Comparison) []string {
	if c.Scope == "" {
		return []string{c.Note}
	}
	var lines []string
	d := func(name, unit string, v *Delta, better, missing string) {
		if v == nil {
			lines = append(lines, name+": "+missing)
			return
		}
		s := fmt.Sprintf("%s: ARM %.3g vs x86 %.3g %s, ARM %s", name, v.ARM, v.X86, unit, pct(v.RelDiff))
		if v.CI95 != nil {
			s += fmt.Sprintf(" (95%% CI %s to %s, %d bootstrap resamples over hosts)", pct(v.CI95[0]), pct(v.CI95[1]), v.Resamples)
		}
		lines = append(lines, s+"; "+better)
	}
	const noWork, noFactors = "not reported by both pools", "no price or carbon factors for the region"
	d("W per busy CPU", "W", c.WPerBusyCore, "lower is better", noWork)
	d("ops per joule", "ops/J", c.OpsPerJoule, "higher is better", noWork)
	d("electricity cost per busy CPU-year", "USD", c.USDPerBusyCoreYear, "lower is better", noFactors)
	d("carbon per busy CPU-year", "kg CO2e", c.KgCO2ePerBusyCoreYear, "lower is better", noFactors)
	if c.Note != "" {
		lines = append(lines, c.Note)
	}
	return lines
}

// ComparisonTitle says what a comparison compares: region, pools, scope, utilization.
func ComparisonTitle(c Comparison) string {
	if c.Scope == "" {
		return c.Region + ": ARM vs x86"
	}
	return fmt.Sprintf("%s: ARM (%s: %s) vs x86 (%s: %s), scope %s, at %.1f%% utilization (the x86 pool's average)",
		c.Region, plural(c.ARMHosts, "host", "hosts"), strings.Join(c.ARMModels, ", "),
		plural(c.X86Hosts, "host", "hosts"), strings.Join(c.X86Models, ", "),
		c.Scope, 100*derefOr(c.AtUtil, 0))
}

func derefOr(v *float64, def float64) float64 {
	if v == nil {
		return def
	}
	return *v
}

// GroupTable is the groups as the table and markdown formats print them: a header with
// units, a row of formatted cells per group, and how many leading columns are the group's keys
// (text; the others are numbers).
func GroupTable(rep *Report) (header []string, rows [][]string, keys int) {
	cols := columns(rep.By)
	header = make([]string, len(cols))
	for i, c := range cols {
		header[i] = c.header
	}
	for _, g := range rep.Groups {
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = c.value(g)
		}
		rows = append(rows, row)
	}
	return header, rows, keyColumns(rep.By)
}

// RangeLine says what range a report covers, in words.
func RangeLine(rep *Report) string { return rangeLine(rep) }

func writeTable(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "fleetwatt efficiency report: %s\n\n", rangeLine(rep))
	if len(rep.Groups) == 0 {
		fmt.Fprintln(w, "no hosts")
	} else {
		header, rows, keys := GroupTable(rep)
		writeAligned(w, append([][]string{header}, rows...), keys)
	}
	if len(rep.Comparisons) > 0 {
		fmt.Fprintln(w, "\nARM vs x86, per region, at matched utilization:")
		for _, c := range rep.Comparisons {
			fmt.Fprintf(w, "\n  %s\n", ComparisonTitle(c))
			for _, l := range ComparisonLines(c) {
				fmt.Fprintf(w, "    %s\n", l)
			}
		}
	}
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range rep.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	return nil
}

// keyColumns is the number of leading text columns (the group's keys, scope included).
func keyColumns(by []string) int {
	if slices.Contains(by, KeyScope) {
		return len(by)
	}
	return len(by) + 1
}

// writeAligned writes cells as columns two spaces apart: the first left columns aligned left
// (names), the others right (numbers).
func writeAligned(w io.Writer, cells [][]string, left int) {
	width := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, row := range cells {
		b.Reset()
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < left {
				b.WriteString(c)
				if i < len(row)-1 {
					b.WriteString(pad)
				}
			} else {
				b.WriteString(pad + c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

func writeCSV(w io.Writer, rep *Report) error {
	cw := csv.NewWriter(w)
	cols := csvColumns()
	row := make([]string, len(cols))
	for i, c := range cols {
		row[i] = c.csv
	}
	if err := cw.Write(row); err != nil {
		return err
	}
	for _, g := range rep.Groups {
		for i, c := range cols {
			row[i] = c.value(g)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func writeMarkdown(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "# fleetwatt efficiency report\n\n%s\n\n", rangeLine(rep))
	head, rows, keyCols := GroupTable(rep)
	align := make([]string, len(head))
	for i := range head {
		align[i] = "---:"
		if i < keyCols {
			align[i] = "---"
		}
	}
	fmt.Fprintf(w, "| %s |\n|%s|\n", strings.Join(head, " | "), strings.Join(align, "|"))
	for _, row := range rows {
		for i := range row {
			row[i] = mdEscape(row[i])
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	if len(rep.Comparisons) > 0 {
		fmt.Fprint(w, "\n## ARM vs x86 at matched utilization\n\n")
		for _, c := range rep.Comparisons {
			fmt.Fprintf(w, "- **%s**\n", mdEscape(ComparisonTitle(c)))
			for _, l := range ComparisonLines(c) {
				fmt.Fprintf(w, "  - %s\n", mdEscape(l))
			}
		}
	}
	if len(rep.Notes) > 0 {
		fmt.Fprint(w, "\n## Notes\n\n")
		for _, n := range rep.Notes {
			fmt.Fprintf(w, "- %s\n", mdEscape(n))
		}
	}
	return nil
}
