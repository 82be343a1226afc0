package grafana

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file does to a raw InfluxQL query what Grafana does before InfluxDB sees it, so that
// the tests run exactly the text a Grafana user's InfluxDB receives:
//
//  1. The frontend's templateSrv.replace substitutes the dashboard's variables ($var, ${var},
//     [[var]]), formatting each value with the InfluxDB data source's interpolateQueryExpr
//     (grafana/grafana public/app/plugins/datasource/influxdb/datasource.ts), and leaves
//     $timeFilter, $__interval and $__interval_ms alone (applyTemplateVariables removes
//     __interval and __interval_ms from the scoped variables so that the backend fills them).
//  2. The backend's Query.Build (pkg/tsdb/influxdb/models/query.go) replaces $timeFilter with
//     "time >= <from>ms and time <= <to>ms", then $interval, $__interval_ms and $__interval
//     with the request's interval (gtime.FormatInterval for the text).
//  3. The interval is the frontend's rangeutil.calculateInterval: the range divided by the
//     panel's maxDataPoints (its width in pixels unless set), rounded by roundInterval, and
//     never below the panel's min interval ("interval" in the JSON).

// variable is a template variable's state when a panel queries.
type variable struct {
	Name       string
	Multi      bool
	IncludeAll bool
	AllValue   string
	// Options are the values the variable's query returned.
	Options []string
	// Selected is the selection; nil is "All".
	Selected []string
}

// variableRegex is Grafana's (public/app/features/variables/utils.ts): $var, [[var]] or
// [[var:format]], ${var}, ${var.field} or ${var:format}.
var variableRegex = regexp.MustCompile(`\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}`)

// replace is templateSrv.replace(query, scopedVars, interpolateQueryExpr) for the InfluxDB
// data source. Names that are not dashboard variables ($timeFilter, $__interval) stay as they
// are. An explicit format (${var:csv}) is not used by fleetwatt's dashboards and is an error.
func replace(query string, vars map[string]*variable) (string, error) {
	var err error
	out := variableRegex.ReplaceAllStringFunc(query, func(m string) string {
		g := variableRegex.FindStringSubmatch(m)
		name := g[1] + g[2] + g[4]
		if g[3] != "" || g[6] != "" {
			err = fmt.Errorf("%s: variable formats are not supported here", m)
			return m
		}
		v, ok := vars[name]
		if !ok {
			return m
		}
		if v.Selected == nil { // All
			if v.AllValue != "" {
				// A custom all value is inserted as it is, unformatted (TemplateSrv
				// _evaluateVariableExpression: "skip formatting of custom all values").
				return v.AllValue
			}
			return interpolateQueryExpr(v.Options, v, query)
		}
		if v.Multi {
			return interpolateQueryExpr(v.Selected, v, query)
		}
		return interpolateQueryExpr(v.Selected[0], v, query)
	})
	return out, err
}

// interpolateQueryExpr is the InfluxDB data source's formatter of a variable's value:
//
//   - a value that starts like a number (JavaScript's parseFloat) is left as it is;
//   - a multi-value variable's values are always regex-escaped, several joined as (a|b);
//   - any other variable's value is escaped only where it stands inside a regular expression
//     after =~ or !~ (grafana/grafana#105194, which stopped treating divisions as regexes).
//
// value is a string or a []string (multi-value selections and "All" without a custom all
// value). Grafana joins an unescaped list with commas.
func interpolateQueryExpr(value any, v *variable, query string) string {
	if s, ok := value.(string); ok && startsLikeNumber(s) {
		return s
	}
	escaped := func() string {
		switch x := value.(type) {
		case string:
			return escapeRegex(x)
		default:
			list := x.([]string)
			parts := make([]string, len(list))
			for i, s := range list {
				parts[i] = escapeRegex(s)
			}
			return "(" + strings.Join(parts, "|") + ")"
		}
	}
	if v.Multi {
		return escaped()
	}
	for _, m := range regexesIn(query) {
		// Grafana's test of "this regex holds the variable": /^?(.*)($name)(.*)$?/.
		if regexp.MustCompile(`/(?:\^)?(.*)(\$` + regexp.QuoteMeta(v.Name) + `)(.*)(?:\$)?/`).MatchString(m) {
			return escaped()
		}
	}
	if list, ok := value.([]string); ok {
		return strings.Join(list, ",")
	}
	return value.(string)
}

