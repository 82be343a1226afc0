package grafana

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/fleettest"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
)

// TestQueries runs every variable's and every panel's query of every dashboard, as Grafana
// would send them, against a real InfluxDB holding six hours of the default simulated fleet
// (loaded through the real agent and collector, rolled up by the real collector), and holds
// the answers to the physics and to the efficiency report over the same hours. The collector
// health dashboard reads its own database, which a collector with a write-ahead log fills with
// its self-metrics while a real agent (on a fixture tree) and a sender of bad data points
// talk to it.
func TestQueries(t *testing.T) {
	s := influxtest.Start(t)
	health := startHealth(t, s) // first: its collector must run for two 30-s reports
	fleet := fleettest.Load(t, s, fleettest.Options{Backfill: 6 * time.Hour})

	// Whole hours inside the data (the first point covers the 5 minutes before it), so that
	// the raw points and the hourly rollups cover the same intervals.
	h0 := fleet.From.Add(5 * time.Minute).Add(time.Hour - time.Nanosecond).Truncate(time.Hour)
	h1 := fleet.To.Truncate(time.Hour)
	if h1.Sub(h0) < 3*time.Hour {
		t.Fatalf("only %s of whole hours in %s..%s", h1.Sub(h0), fleet.From, fleet.To)
	}
	r := request{From: h0, To: h1.Add(-time.Millisecond), MaxDataPoints: 1000}
	rep := runReport(t, s, h0, h1)
	spec := loadFleetSpec(t)
	factors := loadRegions(t)
	db := &database{s: s, name: s.Database}

	t.Run("efficiency", func(t *testing.T) {
		a := runDashboard(t, db, Efficiency(), r, nil)
		checkEfficiency(t, a, rep, factors, nil)
	})
	t.Run("efficiency/selected", func(t *testing.T) {
		// Two regions and a model whose name needs regex escaping: (R), dots.
		sel := map[string][]string{
			"region":    {"cn-beijing", "us-west-1"},
			"cpu_model": {"Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz"},
		}
		a := runDashboard(t, db, Efficiency(), r, sel)
		checkEfficiency(t, a, rep, factors, sel)
	})
	t.Run("power-curves", func(t *testing.T) {
		a := runDashboard(t, db, PowerCurves(), r, nil)
		checkCurves(t, a, spec)
	})
	t.Run("host", func(t *testing.T) {
		a := runDashboard(t, db, HostDetail(), r, nil)
		checkHost(t, a, spec, h1)
	})
	t.Run("host/selected", func(t *testing.T) {
		a := runDashboard(t, db, HostDetail(), r, map[string][]string{
			"region": {"cn-shenzhen"}, "arch": {"arm64"}, "host": {"cn-shenzhen-arm64-03"},
		})
		checkHost(t, a, spec, h1)
	})
	t.Run("collector-health", func(t *testing.T) {
		health.wait(t)
		hr := request{From: health.start.Add(-time.Minute), To: time.Now().Add(time.Second), MaxDataPoints: 1000}
		a := runDashboard(t, &database{s: s, name: healthDB}, CollectorHealth(), hr, nil)
		checkHealth(t, a, health)
	})
}

// database is where a dashboard's data source points.
type database struct {
	s    *influxtest.Server
	name string
}

func (d *database) query(t *testing.T, q string) []influxql.Series {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	series, err := d.s.Client().Query(ctx, d.name, q)
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	return series
}

// answers are a dashboard's results: per panel title, per target refId.
type answers map[string]map[string][]influxql.Series

func (a answers) get(t *testing.T, panel, refID string) []influxql.Series {
	t.Helper()
	s, ok := a[panel][refID]
	if !ok {
		t.Fatalf("no panel %q with query %s", panel, refID)
	}
	return s
}

