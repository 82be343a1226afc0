package chart

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"

	"github.com/fleetwatt/fleetwatt/collector/internal/report"
)

//go:embed report.html.tmpl
var pageTemplate string

// page is what report.html.tmpl shows.
type page struct {
	Range, Short string
	Headlines    []headline
	Charts       []pageChart
	Header       []string
	Rows         [][]string
	KeyColumns   int
	Comparisons  []pageComparison
	Notes        []string
}

type headline struct {
	Region, Text string
	// Class is cheaper, dearer or unclear: ARM's cost against x86's.
	Class string
}

type pageChart struct {
	ID, Heading, Caption string
	SVG                  template.HTML
}

type pageComparison struct {
	Title string
	Lines []string
}

// WriteHTML writes the report as one self-contained HTML page to be mailed: a headline per
// region with a comparison, the report's charts inline as SVG, the groups, the comparisons in
// words, the notes and how the numbers are defined. Inline CSS, no script, no external URL.
func WriteHTML(w io.Writer, rep *report.Report) error {
	t, err := template.New("report").Parse(pageTemplate)
	if err != nil {
		return fmt.Errorf("report page template: %w", err)
	}
	p := page{
		Range: report.RangeLine(rep),
		Short: rep.From.UTC().Format("2006-01-02 15:04") + " to " + rep.To.UTC().Format("2006-01-02 15:04") + " UTC",
		Notes: rep.Notes,
	}
	for _, c := range rep.Comparisons {
		p.Headlines = append(p.Headlines, headline{Region: c.Region, Text: headlineText(c), Class: headlineClass(c)})
		p.Comparisons = append(p.Comparisons, pageComparison{Title: report.ComparisonTitle(c), Lines: report.ComparisonLines(c)})
	}
	for _, c := range []struct {
		heading string
		d       *Drawing
	}{
		{"Watts per busy core, ARM vs x86", Comparison(rep)},
		{"Electricity cost per busy core-year, ARM vs x86", Cost(rep)},
		{"Power curves", Curves(rep)},
		{"Cost and carbon per region", Footprint(rep)},
	} {
		p.Charts = append(p.Charts, pageChart{
			ID: "chart-section-" + c.d.Name, Heading: c.heading, Caption: c.d.Desc,
			// InlineSVG escapes every text and attribute it writes.
			SVG: template.HTML(InlineSVG(c.d)), //nolint:gosec // G203: our own escaped SVG
		})
	}
	p.Header, p.Rows, p.KeyColumns = report.GroupTable(rep)
	if err := t.Execute(w, p); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}

func headlineClass(c report.Comparison) string {
	d := c.USDPerBusyCoreYear
	if d == nil {
		d = c.WPerBusyCore
	}
	switch {
	case d == nil || (d.CI95 != nil && d.CI95[0] < 0 && d.CI95[1] > 0):
		return "unclear"
	case d.RelDiff < 0:
		return "cheaper"
	}
	return "dearer"
}