// regexMatcher is the data source's pattern of a regular expression in a query:
// (=~|!~) /body/flags, the body not starting with *, + or ? (JavaScript's (?![*+?]),
// checked by hand: Go's regexp has no lookahead).
var regexMatcher = regexp.MustCompile(`(\s*(=|!)~\s*)/((?:[^\r\n\[/\\]|\\.|\[(?:[^\r\n\]\\]|\\.)*\])+)/((?:g(?:im?|mi?)?|i(?:gm?|mg?)?|m(?:gi?|ig?)?)?)`)

func regexesIn(query string) []string {
	var out []string
	for _, m := range regexMatcher.FindAllStringSubmatch(query, -1) {
		if strings.ContainsAny(m[3][:1], "*+?") {
			continue
		}
		out = append(out, m[0])
	}
	return out
}

// escapeRegex is @grafana/data's: a backslash before \ ^ $ * + ? . ( ) | [ ] { } and /.
func escapeRegex(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\^$*+?.()|[]{}/`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// numberPrefix is what JavaScript's parseFloat reads a number from.
var numberPrefix = regexp.MustCompile(`^\s*[+-]?(Infinity|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)`)

func startsLikeNumber(s string) bool { return numberPrefix.MatchString(s) }

// request is a panel's query request: its time range and width.
type request struct {
	From, To      time.Time
	MaxDataPoints int
}

// interval is rangeutil.calculateInterval: (to − from) / maxDataPoints, rounded, at least
// minInterval ("" for none).
func (r request) interval(minInterval string) (time.Duration, error) {
	d := roundInterval(r.To.Sub(r.From) / time.Duration(r.MaxDataPoints))
	if minInterval != "" {
		low, err := time.ParseDuration(minInterval)
		if err != nil {
			return 0, fmt.Errorf("min interval %q: %w", minInterval, err)
		}
		d = max(d, low)
	}
	return d, nil
}

// render is the query InfluxDB receives for a panel with min interval minInterval.
func (r request) render(query string, vars map[string]*variable, minInterval string) (string, error) {
	q, err := replace(query, vars)
	if err != nil {
		return "", err
	}
	iv, err := r.interval(minInterval)
	if err != nil {
		return "", err
	}
	text := formatInterval(iv)
	q = strings.ReplaceAll(q, "$timeFilter", fmt.Sprintf("time >= %dms and time <= %dms", r.From.UnixMilli(), r.To.UnixMilli()))
	q = strings.ReplaceAll(q, "$interval", text)
	q = strings.ReplaceAll(q, "$__interval_ms", strconv.FormatInt(iv.Milliseconds(), 10))
	q = strings.ReplaceAll(q, "$__interval", text)
	return q, nil
}

// roundInterval is rangeutil.roundInterval: the interval snapped to a round value.
func roundInterval(d time.Duration) time.Duration {
	ms := d.Milliseconds()
	steps := []struct{ below, to int64 }{
		{10, 1},
		{15, 10},
		{35, 20},
		{75, 50},
		{150, 100},
		{350, 200},
		{750, 500},
		{1500, 1000},
		{3500, 2000},
		{7500, 5000},
		{12500, 10000},
		{17500, 15000},
		{25000, 20000},
		{45000, 30000},
		{90000, 60000},
		{210000, 120000},
		{450000, 300000},
		{750000, 600000},
		{1050000, 900000},
		{1500000, 1200000},
		{2700000, 1800000},
		{5400000, 3600000},
		{9000000, 7200000},
		{16200000, 10800000},
		{32400000, 21600000},
		{86400000, 43200000},
		{604800000, 86400000},
		{1814400000, 604800000},
		{3628800000, 2592000000},
	}
	for _, s := range steps {
		if ms < s.below {
			return time.Duration(s.to) * time.Millisecond
		}
	}
	return 31536000000 * time.Millisecond
}

// formatInterval is the plugin SDK's gtime.FormatInterval: the largest whole unit.
func formatInterval(d time.Duration) string {
	day := 24 * time.Hour
	year := 365 * day
	switch {
	case d >= year:
		return fmt.Sprintf("%dy", d/year)
	case d >= day:
		return fmt.Sprintf("%dd", d/day)
	case d >= time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d >= time.Second:
		return fmt.Sprintf("%ds", d/time.Second)
	case d >= time.Millisecond:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
	return "1ms"
}

// TestInterpolate holds the interpolation to the cases of Grafana's own tests
// (public/app/plugins/datasource/influxdb/datasource.test.ts, "interpolateQueryExpr") and to
// the shapes fleetwatt's dashboards use.
func TestInterpolate(t *testing.T) {
	t.Parallel()
	single := &variable{Name: "tempVar"}
	multi := &variable{Name: "tempVar", Multi: true, IncludeAll: true}
	for _, c := range []struct {
		name  string
		value any
		v     *variable
		query string
		want  string
	}{
		{"plain value as it is", "normalValue", single, "my query $tempVar", "normalValue"},
		{"escaped in a regex", "/special/path", single, "select atan(z/sqrt(3.14)), that where path =~ /$tempVar/", `\/special\/path`},
		{"escaped in an anchored regex", "/special/path", single, "select atan(z/sqrt(3.14)), that where path !~ /^$tempVar$/", `\/special\/path`},
		{"not escaped in a string", "/special/path", single, "select that where path = '$tempVar'", "/special/path"},
		{"numbers as they are", "12.2", single, "select that where path = '$tempVar'", "12.2"},
		{"multi always escaped", []string{"/special/path", "/some/other/path"}, multi, "select that where path = '$tempVar'", `(\/special\/path|\/some\/other\/path)`},
		{"not a regex: division", "testmatch", single, `select value where ("tag"::tag =~ /value/) AND where other = $tempVar $timeFilter GROUP BY time($__interval) tz('Europe/London')`, "testmatch"},
		{"float as it is", "1.0", single, "select value / $tempVar from /^measurement$/", "1.0"},
		{"one of a multi", []string{"Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz"}, multi, `"cpu_model" =~ /^${tempVar}$/`, `(Intel\(R\) Xeon\(R\) Platinum 8380 CPU @ 2\.30GHz)`},
	} {
		if got := interpolateQueryExpr(c.value, c.v, c.query); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}

	vars := map[string]*variable{
		"region": {Name: "region", Multi: true, IncludeAll: true, AllValue: ".*", Options: []string{"a", "b"}},
		"zone":   {Name: "zone", Multi: true, IncludeAll: true, Options: []string{"a.1", "b.2"}},
		"arch":   {Name: "arch", Multi: true, IncludeAll: true, AllValue: ".*", Options: []string{"amd64", "arm64"}, Selected: []string{"arm64"}},
		"host":   {Name: "host", Options: []string{"h.example.com"}, Selected: []string{"h.example.com"}},
	}
	got, err := replace(`"region" =~ /^${region}$/ AND "zone" =~ /^[[zone]]$/ AND "arch" =~ /^$arch$/ AND "host" = '${host}' AND $timeFilter GROUP BY time($__interval)`, vars)
	if err != nil {
		t.Fatal(err)
	}
	want := `"region" =~ /^.*$/ AND "zone" =~ /^(a\.1|b\.2)$/ AND "arch" =~ /^(arm64)$/ AND "host" = 'h.example.com' AND $timeFilter GROUP BY time($__interval)`
	if got != want {
		t.Errorf("replace:\n got %s\nwant %s", got, want)
	}
	if _, err := replace(`${region:csv}`, vars); err == nil {
		t.Error("a variable format passed")
	}

	r := request{From: time.UnixMilli(1_000_000), To: time.UnixMilli(1_000_000).Add(6 * time.Hour), MaxDataPoints: 1000}
	q, err := r.render(`SELECT x FROM m WHERE $timeFilter GROUP BY time($__interval) -- $__interval_ms`, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := `SELECT x FROM m WHERE time >= 1000000ms and time <= 22600000ms GROUP BY time(20s) -- 20000`; q != want {
		t.Errorf("render:\n got %s\nwant %s", q, want)
	}
	for _, c := range []struct {
		min  string
		want time.Duration
	}{{"", 20 * time.Second}, {"5m", 5 * time.Minute}, {"1h", time.Hour}, {"10s", 20 * time.Second}} {
		if got, _ := r.interval(c.min); got != c.want {
			t.Errorf("interval with min %q: %s, want %s", c.min, got, c.want)
		}
	}
	if got := formatInterval(roundInterval(7 * 24 * time.Hour / 1000)); got != "10m" {
		t.Errorf("a week at 1000 points: %s, want 10m", got)
	}
}
