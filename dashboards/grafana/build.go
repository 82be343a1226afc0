package grafana

import (
	"fmt"
	"strings"
)

// ds is every panel's and query variable's data source: the one the datasource variable
// picks, so that no uid of one installation is baked into the JSON (no __inputs, which file
// provisioning cannot resolve).
var ds = DatasourceRef{Type: "influxdb", UID: "${datasource}"}

// builder lays panels out on the grid and numbers them.
type builder struct {
	d       *Dashboard
	id      int
	x, y, h int // the next free column and the current line's top and height
}

func newDashboard(uid, title, description string, vars ...Variable) *builder {
	return &builder{d: &Dashboard{
		Annotations: Annotations{List: []Annotation{{
			BuiltIn: 1, Datasource: DatasourceRef{Type: "grafana", UID: "-- Grafana --"}, Enable: true, Hide: true,
			IconColor: "rgba(0, 211, 255, 1)", Name: "Annotations & Alerts", Type: "dashboard",
		}}},
		Description:   description,
		Editable:      true,
		GraphTooltip:  1, // shared crosshair
		Links:         []Link{{AsDropdown: true, Icon: "external link", IncludeVars: false, KeepTime: true, Tags: []string{"fleetwatt"}, Title: "fleetwatt", Type: "dashboards"}},
		Panels:        []Panel{},
		Refresh:       "5m",
		SchemaVersion: SchemaVersion,
		Tags:          []string{"fleetwatt", "energy"},
		Templating:    Templating{List: append([]Variable{datasourceVar()}, vars...)},
		Time:          TimeRange{From: "now-24h", To: "now"},
		Title:         title,
		UID:           uid,
		Version:       1,
	}}
}

// row starts a new row of panels.
func (b *builder) row(title string) {
	b.newline()
	b.id++
	collapsed := false
	b.d.Panels = append(b.d.Panels, Panel{
		Collapsed: &collapsed, GridPos: GridPos{H: 1, W: 24, X: 0, Y: b.y}, ID: b.id, Panels: []Panel{},
		Title: title, Type: "row",
	})
	b.y++
}

func (b *builder) newline() {
	b.y += b.h
	b.x, b.h = 0, 0
}

// add places p, w columns wide and h rows high, right of the previous panel or on a new line.
func (b *builder) add(w, h int, p Panel) {
	if b.x+w > 24 {
		b.newline()
	}
	b.id++
	p.ID = b.id
	p.GridPos = GridPos{H: h, W: w, X: b.x, Y: b.y}
	b.x += w
	b.h = max(b.h, h)
	b.d.Panels = append(b.d.Panels, p)
}

func (b *builder) build() *Dashboard { return b.d }

// datasourceVar is the data source picker: any InfluxDB data source (InfluxQL), the provisioned
// fleetwatt-influxdb by default (Grafana falls back to the default InfluxDB when it is absent).
func datasourceVar() Variable {
	return Variable{
		Current:     Current{Selected: false, Text: "fleetwatt InfluxDB", Value: DatasourceUID},
		Description: "An InfluxDB data source queried with InfluxQL (InfluxDB 1.x, 2.x with a DBRP mapping, 3.x)",
		Label:       "Data source", Name: "datasource", Options: []any{}, Query: "influxdb", Refresh: 1, Type: "datasource",
	}
}

// showTagValues lists a tag's values in a measurement, where a condition holds ("" for none).
func showTagValues(measurement, key, where string) string {
	q := fmt.Sprintf(`SHOW TAG VALUES FROM %s WITH KEY = %s`, id(measurement), id(key))
	if where != "" {
		q += " WHERE " + where
	}
	return q
}

// tagVar is a multi-value variable over the values of the tag of the same name.
func tagVar(name, label, measurement, where string) Variable {
	return multiVar(name, label, showTagValues(measurement, name, where), "")
}

// multiVar is a multi-value variable over a query's values with an "All" option. All is
// ".*", so that series without the tag (a host with no zone) match too.
func multiVar(name, label, q, description string) Variable {
	return Variable{
		AllValue: ".*", Current: Current{Selected: true, Text: []string{"All"}, Value: []string{"$__all"}},
		Datasource: &ds, Definition: q, Description: description, IncludeAll: true, Label: label, Multi: true,
		Name: name, Options: []any{}, Query: q, Refresh: 1, Sort: 1, Type: "query",
	}
}

// oneVar is a single-value variable over a tag's values; current is the preferred value
// (Grafana takes the first option when it is absent).
func oneVar(name, label, measurement, key, where, current, description string) Variable {
	q := showTagValues(measurement, key, where)
	v := Variable{
		Current: Current{}, Datasource: &ds, Definition: q, Description: description, Label: label,
		Name: name, Options: []any{}, Query: q, Refresh: 1, Sort: 1, Type: "query",
	}
	if current != "" {
		v.Current = Current{Selected: true, Text: current, Value: current}
	}
	return v
}