// runDashboard resolves d's variables in order, as Grafana does on load (each variable's query
// interpolated with the ones before it; the selection from sel, else the dashboard's current
// value, else the first option), then runs every panel's queries and checks each answer
// against its Check and the selection.
func runDashboard(t *testing.T, db *database, d *Dashboard, r request, sel map[string][]string) answers {
	t.Helper()
	vars := map[string]*variable{}
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			continue
		}
		q, err := replace(v.Query, vars)
		if err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		var opts []string
		for _, s := range db.query(t, q) {
			c := slices.Index(s.Columns, "value")
			for _, row := range s.Values {
				if str, ok := row[c].(string); ok && !slices.Contains(opts, str) {
					opts = append(opts, str)
				}
			}
		}
		if len(opts) == 0 {
			t.Fatalf("variable %s: no values from %s", v.Name, q)
		}
		slices.Sort(opts) // sort 1: alphabetical
		st := &variable{Name: v.Name, Multi: v.Multi, IncludeAll: v.IncludeAll, AllValue: v.AllValue, Options: opts}
		switch cur, _ := v.Current.Value.(string); {
		case sel[v.Name] != nil:
			for _, want := range sel[v.Name] {
				if !slices.Contains(opts, want) {
					t.Fatalf("variable %s: %q is not among its values %q (query %s)", v.Name, want, opts, q)
				}
			}
			st.Selected = sel[v.Name]
		case v.IncludeAll:
			st.Selected = nil // All
		case slices.Contains(opts, cur):
			st.Selected = []string{cur}
		default:
			st.Selected = opts[:1]
		}
		vars[v.Name] = st
	}

	out := answers{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			continue
		}
		if _, dup := out[p.Title]; dup {
			t.Fatalf("two panels titled %q", p.Title)
		}
		out[p.Title] = map[string][]influxql.Series{}
		for _, tg := range p.Targets {
			q, err := r.render(tg.Query, vars, p.Interval)
			if err != nil {
				t.Fatalf("%s/%s: %v", p.Title, tg.RefID, err)
			}
			series := db.query(t, q)
			checkAnswer(t, p.Title+"/"+tg.RefID, tg.Query, q, series, tg.Check, vars)
			out[p.Title][tg.RefID] = series
		}
	}
	return out
}

// checkAnswer holds an answer to its Check: some series, each with the Check's tags and
// columns, every value a finite number in range, and every tag that the query filters by a
// variable (raw is the query before interpolation) a selected value.
func checkAnswer(t *testing.T, what, raw, q string, series []influxql.Series, c Check, vars map[string]*variable) {
	t.Helper()
	if len(series) == 0 {
		t.Errorf("%s: no data from\n%s", what, q)
		return
	}
	for _, s := range series {
		if got := slices.Sorted(func(yield func(string) bool) {
			for k := range s.Tags {
				if !yield(k) {
					return
				}
			}
		}); !slices.Equal(got, slices.Sorted(slices.Values(c.Tags))) {
			t.Errorf("%s: series tags %v, want %v", what, s.Tags, c.Tags)
		}
		if want := append([]string{"time"}, c.Columns...); !slices.Equal(s.Columns, want) {
			t.Errorf("%s: columns %v, want %v\n%s", what, s.Columns, want, q)
		}
		if len(s.Values) == 0 {
			t.Errorf("%s: series %v has no rows", what, s.Tags)
		}
		for _, row := range s.Values {
			for i, v := range row[1:] {
				f, ok := v.(float64)
				if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f < c.Min || f > c.Max {
					t.Errorf("%s: %s = %v (series %v): want a number in [%g, %g]\n%s", what, c.Columns[i], v, s.Tags, c.Min, c.Max, q)
					return
				}
			}
		}
		for k, val := range s.Tags {
			if v := vars[k]; v != nil && v.Selected != nil && strings.Contains(raw, "${"+k+"}") && !slices.Contains(v.Selected, val) {
				t.Errorf("%s: series of %s %q, but %v is selected", what, k, val, v.Selected)
			}
		}
	}
}

