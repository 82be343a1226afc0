package report_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
	"github.com/fleetwatt/fleetwatt/collector/internal/report"
	"github.com/fleetwatt/fleetwatt/collector/internal/rollup"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// testHost is a host with a known power curve and utilization.
type testHost struct {
	name, region, zone, arch, model string
	scope, source                   string
	sensors                         int     // sockets: the power is split evenly between them
	cores                           float64 // logical CPUs
	idle, peak                      float64 // W
	concave                         bool    // P = idle + (peak−idle)(2u − u²) instead of linear
	meanU, ampU                     float64 // utilization: meanU + ampU·sin(2πt/1h) + noise
	opsPerBusyCPUs                  float64 // operations per busy CPU-second; 0: no work
	noise                           float64 // relative power noise per reading
}

func (h testHost) power(u float64) float64 {
	if h.concave {
		return h.idle + (h.peak-h.idle)*(2*u-u*u)
	}
	return h.idle + (h.peak-h.idle)*u
}

// truth is what the generator produced, per host.
type truth struct {
	busy, total, energy, interval float64
}

const (
	step  = 30 * time.Second
	hours = 3
)

// fleet is the accuracy test's hosts: in cn-hangzhou, ARM and x86 pools on the same (wall)
// scope, x86 with two sockets (sensors summed); in us-west-1 a concave ARM pool; in
// cn-beijing an ARM pool measured only at the CPU package and an x86 pool only at the wall.
func fleet() []testHost {
	var hs []testHost
	for i := range 4 {
		d := float64(i)
		hs = append(hs,
			testHost{
				name: fmt.Sprintf("hz-arm-%d", i), region: "cn-hangzhou", zone: "cn-hangzhou-h", arch: "arm64",
				model: "Ampere Altra Q80-30", scope: "wall", source: "simulator", sensors: 1, cores: 80,
				idle: 54 + 3*d, peak: 140 + 6*d, meanU: 0.30 + 0.04*d, ampU: 0.2, opsPerBusyCPUs: 1200, noise: 0.01,
			},
			testHost{
				name: fmt.Sprintf("hz-x86-%d", i), region: "cn-hangzhou", zone: "cn-hangzhou-i", arch: "amd64",
				model: "AMD EPYC 9754", scope: "wall", source: "simulator", sensors: 2, cores: 256,
				idle: 117 + 5*d, peak: 674 - 10*d, meanU: 0.45 + 0.05*d, ampU: 0.25, opsPerBusyCPUs: 900, noise: 0.01,
			},
			testHost{
				name: fmt.Sprintf("sv-arm-%d", i), region: "us-west-1", zone: "us-west-1a", arch: "arm64",
				model: "Ampere Altra Q80-30", scope: "wall", source: "ipmi", sensors: 1, cores: 80, concave: true,
				idle: 60 + 2*d, peak: 150 + 4*d, meanU: 0.4, ampU: 0.3,
			},
			testHost{
				name: fmt.Sprintf("sv-x86-%d", i), region: "us-west-1", zone: "us-west-1a", arch: "amd64",
				model: "Intel Xeon Platinum 8592+", scope: "wall", source: "ipmi", sensors: 1, cores: 256,
				idle: 250 + 10*d, peak: 900, meanU: 0.5, ampU: 0.2,
			},
			testHost{
				name: fmt.Sprintf("bj-arm-%d", i), region: "cn-beijing", zone: "cn-beijing-a", arch: "arm64",
				model: "Ampere Altra Q80-30", scope: "cpu-package", source: "hwmon", sensors: 1, cores: 80,
				idle: 30, peak: 100, meanU: 0.3, ampU: 0.2,
			},
			testHost{
				name: fmt.Sprintf("bj-x86-%d", i), region: "cn-beijing", zone: "cn-beijing-a", arch: "amd64",
				model: "AMD EPYC 9754", scope: "wall", source: "ipmi", sensors: 1, cores: 256,
				idle: 120, peak: 680, meanU: 0.3, ampU: 0.2,
			},
		)
	}
	return hs
}

// lcg is a small deterministic noise source, uniform in [−1, 1).
type lcg uint64

func (x *lcg) next() float64 {
	*x = *x*6364136223846793005 + 1442695040888963407
	return float64(uint64(*x)>>11)/(1<<52) - 1
}

