package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// WriteJSON writes the result as the indented JSON of docs/plan.md.
func (r Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // sources say "< 1.3"; nothing here is embedded in HTML
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write plan json: %w", err)
	}
	return nil
}

// WriteTable writes the result as aligned plain text for a terminal.
func (r Result) WriteTable(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "Plan for %s: %s\n%s\n\n", r.Region, r.headline(), r.subline())
	writeAligned(ew, r.poolRows())
	fmt.Fprintln(ew)
	writeAligned(ew, r.savingRows())
	if r.KWSaved < 0 {
		fmt.Fprintln(ew, "\nThe move uses more power than it saves: the savings above are negative.")
	}
	fmt.Fprintln(ew, "\nAssumptions")
	for _, a := range r.Assumptions {
		fmt.Fprintf(ew, "- %s\n", a)
	}
	if ew.err != nil {
		return fmt.Errorf("write plan table: %w", ew.err)
	}
	return nil
}

// WriteMarkdown writes the result as Markdown: a heading, two tables with padded columns and
// the assumptions as a list.
func (r Result) WriteMarkdown(w io.Writer) error {
	ew := &errWriter{w: w}
	head := r.headline()
	fmt.Fprintf(ew, "## Plan for %s: %s → %s\n\n%s; %s.\n\n", mdEscape(r.Region), mdEscape(r.From.name()), mdEscape(r.To.name()),
		mdEscape(strings.ToUpper(head[:1])+head[1:]), mdEscape(r.subline()))
	writeMarkdownTable(ew, r.poolRows(), "lrr")
	fmt.Fprintln(ew)
	writeMarkdownTable(ew, r.savingRows(), "lrl")
	if r.KWSaved < 0 {
		fmt.Fprintln(ew, "\nThe move uses more power than it saves: the savings above are negative.")
	}
	fmt.Fprintln(ew, "\n**Assumptions**")
	fmt.Fprintln(ew)
	for _, a := range r.Assumptions {
		fmt.Fprintf(ew, "- %s\n", mdEscape(a))
	}
	if ew.err != nil {
		return fmt.Errorf("write plan markdown: %w", ew.err)
	}
	return nil
}

// headline says what moves where.
func (r Result) headline() string {
	return fmt.Sprintf("move %s of the %s load to %s at %s utilization",
		pct(r.Share), r.From.name(), r.To.name(), pct(r.ToUtilTarget))
}

// subline gives the basis and scope the numbers are on.
func (r Result) subline() string {
	return fmt.Sprintf("basis %s, scope %s", r.Basis, orNone(r.Scope))
}

// poolRows are the side-by-side rows of the two pools; the first row is the header.
func (r Result) poolRows() [][]string {
	from, to := r.From, r.To
	rows := [][]string{
		{"", "from", "to"},
		{"arch", from.Arch, to.Arch},
		{"cpu model", from.CPUModel, to.CPUModel},
		{
			"hosts",
			fmt.Sprintf("%d → %d (-%d)", from.Hosts, from.Hosts-r.HostsRemoved, r.HostsRemoved),
			fmt.Sprintf("%d → %d (+%d)", to.Hosts, to.Hosts+r.HostsAdded, r.HostsAdded),
		},
		{"logical CPUs per host", group(from.CoresPerHost, 0), group(to.CoresPerHost, 0)},
	}
	if from.OpsPerCoreSecond > 0 || to.OpsPerCoreSecond > 0 {
		rows = append(rows, []string{"ops per busy CPU-second", opsOrNone(from.OpsPerCoreSecond), opsOrNone(to.OpsPerCoreSecond)})
	}
	rows = append(rows,
		[]string{"utilization", pct(from.AvgUtil), fmt.Sprintf("%s (target %s)", pct(r.ToUtilActual), pct(r.ToUtilTarget))},
		[]string{"power per host", group(r.FromHostW, 1) + " W", group(r.ToHostW, 1) + " W"},
		[]string{"moved load, busy CPUs", group(r.BusyCoresMoved, 1), group(r.BusyCoresNeeded, 1)},
	)
	if r.OpsPerSecondMoved != nil {
		ops := group(*r.OpsPerSecondMoved, 0) + " ops/s"
		rows = append(rows, []string{"moved load, work", ops, ops})
	}
	return append(rows, []string{"power of the moved load", group(r.KWBefore, 2) + " kW", group(r.KWAfter, 2) + " kW"})
}

// savingRows are the savings with the factor each rests on; the first row is the header.
func (r Result) savingRows() [][]string {
	f := r.Factors
	return [][]string{
		{"saved", "amount", "at"},
		{"power", group(r.KWSaved, 2) + " kW", ""},
		{"IT energy", group(r.KWhPerYearSaved, 0) + " kWh/yr", group(r.HoursPerYear, 0) + " h/yr"},
		{"facility energy", group(r.FacilityKWhPerYearSaved, 0) + " kWh/yr", "PUE " + trim(f.PUE, 3)},
		{"cost", "US$" + group(r.USDPerYearSaved, 0) + "/yr", "US$" + trim(f.PriceUSDPerKWh, 4) + "/kWh"},
		{"carbon", group(r.TCO2ePerYearSaved, 1) + " t CO2e/yr", trim(f.GridGCO2ePerKWh, 1) + " gCO2e/kWh"},
	}
}

// writeAligned writes rows as tab-aligned columns, the header row included, without trailing
// blanks.
func writeAligned(w io.Writer, rows [][]string) {
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	for line := range strings.Lines(buf.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

// writeMarkdownTable writes rows as a Markdown table padded so that the source reads as a table
// too; align holds one of 'l' or 'r' per column.
func writeMarkdownTable(w io.Writer, rows [][]string, align string) {
	width := make([]int, len(align))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], utf8.RuneCountInString(mdEscape(cell)), 3)
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, cell := range cells {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell))
			if align[i] == 'r' {
				cell = pad + cell
			} else {
				cell += pad
			}
			b.WriteString(" " + cell + " |")
		}
		fmt.Fprintln(w, b.String())
	}
	for i, row := range rows {
		cells := make([]string, len(row))
		for j, c := range row {
			cells[j] = mdEscape(c)
		}
		line(cells)
		if i == 0 {
			sep := make([]string, len(row))
			for j := range sep {
				sep[j] = strings.Repeat("-", width[j])
				if align[j] == 'r' {
					sep[j] = sep[j][1:] + ":"
				}
			}
			line(sep)
		}
	}
}

// mdEscape keeps a cell's pipes from splitting it.
func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// errWriter remembers the first write error, so that formatting code can write freely and
// check once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// group formats v with the given decimals and thousands separators: 248967.4 → "248,967".
func group(v float64, decimals int) string {
	s := strconv.FormatFloat(math.Abs(v), 'f', decimals, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if v < 0 && strings.Trim(s, "0.") != "" {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}

// trim formats a factor with at most decimals decimals and no trailing zeros: 1.30 → "1.3".
func trim(v float64, decimals int) string {
	p := math.Pow10(decimals)
	return strconv.FormatFloat(math.Round(v*p)/p, 'f', -1, 64)
}

// pct formats a 0..1 fraction as a percentage with one decimal: 0.4 → "40.0%".
func pct(u float64) string { return strconv.FormatFloat(u*100, 'f', 1, 64) + "%" }

// opsOrNone formats ops per busy CPU-second, "none" when the pool reports no work.
func opsOrNone(v float64) string {
	if v > 0 {
		return group(v, 0)
	}
	return "none"
}

// orNone names an empty label "(none)".
func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