// near reports whether got is within rel of want.
func near(got, want, rel float64) bool { return math.Abs(got-want) <= rel*math.Abs(want) }

// values returns a column's numbers, by the series' tags joined with "/".
func values(t *testing.T, series []influxql.Series, column string, tags ...string) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for _, s := range series {
		c := slices.Index(s.Columns, column)
		if c < 0 {
			t.Fatalf("no column %s in %v", column, s.Columns)
		}
		parts := make([]string, len(tags))
		for i, k := range tags {
			parts[i] = s.Tags[k]
		}
		key := strings.Join(parts, "/")
		for _, row := range s.Values {
			if f, ok := row[c].(float64); ok {
				out[key] = append(out[key], f)
			}
		}
	}
	return out
}

func first(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	return v[0]
}

func one(t *testing.T, series []influxql.Series, column string) float64 {
	t.Helper()
	v := values(t, series, column)[""]
	if len(v) != 1 {
		t.Fatalf("%s: %d values, want 1", column, len(v))
	}
	return v[0]
}

// reportGroup is a group of `fleetwatt-collector report --by region,arch --format json`.
type reportGroup struct {
	Region       string   `json:"region"`
	Arch         string   `json:"arch"`
	Hosts        int      `json:"hosts"`
	EnergyKWh    float64  `json:"energy_kwh"`
	AvgPowerW    float64  `json:"avg_power_w"`
	AvgUtil      float64  `json:"avg_util"`
	WPerBusyCore *float64 `json:"w_per_busy_core"`
	OpsPerJoule  *float64 `json:"ops_per_joule"`
}