// generate writes the raw points of hs for hours hours from start, as the collector stores
// them, and returns the truth per host.
func generate(t testing.TB, w *influx.Writer, hs []testHost, start time.Time) map[string]truth {
	t.Helper()
	truths := map[string]truth{}
	var points []*write.Point
	flush := func() {
		if err := w.Write(context.Background(), points); err != nil {
			t.Fatalf("write: %v", err)
		}
		points = points[:0]
	}
	for hi, h := range hs {
		rng := lcg(hi + 1)
		tags := map[string]string{
			semconv.TagHost: h.name, semconv.TagArch: h.arch, semconv.TagCPUModel: h.model,
			semconv.TagRegion: h.region, semconv.TagZone: h.zone, semconv.TagDatacenter: h.zone + "-dc1",
			semconv.TagCPUVendor: map[string]string{"arm64": "ARM", "amd64": "AuthenticAMD"}[h.arch],
		}
		var tr truth
		iv := step.Seconds()
		for k := 1; k <= hours*int(time.Hour/step); k++ {
			ts := start.Add(time.Duration(k) * step)
			u := h.meanU + h.ampU*math.Sin(2*math.Pi*float64(k)*iv/3600) + 0.02*rng.next()
			u = min(max(u, 0), 1)
			total := h.cores * iv
			busy := u * total
			p := h.power(u) * (1 + h.noise*rng.next())
			for s := range h.sensors {
				pt := map[string]string{
					semconv.TagScope: h.scope, semconv.TagSource: h.source, semconv.TagMethod: "measured",
					semconv.TagSensor: fmt.Sprintf("sensor-%d", s), semconv.TagPrimary: "true",
				}
				for k, v := range tags {
					pt[k] = v
				}
				e := p / float64(h.sensors) * iv
				points = append(points, write.NewPoint(semconv.MeasurementPower, pt, map[string]any{
					semconv.FieldEnergy: e, semconv.FieldInterval: iv, semconv.FieldPower: e / iv,
				}, ts))
				tr.energy += e
			}
			tr.interval += iv
			tr.busy += busy
			tr.total += total
			points = append(points, write.NewPoint(semconv.MeasurementCPU, tags, map[string]any{
				semconv.FieldBusy: busy, semconv.FieldTotal: total, semconv.FieldInterval: iv,
				semconv.FieldUtilization: u, semconv.ModeField("idle"): total - busy,
			}, ts))
			if h.opsPerBusyCPUs > 0 {
				points = append(points, write.NewPoint(semconv.MeasurementWork, tags, map[string]any{
					semconv.FieldOps: h.opsPerBusyCPUs * busy, semconv.FieldInterval: iv,
				}, ts))
			}
			if len(points) >= 4000 {
				flush()
			}
		}
		truths[h.name] = tr
	}
	flush()
	return truths
}

type env struct {
	srv    *influxtest.Server
	w      *influx.Writer
	roller *rollup.Roller
	start  time.Time
	hosts  []testHost
	truth  map[string]truth
}

