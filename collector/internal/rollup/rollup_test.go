package rollup

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func powerSeries(host, scope, source, sensor string, rows ...[]any) influxql.Series {
	return influxql.Series{
		Name: "power",
		Tags: map[string]string{
			"host": host, "arch": "amd64", "cpu_vendor": "AuthenticAMD", "cpu_model": "EPYC",
			"region": "r", "zone": "z", "datacenter": "", "scope": scope, "source": source, "sensor": sensor,
		},
		Columns: []string{"time", "energy_j", "interval_s"},
		Values:  rows,
	}
}

// TestCompute: sensors of one scope and source are summed per timestamp, an interval counts
// once, only timestamps with cpu data enter the fit's sums, and the order of the series does
// not change a bit of the result.
func TestCompute(t *testing.T) {
	t.Parallel()
	power := []influxql.Series{
		powerSeries("h1", "cpu-package", "rapl", "package-0", []any{1000.0, 1000.0, 10.0}, []any{2000.0, 1500.0, 10.0}, []any{3000.0, 900.0, 10.0}),
		powerSeries("h1", "cpu-package", "rapl", "package-1", []any{1000.0, 1000.0, 10.0}, []any{2000.0, 1500.0, 10.0}, []any{3000.0, 1100.0, 10.0}),
		powerSeries("h1", "wall", "ipmi", "psu", []any{1000.0, 3000.0, 10.0}, []any{2000.0, nil, 10.0}),
		powerSeries("h2", "wall", "ipmi", "psu", []any{1000.0, 2500.0, 10.0}),
	}
	cpu := []influxql.Series{{
		Name: "cpu", Tags: map[string]string{"host": "h1"},
		Columns: []string{"time", "busy_s", "total_s", "interval_s"},
		Values: [][]any{
			{1000.0, 20.0, 80.0, 10.0}, // u 0.25
			{2000.0, 60.0, 80.0, 10.0}, // u 0.75
			{4000.0, 40.0, 80.0, 10.0}, // no power at this time: CPU sums only
		},
	}}
	work := []influxql.Series{{Name: "work", Tags: map[string]string{"host": "h1"}, Columns: []string{"time", "sum"}, Values: [][]any{{0.0, 5e6}}}}

	got := Compute(power, cpu, work)
	if len(got) != 3 {
		t.Fatalf("%d points, want 3 (h1 cpu-package, h1 wall, h2 wall)", len(got))
	}
	pkg := got[0]
	if pkg.Tags()["scope"] != "cpu-package" || pkg.Tags()["host"] != "h1" {
		t.Fatalf("first point %v", pkg.Tags())
	}
	// Sensors summed: 200 W, 300 W, 200 W; three intervals of 10 s; two with cpu.
	want := map[string]any{
		"energy_j": 7000.0, "interval_s": 30.0, "busy_s": 120.0, "total_s": 240.0, "cpu_interval_s": 30.0,
		"ops": 5e6, "samples": 2.0, "sum_u": 1.0, "sum_uu": 0.625, "sum_uuu": 0.015625 + 0.421875,
		"sum_uuuu": math.Pow(0.25, 4) + math.Pow(0.75, 4), "sum_p": 500.0, "sum_up": 0.25*200 + 0.75*300,
		"sum_uup": 0.0625*200 + 0.5625*300, "sum_pp": 200.0*200 + 300*300,
	}
	if diff := cmp.Diff(want, pkg.Fields()); diff != "" {
		t.Errorf("h1 cpu-package (-want +got):\n%s", diff)
	}
	if f := got[1].Fields(); f["energy_j"] != 3000.0 || f["samples"] != 1.0 {
		t.Errorf("h1 wall: a row without energy counts nowhere: %v", f)
	}
	// h2 has no cpu points: no CPU fields, no samples, no ops.
	f := got[2].Fields()
	if _, ok := f["busy_s"]; ok || f["samples"] != 0.0 {
		t.Errorf("h2: %v", f)
	}
	if _, ok := f["ops"]; ok {
		t.Errorf("h2 has ops without work points: %v", f)
	}

	reversed := []influxql.Series{power[3], power[2], power[1], power[0]}
	again := Compute(reversed, cpu, work)
	for i := range got {
		if diff := cmp.Diff(got[i].Fields(), again[i].Fields()); diff != "" {
			t.Errorf("point %d depends on the series order:\n%s", i, diff)
		}
	}
}

// TestRunner: the runner rolls up at start and then every period over the last lookback, and
// Shutdown waits for it.
func TestRunner(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var calls [][2]time.Time
		fail := true
		f := func(_ context.Context, from, to time.Time) (Stats, error) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, [2]time.Time{from, to})
			if fail {
				fail = false
				return Stats{}, errors.New("influxdb down")
			}
			return Stats{Hours: 3}, nil
		}
		r := NewRunner(f, 5*time.Minute, 0, slog.New(slog.DiscardHandler))
		start := time.Now()
		r.Start(t.Context())
		time.Sleep(16 * time.Minute)
		synctest.Wait()
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(calls) != 4 { // 0, 5, 10, 15 minutes
			t.Fatalf("%d runs in 16 minutes, want 4", len(calls))
		}
		for i, c := range calls {
			at := start.Add(time.Duration(i) * 5 * time.Minute)
			if !c[1].Equal(at) || c[1].Sub(c[0]) != DefaultLookback {
				t.Errorf("run %d: [%s, %s), want the %s before %s", i, c[0], c[1], DefaultLookback, at)
			}
		}
	})
}

// TestPrice: a point's energy is priced and turned into carbon with its region's factors, PUE
// included; a region the table does not know gets neither field, and the zero table none.
func TestPrice(t *testing.T) {
	t.Parallel()
	table, err := regions.Load("")
	if err != nil {
		t.Fatal(err)
	}
	power := []influxql.Series{
		powerSeries("h1", "wall", "ipmi", "psu", []any{1000.0, 3.6e6, 10.0}), // 1 kWh, region "r"
	}
	power[0].Tags["region"] = "cn-hangzhou"
	other := powerSeries("h2", "wall", "ipmi", "psu", []any{1000.0, 7.2e6, 10.0}) // region "r": unknown
	got := Compute(append(power, other), nil, nil)
	for _, s := range got {
		s.Price(table)
	}
	hz, _ := table.Get("cn-hangzhou")
	f := got[0].Fields()
	if want := hz.PriceUSDPerKWh * hz.PUE; math.Abs(f["cost_usd"].(float64)-want) > 1e-12 || math.Abs(want-0.117) > 1e-12 {
		t.Errorf("cost of 1 kWh in cn-hangzhou: %v, want %v", f["cost_usd"], want)
	}
	if want := hz.GridGCO2ePerKWh * hz.PUE / 1000; math.Abs(f["co2e_kg"].(float64)-want) > 1e-12 || math.Abs(want-0.56170*1.3) > 1e-9 {
		t.Errorf("carbon of 1 kWh in cn-hangzhou: %v kg, want %v", f["co2e_kg"], want)
	}
	if f := got[1].Fields(); f["cost_usd"] != nil || f["co2e_kg"] != nil {
		t.Errorf("region r is in no table, yet %v", f)
	}
	again := Compute(power, nil, nil)
	again[0].Price(regions.Table{})
	if f := again[0].Fields(); f["cost_usd"] != nil {
		t.Errorf("the zero table priced a point: %v", f)
	}
}