// runReport runs the real report over [from, to) by region and architecture.
func runReport(t *testing.T, s *influxtest.Server, from, to time.Time) map[string]reportGroup {
	t.Helper()
	cmd := exec.Command(fleettest.Binary(t, fleettest.Collector), "report", "--influx-url", s.URL, "--influx-bucket", s.Bucket(),
		"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "--by", "region,arch", "--format", "json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("report: %v\n%s", err, stderr.String())
	}
	var rep struct {
		Groups []reportGroup `json:"groups"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	groups := map[string]reportGroup{}
	for _, g := range rep.Groups {
		groups[g.Region+"/"+g.Arch] = g
	}
	if len(groups) != 12 {
		t.Fatalf("report: %d groups, want 12 (6 regions × 2 architectures)\n%s", len(groups), out)
	}
	return groups
}

// factor is a region's cost and carbon of one kWh of IT energy, PUE included.
type factor struct{ usd, kgCO2e float64 }

// loadRegions reads the collector's shipped regions table, the one the rollup prices with.
func loadRegions(t *testing.T) map[string]factor {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "collector", "internal", "regions", "regions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) int { return slices.Index(recs[0], name) }
	price, grid, pue := col("price_usd_per_kwh"), col("grid_gco2e_per_kwh"), col("pue")
	out := map[string]factor{}
	for _, r := range recs[1:] {
		num := func(i int) float64 {
			v, err := strconv.ParseFloat(r[i], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		out[r[0]] = factor{usd: num(price) * num(pue), kgCO2e: num(grid) * num(pue) / 1000}
	}
	return out
}

// group is a pool of the simulated fleet's spec.
type group struct {
	Region   string  `yaml:"region"`
	Arch     string  `yaml:"arch"`
	CPUModel string  `yaml:"cpu_model"`
	Hosts    int     `yaml:"hosts"`
	Sockets  int     `yaml:"sockets"`
	Cores    int     `yaml:"cores"`
	IdleW    float64 `yaml:"idle_w"`
	PeakW    float64 `yaml:"peak_w"`
}

// loadFleetSpec reads the default fleet fleettest.Load simulates: its true idle and peak
// power per group (before each host's ±3 % variation).
func loadFleetSpec(t *testing.T) []group {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "agent", "internal", "simulate", "default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Groups []group `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	return spec.Groups
}

func checkEfficiency(t *testing.T, a answers, rep map[string]reportGroup, factors map[string]factor, sel map[string][]string) {
	t.Helper()
	selected := func(g reportGroup) bool {
		return (sel["region"] == nil || slices.Contains(sel["region"], g.Region)) &&
			(sel["cpu_model"] == nil || g.Arch == "amd64" && (g.Region == "cn-beijing" || g.Region == "us-west-1"))
	}
	var wantHosts int
	var wantEnergy, wantPower float64
	for _, g := range rep {
		if selected(g) {
			wantHosts += g.Hosts
			wantEnergy += g.EnergyKWh
			wantPower += g.AvgPowerW * float64(g.Hosts)
		}
	}
	if got := one(t, a.get(t, "Hosts", "A"), "hosts"); int(got) != wantHosts {
		t.Errorf("hosts: %v, the report has %d", got, wantHosts)
	}
	if got := one(t, a.get(t, "Energy", "A"), "energy_kwh"); !near(got, wantEnergy, 1e-4) {
		t.Errorf("energy: %v kWh, the report has %v", got, wantEnergy)
	}
	if got := one(t, a.get(t, "Average power", "A"), "power_w"); !near(got, wantPower, 1e-4) {
		t.Errorf("average power: %v W, the report has %v", got, wantPower)
	}

	// Per region and architecture: the report's numbers, and cost and carbon from the
	// regions table.
	eff := a.get(t, "Efficiency by region and architecture", "A")
	wpb := values(t, eff, "w_per_busy_cpu", "region", "arch")
	util := values(t, eff, "utilization", "region", "arch")
	opj := values(t, a.get(t, "Efficiency by region and architecture", "B"), "ops_per_joule", "region", "arch")
	hosts := values(t, a.get(t, "Efficiency by region and architecture", "C"), "hosts", "region", "arch")
	money := a.get(t, "Energy, cost and carbon by region and architecture", "A")
	kwh := values(t, money, "energy_kwh", "region", "arch")
	usd := values(t, money, "cost_usd", "region", "arch")
	co2 := values(t, money, "co2e_kg", "region", "arch")
	n := 0
	for key, g := range rep {
		if !selected(g) {
			if _, ok := wpb[key]; ok {
				t.Errorf("%s is not selected, yet shown", key)
			}
			continue
		}
		n++
		t.Logf("%s: %d hosts, %.4g W per busy CPU (report %.4g), %.4g ops/J, %.4g kWh, $%.4g, %.4g kg CO2e",
			key, g.Hosts, first(wpb[key]), *g.WPerBusyCore, first(opj[key]), first(kwh[key]), first(usd[key]), first(co2[key]))
		if got := wpb[key]; len(got) != 1 || !near(got[0], *g.WPerBusyCore, 1e-3) {
			t.Errorf("%s: W per busy CPU %v, the report has %v", key, got, *g.WPerBusyCore)
		} else if got[0] < 0.5 || got[0] > 10 {
			t.Errorf("%s: %v W per busy CPU: not a server's", key, got[0])
		}
		if got := util[key]; len(got) != 1 || !near(got[0], g.AvgUtil, 1e-3) {
			t.Errorf("%s: utilization %v, the report has %v", key, got, g.AvgUtil)
		}
		if got := opj[key]; len(got) != 1 || g.OpsPerJoule == nil || !near(got[0], *g.OpsPerJoule, 1e-3) {
			t.Errorf("%s: ops per joule %v, the report has %v", key, got, g.OpsPerJoule)
		}
		if got := hosts[key]; len(got) != 1 || int(got[0]) != g.Hosts {
			t.Errorf("%s: %v hosts, the report has %d", key, got, g.Hosts)
		}
		f := factors[g.Region]
		if got := kwh[key]; len(got) != 1 || !near(got[0], g.EnergyKWh, 1e-4) {
			t.Errorf("%s: %v kWh, the report has %v", key, got, g.EnergyKWh)
		} else {
			if c := usd[key]; len(c) != 1 || !near(c[0], got[0]*f.usd, 1e-9) {
				t.Errorf("%s: cost %v USD, want %v kWh × %v USD/kWh", key, c, got[0], f.usd)
			}
			if c := co2[key]; len(c) != 1 || !near(c[0], got[0]*f.kgCO2e, 1e-9) {
				t.Errorf("%s: carbon %v kg, want %v kWh × %v kg/kWh", key, c, got[0], f.kgCO2e)
			}
		}
	}
	if n == 0 || len(wpb) != n {
		t.Errorf("%d groups shown, %d selected", len(wpb), n)
	}

	// Fleet power over time: every 5-minute interval of the range holds every host's reading,
	// so the mean over time of the regional totals is the report's Σ average power.
	power := values(t, a.get(t, "Fleet power by region", "A"), "power_w", "region")
	for region, vs := range power {
		var want float64
		for _, g := range rep {
			if g.Region == region && selected(g) {
				want += g.AvgPowerW * float64(g.Hosts)
			}
		}
		var sum float64
		for _, v := range vs {
			sum += v
		}
		t.Logf("%s: fleet power %.5g W over %d intervals, report %.5g W", region, sum/float64(len(vs)), len(vs), want)
		if mean := sum / float64(len(vs)); !near(mean, want, 1e-3) {
			t.Errorf("%s: fleet power averages %v W over %d intervals, the report has %v W", region, mean, len(vs), want)
		}
	}
}

func checkCurves(t *testing.T, a answers, spec []group) {
	t.Helper()
	model := map[string]group{}
	for _, g := range spec {
		model[g.CPUModel] = g
	}
	fit := a.get(t, "Fitted power curve per CPU model", "A")
	idle := values(t, fit, "idle_w", "cpu_model")
	peak := values(t, fit, "peak_w", "cpu_model")
	ratio := values(t, fit, "idle_to_peak", "cpu_model")
	if len(idle) != len(model) {
		t.Errorf("fits of %d models, the fleet has %d", len(idle), len(model))
	}
	for m, g := range model {
		// The hosts idle no lower than about 10 % and never saturate: the ends are
		// extrapolated, through each host's ±3 % part-to-part spread and 1 % sensor noise.
		t.Logf("%s: fitted idle %.4g W (true %v), peak %.4g W (true %v)", m, first(idle[m]), g.IdleW, first(peak[m]), g.PeakW)
		if got := idle[m]; len(got) != 1 || !near(got[0], g.IdleW, 0.05) {
			t.Errorf("%s: fitted idle %v W, true %v W", m, got, g.IdleW)
		}
		if got := peak[m]; len(got) != 1 || !near(got[0], g.PeakW, 0.05) {
			t.Errorf("%s: fitted peak %v W, true %v W", m, got, g.PeakW)
		}
		if got := ratio[m]; len(got) != 1 || !near(got[0], g.IdleW/g.PeakW, 0.08) {
			t.Errorf("%s: idle/peak %v, true %v", m, got, g.IdleW/g.PeakW)
		}
	}
	xy := a.get(t, "Power against CPU utilization, per CPU model", "A")
	us := values(t, xy, "utilization", "cpu_model")
	ps := values(t, xy, "power_w", "cpu_model")
	for m, g := range model {
		if len(ps[m]) < g.Hosts*3 {
			t.Errorf("%s: %d host-hours, want at least %d", m, len(ps[m]), g.Hosts*3)
		}
		for i, p := range ps[m] {
			u := us[m][i]
			want := g.IdleW + (g.PeakW-g.IdleW)*u // the default fleet's curves are linear
			if u <= 0 || u >= 1 || !near(p, want, 0.06) {
				t.Errorf("%s: %v W at utilization %v, the curve says %v W", m, p, u, want)
				break
			}
		}
	}
}

// checkHost checks the host dashboard for the host its variable selected (the answers' own
// series say which).
func checkHost(t *testing.T, a answers, spec []group, to time.Time) {
	t.Helper()
	power := a.get(t, "Power by scope and source", "A")
	if len(power) != 1 || power[0].Tags["scope"] != "wall" || power[0].Tags["source"] != "simulator" || power[0].Tags["method"] != "measured" {
		t.Errorf("power series %v: want the simulator's measured wall power", power)
	}
	facts := a.get(t, "Host facts", "A")
	logical, sockets, nominal := one(t, facts, "logical_cpus"), one(t, facts, "sockets"), one(t, facts, "nominal_hz")
	var g *group
	for i := range spec {
		if spec[i].Cores == int(logical) && spec[i].Sockets == int(sockets) {
			g = &spec[i]
		}
	}
	if g == nil {
		t.Fatalf("%v logical CPUs in %v sockets: no such group in the fleet", logical, sockets)
	}
	for _, p := range values(t, power, "power_w")[""] {
		if p < 0.9*g.IdleW || p > 1.1*g.PeakW {
			t.Errorf("power %v W, outside the %s's %v..%v W", p, g.CPUModel, g.IdleW, g.PeakW)
			break
		}
	}
	if nominal < 1e9 || nominal > 4e9 {
		t.Errorf("nominal clock %v Hz", nominal)
	}
	for _, f := range values(t, a.get(t, "CPU frequency", "A"), "frequency_hz")[""] {
		if f < 0.5e9 || f > 4e9 {
			t.Errorf("frequency %v Hz", f)
			break
		}
	}
	if got := values(t, a.get(t, "CPU frequency", "B"), "nominal_hz")[""]; len(got) == 0 || got[0] != nominal {
		t.Errorf("nominal clock line %v, host facts %v", got, nominal)
	}

	// The idle states and the busy CPUs add up to the logical CPUs, interval by interval.
	idle := a.get(t, "Idle states", "A")
	states := map[string]bool{}
	total := map[float64]float64{}
	for _, s := range idle {
		states[s.Tags["state"]] = true
		for _, row := range s.Values {
			total[row[0].(float64)] += row[1].(float64)
		}
	}
	want := map[string]bool{"C1": true, "C6": true}
	if g.Arch == "arm64" {
		want = map[string]bool{"WFI": true, "cpu-sleep": true}
	}
	if !maps.Equal(states, want) {
		t.Errorf("idle states %v, want %v", states, want)
	}
	busy := a.get(t, "Idle states", "B")
	if len(busy) != 1 || len(busy[0].Values) != len(total) {
		t.Fatalf("busy CPUs at %d times, idle states at %d", len(busy[0].Values), len(total))
	}
	for _, row := range busy[0].Values {
		at, b := row[0].(float64), row[1].(float64)
		if sum := total[at] + b; !near(sum, logical, 1e-6) {
			t.Errorf("%s: %v idle + %v busy CPUs = %v, want the %v logical CPUs", time.UnixMilli(int64(at)).UTC(), total[at], b, sum, logical)
			break
		}
	}

	// Every host of the selection reported until the end of the range.
	fresh := a.get(t, "Data freshness: last reading per host", "A")
	for _, s := range fresh {
		last := time.UnixMilli(int64(s.Values[0][0].(float64)))
		if last.Before(to.Add(-10*time.Minute)) || last.After(to) {
			t.Errorf("%s: last reading at %s, want within the 10 minutes before %s", s.Tags["host"], last, to)
		}
	}
	if energy := a.get(t, "Energy by scope, source and method", "A"); len(energy) != 1 {
		t.Errorf("energy by scope: %d series, want 1", len(energy))
	}
}

// healthDB is the collector health test's database.
const healthDB = "fleetwatt_health"

type healthEnv struct {
	db         *database
	start      time.Time // when the collector started
	agentStart time.Time
}

// startHealth starts a collector with a write-ahead log writing into healthDB, a real agent
// reading the AMD EPYC fixture tree and sending to it every second, and sends it data points
// it must reject (negative power, a time too old).
func startHealth(t *testing.T, s *influxtest.Server) *healthEnv {
	t.Helper()
	h := &healthEnv{db: &database{s: s, name: healthDB}}
	h.db.query(t, "CREATE DATABASE "+healthDB)
	h.start = time.Now()
	c := fleettest.StartCollector(t, s, "--influx-bucket", healthDB+"/autogen", "--wal-dir", filepath.Join(t.TempDir(), "wal"))
	h.agentStart = time.Now()
	fleettest.Start(t, fleettest.Binary(t, fleettest.Agent), "--root", fixture.Root(t, "amd-epyc"),
		"--endpoint", "http://"+c.GRPC, "--interval", "1s", "--spool-dir", filepath.Join(t.TempDir(), "spool"),
		"--host-name", "agent-under-test", "--region", "cn-hangzhou")

	now := time.Now().UnixNano()
	body := fmt.Sprintf(`{"resourceMetrics":[{"resource":{"attributes":[{"key":"host.name","value":{"stringValue":"bad-sender"}}]},
"scopeMetrics":[{"metrics":[
 {"name":"hw.power","unit":"W","gauge":{"dataPoints":[{"timeUnixNano":"%d","asDouble":-5}]}},
 {"name":"hw.power","unit":"W","gauge":{"dataPoints":[{"timeUnixNano":"%d","asDouble":5}]}}]}]}]}`,
		now, now-int64(200*24*time.Hour))
	resp, err := http.Post("http://"+c.HTTP+"/v1/metrics", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bad data points: HTTP %d, want 200 with a partial success", resp.StatusCode)
	}
	return h
}

// wait waits until the collector has stored its counters twice, 30 s apart (a rate needs two),
// and the agent its own twice (the second after its first export succeeded).
func (h *healthEnv) wait(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(150 * time.Second)
	for {
		coll := h.db.query(t, `SELECT count("value") FROM "fleetwatt_collector_requests_total" WHERE time > now() - 1h GROUP BY time(30s) fill(none)`)
		agent := h.db.query(t, `SELECT max("value") FROM "fleetwatt_agent_last_export_timestamp_seconds" WHERE time > now() - 1h`)
		if len(coll) > 0 && len(coll[0].Values) >= 2 && len(agent) > 0 && agent[0].Values[0][1].(float64) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no two self-reports of the collector and the agent within 150 s: %v %v", coll, agent)
		}
		time.Sleep(time.Second)
	}
}