func setup(t *testing.T) *env {
	t.Helper()
	s := influxtest.Start(t)
	w, err := influx.New(influx.Options{URL: s.URL, Bucket: s.Bucket()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	start := time.Now().UTC().Truncate(time.Hour).Add(-(hours + 2) * time.Hour)
	hs := fleet()
	e := &env{srv: s, w: w, start: start, hosts: hs}
	e.truth = generate(t, w, hs, start)
	e.roller = rollup.New(s.Client(), w, s.Bucket(), slog.New(slog.DiscardHandler))
	e.roller.HostBatch = 5 // several batches per hour
	return e
}

func (e *env) rollup(t *testing.T) rollup.Stats {
	t.Helper()
	st, err := e.roller.Rollup(context.Background(), e.start, e.start.Add((hours+1)*time.Hour))
	if err != nil {
		t.Fatalf("rollup: %v", err)
	}
	return st
}

func (e *env) report(t *testing.T, by []string) *report.Report {
	t.Helper()
	table, err := regions.Load("")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := report.Run(context.Background(), e.srv.Client(), e.srv.Bucket(), report.Options{
		From: e.start, To: e.start.Add((hours + 1) * time.Hour), By: by, Regions: table,
	})
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	return rep
}

func within(t *testing.T, what string, got *float64, want, rel float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = null, want %.4g", what, want)
		return
	}
	t.Logf("%s = %.5g, truth %.5g (%+.3f%%)", what, *got, want, 100*(*got/want-1))
	if d := math.Abs(*got/want - 1); d > rel {
		t.Errorf("%s = %.4g, want %.4g within %.1f%% (off by %.2f%%)", what, *got, want, 100*rel, 100*d)
	}
}

// TestAccuracy: raw points of hosts with known power curves go through Rollup into host_1h and
// through the report; the report recovers idle and peak power within 3 %, watts per busy CPU
// within 2 % and the ARM/x86 ratio at matched utilization within 1 % of the truth.
func TestAccuracy(t *testing.T) {
	t.Parallel()
	e := setup(t)
	st := e.rollup(t)
	if st.Points == 0 {
		t.Fatal("rollup wrote no points")
	}
	rep := e.report(t, nil)

	type pool struct{ region, arch string }
	byPool := map[pool][]testHost{}
	for _, h := range e.hosts {
		byPool[pool{h.region, h.arch}] = append(byPool[pool{h.region, h.arch}], h)
	}
	if len(rep.Groups) != len(byPool) {
		t.Fatalf("%d groups, want %d:\n%+v", len(rep.Groups), len(byPool), rep.Groups)
	}
	for _, g := range rep.Groups {
		hs := byPool[pool{g.Region, g.Arch}]
		var idle, peak, power, busyCPUs, energy float64
		for _, h := range hs {
			tr := e.truth[h.name]
			idle += h.idle
			peak += h.peak
			power += tr.energy / tr.interval
			busyCPUs += tr.busy / tr.interval
			energy += tr.energy
		}
		n := float64(len(hs))
		name := g.Region + "/" + g.Arch
		if g.Hosts != len(hs) || g.HostsFitted != len(hs) {
			t.Errorf("%s: %d hosts, %d fitted, want %d", name, g.Hosts, g.HostsFitted, len(hs))
		}
		within(t, name+" idle_w", g.IdleW, idle/n, 0.03)
		within(t, name+" peak_w", g.PeakW, peak/n, 0.03)
		within(t, name+" w_per_busy_core", g.WPerBusyCore, power/busyCPUs, 0.02)
		within(t, name+" avg_power_w", &g.AvgPowerW, power/n, 1e-5)
		within(t, name+" energy_kwh", &g.EnergyKWh, energy/3.6e6, 1e-5)
		if g.Scope != hs[0].scope {
			t.Errorf("%s: scope %q, want %q", name, g.Scope, hs[0].scope)
		}
	}

	if len(rep.Comparisons) != 3 {
		t.Fatalf("%d comparisons, want 3: %+v", len(rep.Comparisons), rep.Comparisons)
	}
	for _, c := range rep.Comparisons {
		arm, x86 := byPool[pool{c.Region, "arm64"}], byPool[pool{c.Region, "amd64"}]
		if c.Region == "cn-beijing" {
			if c.Scope != "" || c.WPerBusyCore != nil || !strings.Contains(c.Note, "no common power scope") ||
				!strings.Contains(c.Note, "cpu-package") || !strings.Contains(c.Note, "wall") {
				t.Errorf("cn-beijing: want a refusal to compare cpu-package with wall, got %+v", c)
			}
			continue
		}
		if c.Scope != "wall" {
			t.Errorf("%s: scope %q, want wall", c.Region, c.Scope)
		}
		// Matched utilization: the x86 pool's average.
		var busy, total float64
		for _, h := range x86 {
			busy += e.truth[h.name].busy
			total += e.truth[h.name].total
		}
		u := busy / total
		within(t, c.Region+" at_util", c.AtUtil, u, 1e-5)
		wpb := func(hs []testHost) float64 {
			var p, cpus float64
			for _, h := range hs {
				p += h.power(u)
				cpus += u * h.cores
			}
			return p / cpus
		}
		wantRatio := wpb(arm) / wpb(x86)
		if c.WPerBusyCore == nil {
			t.Fatalf("%s: no w_per_busy_core comparison: %+v", c.Region, c)
		}
		gotRatio := c.WPerBusyCore.RelDiff + 1
		within(t, c.Region+" ARM/x86 W per busy CPU", &gotRatio, wantRatio, 0.01)
		if ci := c.WPerBusyCore.CI95; ci == nil || ci[0] > c.WPerBusyCore.RelDiff || ci[1] < c.WPerBusyCore.RelDiff {
			t.Errorf("%s: CI %v does not bracket the estimate %.4f", c.Region, ci, c.WPerBusyCore.RelDiff)
		}
		if c.Region == "cn-hangzhou" {
			opj := func(hs []testHost) float64 {
				var ops, p float64
				for _, h := range hs {
					ops += h.opsPerBusyCPUs * u * h.cores
					p += h.power(u)
				}
				return ops / p
			}
			want := opj(arm) / opj(x86)
			if c.OpsPerJoule == nil {
				t.Fatalf("cn-hangzhou: no ops_per_joule comparison")
			}
			got := c.OpsPerJoule.RelDiff + 1
			within(t, "cn-hangzhou ARM/x86 ops per joule", &got, want, 0.01)
		} else if c.OpsPerJoule != nil {
			t.Errorf("%s: ops_per_joule compared without work: %+v", c.Region, c.OpsPerJoule)
		}
	}
}

// TestRollupIdempotent: computing the rollups twice writes the same points, no more.
func TestRollupIdempotent(t *testing.T) {
	t.Parallel()
	e := setup(t)
	dump := func() string {
		series := e.srv.Query(t, `SELECT * FROM host_1h GROUP BY *`)
		b, err := json.Marshal(series)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	st1 := e.rollup(t)
	first := dump()
	st2 := e.rollup(t)
	second := dump()
	if st1 != st2 {
		t.Errorf("stats differ: %+v then %+v", st1, st2)
	}
	if first != second {
		t.Errorf("the second rollup changed host_1h:\n%s\n%s", first, second)
	}
	count := e.srv.Query(t, `SELECT count(energy_j) FROM host_1h`)
	// 24 hosts, one scope and source each; data in hours 1..3 and the last point on hour 4.
	if want := float64(len(e.hosts) * (hours + 1)); len(count) != 1 || count[0].Values[0][1] != want {
		t.Errorf("count = %v, want %v", count, want)
	}
	if st1.Points != len(e.hosts)*(hours+1) {
		t.Errorf("points written = %d, want %d", st1.Points, len(e.hosts)*(hours+1))
	}
	// An hour without raw data writes nothing: rolling up an empty range keeps the rollups.
	if st, err := e.roller.Rollup(context.Background(), e.start.Add(-48*time.Hour), e.start); err != nil || st.Points != 0 {
		t.Errorf("empty range: %+v, %v", st, err)
	}
}

// TestHandler: GET /api/v1/report answers JSON, and errors as JSON with a status code.
func TestHandler(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.rollup(t)
	table, _ := regions.Load("")
	h := &report.Handler{
		Querier: e.srv.Client(), Bucket: e.srv.Bucket(), Regions: table,
		Now: func() time.Time { return e.start.Add((hours + 1) * time.Hour) },
	}
	get := func(query string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/report?"+query, nil))
		return rec
	}
	rec := get("since=6h&by=region,arch")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var rep report.Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Groups) != 6 || len(rep.Comparisons) != 3 || rep.Hours != 6 {
		t.Errorf("%d groups, %d comparisons, %d hours; want 6, 3, 6", len(rep.Groups), len(rep.Comparisons), rep.Hours)
	}
	if rec := get("since=6h&format=csv"); rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), "region,zone,arch") {
		t.Errorf("csv: %d %s", rec.Code, rec.Body)
	}
	for _, q := range []string{"since=forever", "by=host", "format=xml", "from=2026-01-01", "since=1h&from=2026-01-01T00:00:00Z"} {
		rec := get(q)
		var body struct{ Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); rec.Code != http.StatusBadRequest || err != nil || body.Error == "" {
			t.Errorf("%s: status %d, body %s; want 400 with a JSON error", q, rec.Code, rec.Body)
		}
	}
	bad := &report.Handler{Querier: e.srv.Client(), Bucket: "nosuchdb", Regions: table}
	rec = httptest.NewRecorder()
	bad.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/report", nil))
	if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Errorf("missing database: status %d, %s; want 502 with a JSON error", rec.Code, rec.Body)
	}
}
