// Package chart draws fleetwatt's charts and the shareable HTML report.
//
// One drawing model (Drawing: rectangles, polylines, circles, text, in user units) is laid
// out by the chart kinds and rendered by two backends with the same result: SVG (WriteSVG,
// text as <text>, a <title> and <desc>, data attributes on every mark) and PNG (WritePNG,
// golang.org/x/image/vector and the Go font). The same input gives the same bytes.
//
//	scale.go      linear scales, nice ticks, time ticks, number formatting
//	model.go      the drawing model and the colours
//	font.go       text measurement in the Go font
//	layout.go     what every chart has: title, legend, footnote, axes
//	bars.go       grouped bars with interval whiskers, in panels
//	lines.go      lines over a numeric or a time axis, a right axis, markers
//	svg.go png.go the backends
//	fleet.go      the report's charts: comparison, cost, curves, footprint
//	series.go     the time series queries; timecharts.go their charts: power, host
//	handler.go    GET /api/v1/charts/{name}.svg|png and Source, which both the API and
//	              `fleetwatt-collector report --format svg|png` draw with
//	html.go       the shareable report (report.html.tmpl), headline.go its headlines
//
// docs/report.md defines every number drawn and the SVG's contract (data-chart, data-points).
package chart
