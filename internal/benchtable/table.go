package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Status is a row's outcome.
type Status int

const (
	// Measured: the figure is there (target and change are judged separately).
	Measured Status = iota
	// Pending: a placeholder row, its benchmark not yet written.
	Pending
	// Missing: the benchmark did not report the metric: not run, renamed, or failed.
	Missing
	// Skipped: the benchmark skipped (a missing tool outside CI).
	Skipped
)

// Line is one evaluated row.
type Line struct {
	Row    Row
	Status Status
	// Figure is the measured value in the row's unit; Recorded the baseline's, HasRecorded
	// whether it has one.
	Figure, Recorded float64
	HasRecorded      bool
	// Change is (Figure − Recorded) / Recorded; valid when HasRecorded and Recorded != 0.
	Change float64
	// Regressed: worse than Recorded by more than the row's tolerance.
	Regressed bool
}

// HasTarget reports whether the row has a target.
func (l Line) HasTarget() bool { return l.Row.Target != 0 }

// TargetMet reports whether the measured figure meets the target.
func (l Line) TargetMet() bool {
	if l.Row.Better == Higher {
		return l.Figure >= l.Row.Target
	}
	return l.Figure <= l.Row.Target
}

// Verdict sums up a table.
type Verdict struct {
	Regressed, Missing, TargetsUnmet []Line
	TargetsMet, Targets              int
	// Failed are the packages and benchmarks that failed.
	Failed []string
}

// OK reports whether nothing regressed, went missing or failed; with strict, every target
// must be met too.
func (v Verdict) OK(strict bool) bool {
	return len(v.Regressed) == 0 && len(v.Missing) == 0 && len(v.Failed) == 0 &&
		(!strict || len(v.TargetsUnmet) == 0)
}

// Evaluate takes each row's figure from out and compares it with the baseline. Rows not in
// selected are left out; nil selects every row.
func Evaluate(rows []Row, out *Output, base Baseline, selected func(Row) bool) ([]Line, Verdict) {
	var (
		lines []Line
		v     = Verdict{Failed: out.Failed}
	)
	for _, r := range rows {
		if selected != nil && !selected(r) {
			continue
		}
		l := Line{Row: r}
		switch res := out.Find(r.Pkg, r.Bench); {
		case r.Bench == "":
			l.Status = Pending
		case res == nil && slices.Contains(out.Skipped, r.Pkg+" "+r.Bench):
			l.Status = Skipped
		default:
			m, ok := 0.0, false
			if res != nil {
				m, ok = res.Median(r.Metric)
			}
			if !ok {
				l.Status = Missing
				break
			}
			scale := r.Scale
			if scale == 0 {
				scale = 1
			}
			l.Figure = m * scale
		}
		if l.Status == Measured {
			l.Recorded, l.HasRecorded = base.Figures[r.ID]
			if l.HasRecorded && l.Recorded != 0 {
				l.Change = (l.Figure - l.Recorded) / l.Recorded
				tol := r.Tolerance
				if tol == 0 {
					tol = DefaultTolerance
				}
				worse := l.Change
				if r.Better == Higher {
					worse = -worse
				}
				l.Regressed = worse > tol
			}
			if l.Regressed {
				v.Regressed = append(v.Regressed, l)
			}
			if l.HasTarget() {
				v.Targets++
				if l.TargetMet() {
					v.TargetsMet++
				} else {
					v.TargetsUnmet = append(v.TargetsUnmet, l)
				}
			}
		}
		if l.Status == Missing || l.Status == Skipped {
			v.Missing = append(v.Missing, l)
		}
		lines = append(lines, l)
	}
	return lines, v
}

// Print writes the table and the verdict.
func Print(w io.Writer, lines []Line, v Verdict, base Baseline, baselinePath string, strict bool) {
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "what\tfigure\tunit\ttarget\tmet?\trecorded\tchange")
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Row.What, figure(l), l.Row.Unit, target(l.Row),
			met(l), recorded(l), change(l))
	}
	_ = tw.Flush()
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n")) // the padding of empty last columns
	}

	fmt.Fprintln(w)
	if base.Machine != "" || base.Recorded != "" {
		fmt.Fprintf(w, "recorded: %s, %s (%s)\n", base.Recorded, base.Machine, baselinePath)
	} else {
		fmt.Fprintf(w, "recorded: nothing yet in %s; record with -record on the reference machine\n", baselinePath)
	}
	for _, l := range v.Regressed {
		fmt.Fprintf(w, "REGRESSION: %s: %s %s against %s recorded, %+.1f %% (the tolerance is %.0f %%)\n",
			l.Row.What, figure(l), l.Row.Unit, recorded(l), l.Change*100, tolerance(l.Row)*100)
	}
	for _, l := range v.Missing {
		what := "MISSING"
		if l.Status == Skipped {
			what = "SKIPPED"
		}
		fmt.Fprintf(w, "%s: %s: %s %s reported no %s\n", what, l.Row.What, l.Row.Pkg, l.Row.Bench, l.Row.Metric)
	}
	for _, f := range v.Failed {
		fmt.Fprintf(w, "FAILED: %s\n", f)
	}
	for _, l := range v.TargetsUnmet {
		fmt.Fprintf(w, "target not met: %s: %s %s, target %s\n", l.Row.What, figure(l), l.Row.Unit, target(l.Row))
	}
	verdict := "PASS"
	if !v.OK(strict) {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "verdict: %s: %d regressed beyond tolerance, %d missing, %d failed; targets met: %d of %d\n",
		verdict, len(v.Regressed), len(v.Missing), len(v.Failed), v.TargetsMet, v.Targets)
}

func tolerance(r Row) float64 {
	if r.Tolerance == 0 {
		return DefaultTolerance
	}
	return r.Tolerance
}

func figure(l Line) string {
	switch l.Status {
	case Pending:
		return "(to be written)"
	case Missing:
		return "MISSING"
	case Skipped:
		return "SKIPPED"
	}
	return format(l.Figure)
}

func target(r Row) string {
	if r.Target == 0 {
		return ""
	}
	t := strconv.FormatFloat(r.Target, 'f', -1, 64)
	if r.Better == Higher {
		return "≥ " + t
	}
	return "≤ " + t
}

func met(l Line) string {
	switch {
	case !l.HasTarget() || l.Status != Measured:
		return ""
	case l.TargetMet():
		return "yes"
	}
	return "NO"
}

func recorded(l Line) string {
	if !l.HasRecorded {
		return ""
	}
	return format(l.Recorded)
}

func change(l Line) string {
	if !l.HasRecorded || l.Recorded == 0 {
		return ""
	}
	s := fmt.Sprintf("%+.1f %%", l.Change*100)
	if l.Regressed {
		s += " !"
	}
	return s
}

// format shows whole numbers as they are, others with three significant digits and no
// exponent down to 1.
func format(v float64) string {
	a := math.Abs(v)
	switch {
	case a == math.Trunc(a) && a < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64) // counts: allocations, bytes
	case a >= 1000:
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
