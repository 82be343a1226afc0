// Package grafana defines fleetwatt's Grafana dashboards in Go and renders them as Grafana's
// classic dashboard JSON (dashboards/grafana/*.json, provisioned by
// deploy/grafana/provisioning). Every query is InfluxQL against an InfluxDB data source picked
// by the dashboard's `datasource` variable, so the same dashboards run on InfluxDB 1.x, 2.x
// (through a DBRP mapping) and 3.x.
//
// The JSON files are generated: edit the Go, then `make dashboards` (go run
// ./dashboards/grafana/gen). The package's tests fail when the committed files and the Go
// disagree, and run every panel's and every variable's query, interpolated as Grafana does,
// against a real InfluxDB filled with a simulated fleet through the real agent and collector.
// docs/dashboards.md explains each dashboard.
package grafana

// SchemaVersion is the dashboard schema the JSON follows: Grafana 10.4 and 11.0 save 39, and
// later versions migrate it on load.
const SchemaVersion = 39

// DatasourceUID is the uid of the InfluxDB data source that deploy/grafana/provisioning
// provisions; the dashboards do not depend on it (they use the datasource variable).
const DatasourceUID = "fleetwatt-influxdb"

// Dashboard is Grafana's classic dashboard JSON model, the fields fleetwatt uses.
type Dashboard struct {
	Annotations          Annotations `json:"annotations"`
	Description          string      `json:"description"`
	Editable             bool        `json:"editable"`
	FiscalYearStartMonth int         `json:"fiscalYearStartMonth"`
	GraphTooltip         int         `json:"graphTooltip"`
	ID                   *int        `json:"id"` // null: Grafana assigns it
	Links                []Link      `json:"links"`
	LiveNow              bool        `json:"liveNow"`
	Panels               []Panel     `json:"panels"`
	Refresh              string      `json:"refresh"`
	SchemaVersion        int         `json:"schemaVersion"`
	Tags                 []string    `json:"tags"`
	Templating           Templating  `json:"templating"`
	Time                 TimeRange   `json:"time"`
	Timepicker           struct{}    `json:"timepicker"`
	Timezone             string      `json:"timezone"`
	Title                string      `json:"title"`
	UID                  string      `json:"uid"`
	Version              int         `json:"version"`
	WeekStart            string      `json:"weekStart"`
}

// Annotations holds the dashboard's annotation queries.
type Annotations struct {
	List []Annotation `json:"list"`
}

// Annotation is Grafana's built-in "Annotations & Alerts" query.
type Annotation struct {
	BuiltIn    int           `json:"builtIn"`
	Datasource DatasourceRef `json:"datasource"`
	Enable     bool          `json:"enable"`
	Hide       bool          `json:"hide"`
	IconColor  string        `json:"iconColor"`
	Name       string        `json:"name"`
	Type       string        `json:"type"`
}