func checkHealth(t *testing.T, a answers, h *healthEnv) {
	t.Helper()
	positive := func(panel, refID, column string) {
		t.Helper()
		for _, vs := range values(t, a.get(t, panel, refID), column, "host") {
			if slices.Max(vs) > 0 {
				return
			}
		}
		t.Errorf("%s/%s: never above 0", panel, refID)
	}
	positive("Data points received and written", "A", "per_s")
	positive("Data points received and written", "B", "per_s")
	positive("Export requests", "A", "per_s")
	positive("Write-ahead log", "A", "value")
	positive("Agent batches since start", "A", "value")
	reasons := values(t, a.get(t, "Data points rejected, by reason", "A"), "per_s", "reason")
	for _, r := range []string{"negative energy or power", "time too old"} {
		if _, ok := reasons[r]; !ok {
			t.Errorf("no rejections for %q among %v", r, slices.Collect(maps.Keys(reasons)))
		}
	}
	last := values(t, a.get(t, "Agents: last successful export", "A"), "last_export_ms", "host")["agent-under-test"]
	if len(last) != 1 || time.UnixMilli(int64(last[0])).Before(h.agentStart) || time.UnixMilli(int64(last[0])).After(time.Now()) {
		t.Errorf("agent's last export at %v, want after it started at %s", last, h.agentStart)
	}
}