// id quotes an InfluxQL identifier.
func id(name string) string { return `"` + strings.ReplaceAll(name, `"`, `\"`) + `"` }

// match is the condition that tag matches the variable of the same name. It is a regular
// expression match even for single-value variables: Grafana regex-escapes a value it puts
// into /.../ (a host name's dots), while how it treats a value inside '...' has changed
// between versions (docs/dashboards.md, "How the tests query").
func match(tags ...string) string {
	conds := make([]string, len(tags))
	for i, t := range tags {
		conds[i] = fmt.Sprintf(`%s =~ /^${%s}$/`, id(t), t)
	}
	return strings.Join(conds, " AND ")
}

// groupBy lists tags for a GROUP BY clause.
func groupBy(tags ...string) string {
	q := make([]string, len(tags))
	for i, t := range tags {
		q[i] = id(t)
	}
	return strings.Join(q, ", ")
}

// series is a query whose answer Grafana shows as time series.
func series(refID, alias, query string, check Check) Target {
	return Target{Alias: alias, Datasource: ds, Query: query, RawQuery: true, RefID: refID, ResultFormat: "time_series", Check: check}
}

// rows is a query whose answer Grafana shows as a table.
func rows(refID, query string, check Check) Target {
	return Target{Datasource: ds, Query: query, RawQuery: true, RefID: refID, ResultFormat: "table", Check: check}
}

func fieldConfig(unit string, custom map[string]any, overrides ...Override) *FieldConfig {
	if overrides == nil {
		overrides = []Override{}
	}
	return &FieldConfig{
		Defaults: FieldDefaults{
			Color: map[string]any{"mode": "palette-classic"}, Custom: custom, Mappings: []any{}, Unit: unit,
		},
		Overrides: overrides,
	}
}

// unitOf overrides the unit of the field (column) named name.
func unitOf(name, unit string) Override {
	return Override{Matcher: Matcher{ID: "byName", Options: name}, Properties: []Property{{ID: "unit", Value: unit}}}
}

// renamed overrides the display name of the field named name.
func renamed(name, title string) Override {
	return Override{Matcher: Matcher{ID: "byName", Options: name}, Properties: []Property{{ID: "displayName", Value: title}}}
}

var legend = map[string]any{"calcs": []string{"mean", "max"}, "displayMode": "table", "placement": "bottom", "showLegend": true}

// timeseries is a line chart; stacked stacks its series (fleet totals by region).
func timeseries(title, description, unit string, stacked bool, targets ...Target) Panel {
	custom := map[string]any{
		"drawStyle": "line", "fillOpacity": 10, "lineWidth": 1, "showPoints": "never", "spanNulls": false,
		"axisSoftMin": 0,
	}
	if stacked {
		custom["stacking"] = map[string]any{"group": "A", "mode": "normal"}
		custom["fillOpacity"] = 40
	}
	return Panel{
		Datasource: &ds, Description: description, FieldConfig: fieldConfig(unit, custom),
		Options: map[string]any{"legend": legend, "tooltip": map[string]any{"mode": "multi", "sort": "desc"}},
		Targets: targets, Title: title, Type: "timeseries",
	}
}

// stat is one number over the selected range.
func stat(title, description, unit string, target Target) Panel {
	return Panel{
		Datasource: &ds, Description: description, FieldConfig: fieldConfig(unit, nil),
		Options: map[string]any{
			"colorMode": "none", "graphMode": "none", "justifyMode": "auto", "orientation": "auto", "textMode": "value",
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
		},
		Targets: []Target{target}, Title: title, Type: "stat",
	}
}

// table shows table-format queries, merged on their common tag columns, without the time
// column InfluxDB puts first.
func table(title, description string, overrides []Override, hide []string, targets ...Target) Panel {
	exclude := map[string]any{"Time": true}
	for _, h := range hide {
		exclude[h] = true
	}
	tr := []Transformation{}
	if len(targets) > 1 {
		tr = append(tr, Transformation{ID: "merge", Options: map[string]any{}})
	}
	tr = append(tr, Transformation{ID: "organize", Options: map[string]any{"excludeByName": exclude}})
	return Panel{
		Datasource: &ds, Description: description, FieldConfig: fieldConfig("", map[string]any{"align": "auto"}, overrides...),
		Options: map[string]any{"cellHeight": "sm", "showHeader": true},
		Targets: targets, Title: title, Transformations: tr, Type: "table",
	}
}

// text is a Markdown note.
func text(title, markdown string) Panel {
	return Panel{Options: map[string]any{"content": markdown, "mode": "markdown"}, Title: title, Type: "text"}
}