// Link is a link in the dashboard's header.
type Link struct {
	AsDropdown  bool     `json:"asDropdown"`
	Icon        string   `json:"icon"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
	Tags        []string `json:"tags"`
	TargetBlank bool     `json:"targetBlank"`
	Title       string   `json:"title"`
	Tooltip     string   `json:"tooltip"`
	Type        string   `json:"type"` // "dashboards" (by tag) or "link"
	URL         string   `json:"url"`
}

// TimeRange is the default time range, in Grafana's relative syntax ("now-24h").
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// DatasourceRef names a data source by type and uid; "${datasource}" is the variable's.
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Variable is a template variable: the data source picker (Type "datasource") or an InfluxQL
// query (Type "query").
type Variable struct {
	AllValue    string         `json:"allValue,omitempty"`
	Current     Current        `json:"current"`
	Datasource  *DatasourceRef `json:"datasource,omitempty"`
	Definition  string         `json:"definition,omitempty"`
	Description string         `json:"description,omitempty"`
	Hide        int            `json:"hide"`
	IncludeAll  bool           `json:"includeAll"`
	Label       string         `json:"label"`
	Multi       bool           `json:"multi"`
	Name        string         `json:"name"`
	Options     []any          `json:"options"`
	Query       string         `json:"query"`
	Refresh     int            `json:"refresh"`
	Regex       string         `json:"regex"`
	SkipURLSync bool           `json:"skipUrlSync"`
	Sort        int            `json:"sort"`
	Type        string         `json:"type"`
}

// Current is a variable's selected value: a string, or a list for multi-value variables.
type Current struct {
	Selected bool `json:"selected,omitempty"`
	Text     any  `json:"text,omitempty"`
	Value    any  `json:"value,omitempty"`
}

// GridPos places a panel on the dashboard's 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Panel is one panel, or a row (Type "row").
type Panel struct {
	Collapsed       *bool            `json:"collapsed,omitempty"`
	Datasource      *DatasourceRef   `json:"datasource,omitempty"`
	Description     string           `json:"description,omitempty"`
	FieldConfig     *FieldConfig     `json:"fieldConfig,omitempty"`
	GridPos         GridPos          `json:"gridPos"`
	ID              int              `json:"id"`
	Interval        string           `json:"interval,omitempty"` // the lowest $__interval
	Options         map[string]any   `json:"options,omitempty"`
	Panels          []Panel          `json:"panels,omitempty"`
	Targets         []Target         `json:"targets,omitempty"`
	Title           string           `json:"title"`
	Transformations []Transformation `json:"transformations,omitempty"`
	Type            string           `json:"type"`
}

// FieldConfig sets the display of a panel's fields: units, ranges, overrides.
type FieldConfig struct {
	Defaults  FieldDefaults `json:"defaults"`
	Overrides []Override    `json:"overrides"`
}

// FieldDefaults apply to every field of a panel.
type FieldDefaults struct {
	Color    map[string]any `json:"color,omitempty"`
	Custom   map[string]any `json:"custom,omitempty"`
	Decimals *int           `json:"decimals,omitempty"`
	Mappings []any          `json:"mappings"`
	Max      *float64       `json:"max,omitempty"`
	Min      *float64       `json:"min,omitempty"`
	Unit     string         `json:"unit,omitempty"`
}

// Override changes the display of the fields a matcher selects.
type Override struct {
	Matcher    Matcher    `json:"matcher"`
	Properties []Property `json:"properties"`
}

// Matcher selects fields, e.g. {ID: "byName", Options: "cost_usd"}.
type Matcher struct {
	ID      string `json:"id"`
	Options string `json:"options"`
}

// Property is one overridden setting, e.g. {ID: "unit", Value: "currencyUSD"}.
type Property struct {
	ID    string `json:"id"`
	Value any    `json:"value"`
}

// Transformation reshapes a panel's data before display (merge, organize).
type Transformation struct {
	ID      string         `json:"id"`
	Options map[string]any `json:"options"`
}

// Target is one InfluxQL query of a panel, written raw: Grafana substitutes $timeFilter,
// $__interval and the dashboard's variables, then sends it to InfluxDB's /query.
type Target struct {
	Alias        string        `json:"alias,omitempty"`
	Datasource   DatasourceRef `json:"datasource"`
	Query        string        `json:"query"`
	RawQuery     bool          `json:"rawQuery"`
	RefID        string        `json:"refId"`
	ResultFormat string        `json:"resultFormat"` // "time_series" or "table"

	// Check is what the query returns on real data. It is not part of the JSON: the tests
	// run every query against a fleet and hold each answer to it.
	Check Check `json:"-"`
}

// Check describes a target's answer: the series' tags, their value columns and the range of
// every value.
type Check struct {
	// Tags are the tags every series carries (its GROUP BY tags, time aside).
	Tags []string
	// Columns are the columns after "time", in order.
	Columns []string
	// Min and Max bound every value: what the quantity can physically be in any fleet.
	Min, Max float64
}
