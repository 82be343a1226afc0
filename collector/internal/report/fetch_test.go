package report

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
	"github.com/fleetwatt/fleetwatt/collector/internal/rollup"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// dailyFleet is a fleet whose hourly rollups change from hour to hour: ARM and x86 pools in
// two regions, a host with a second source and a second scope, one without work, one that
// joins on the fifth day.
func dailyFleet() []spec {
	return []spec{
		{"hz-a1", "cn-hangzhou", "cn-hangzhou-h", "arm64", "Ampere Altra Q80-30", "wall", "simulator", 80, 54, 140, 0.35, 0.2, 1200},
		{"hz-a2", "cn-hangzhou", "cn-hangzhou-h", "arm64", "Ampere Altra Q80-30", "wall", "simulator", 80, 56, 144, 0.30, 0.2, 1200},
		{"hz-x1", "cn-hangzhou", "cn-hangzhou-i", "amd64", "AMD EPYC 9754", "wall", "ipmi", 256, 117, 674, 0.45, 0.2, 900},
		{"hz-x1", "cn-hangzhou", "cn-hangzhou-i", "amd64", "AMD EPYC 9754", "wall", "rapl", 256, 100, 600, 0.45, 0.2, 900},
		{"hz-x1", "cn-hangzhou", "cn-hangzhou-i", "amd64", "AMD EPYC 9754", "cpu-package", "rapl", 256, 80, 500, 0.45, 0.2, 900},
		{"hz-x2", "cn-hangzhou", "cn-hangzhou-i", "amd64", "AMD EPYC 9754", "wall", "ipmi", 256, 121, 660, 0.50, 0.2, 0},
		{"sv-a1", "us-west-1", "us-west-1a", "arm64", "Ampere Altra Q80-30", "wall", "ipmi", 80, 60, 150, 0.4, 0.3, 0},
		{"sv-x1", "us-west-1", "us-west-1a", "amd64", "Intel Xeon Platinum 8592+", "wall", "ipmi", 256, 250, 900, 0.5, 0.2, 0},
		{"sv-x2", "us-west-1", "us-west-1a", "amd64", "Intel Xeon Platinum 8592+", "wall", "ipmi", 256, 260, 880, 0.45, 0.2, 0},
	}
}

// writeHourly writes the fleet's host_1h points for days days from start: each hour the sums
// of spec.row (halved: row is two hours) at a utilization that moves with the hour.
func writeHourly(t *testing.T, s *influxtest.Server, fleet []spec, start time.Time, days int) {
	t.Helper()
	w, err := influx.New(influx.Options{URL: s.URL, Bucket: s.Bucket()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var points []*write.Point
	for h := range days * 24 {
		ts := start.Add(time.Duration(h) * time.Hour)
		for i, sp := range fleet {
			if sp.host == "sv-x2" && h < 4*24 {
				continue // joins on the fifth day
			}
			sp.meanU += 0.1 * math.Sin(float64(h+i)/5)
			r := sp.row()
			c := r.Curve
			fields := map[string]any{
				semconv.FieldEnergy: r.Energy / 2, semconv.FieldInterval: r.Interval / 2,
				semconv.FieldBusy: r.Busy / 2, semconv.FieldTotal: r.Total / 2, semconv.FieldCPUInterval: r.CPUInterval / 2,
				semconv.FieldSamples: c.N / 2, semconv.FieldSumU: c.U / 2, semconv.FieldSumUU: c.UU / 2,
				semconv.FieldSumUUU: c.UUU / 2, semconv.FieldSumUUUU: c.UUUU / 2, semconv.FieldSumP: c.P / 2,
				semconv.FieldSumUP: c.UP / 2, semconv.FieldSumUUP: c.UUP / 2, semconv.FieldSumPP: c.PP / 2,
			}
			if r.HasOps {
				fields[semconv.FieldOps] = r.Ops / 2
			}
			points = append(points, write.NewPoint(semconv.MeasurementHostHour, map[string]string{
				semconv.TagHost: sp.host, semconv.TagArch: sp.arch, semconv.TagCPUModel: sp.model,
				semconv.TagRegion: sp.region, semconv.TagZone: sp.zone, semconv.TagScope: sp.scope,
				semconv.TagSource: sp.source,
			}, fields, ts))
		}
	}
	if err := w.Write(context.Background(), points); err != nil {
		t.Fatal(err)
	}
}

// hourlyOnly is the report's rows as Fetch read them before the daily rollups: host_1h summed
// by InfluxDB over the whole range.
func hourlyOnly(t *testing.T, s *influxtest.Server, from, to time.Time) []HostRow {
	t.Helper()
	f := fetcher{q: s.Client(), bucket: s.Bucket(), db: s.Database, rp: "autogen"}
	rows, err := f.sums(context.Background(), semconv.MeasurementHostHour, from, to)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rows, func(a, b HostRow) int { return a.key().compare(b.key()) })
	return rows
}

// sixDigits compares floats as the report prints them: equal to rounding (a unit in the
// sixth significant digit, should a rounding fall the other way).
var sixDigits = cmp.Comparer(func(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-5*math.Max(math.Abs(a), math.Abs(b))
})

// TestFetchDaily: over a range of several days with partial first and last days, Fetch (whole
// days from host_1d, the edges from host_1h, a day that has no daily rollups from host_1h)
// returns the rows of the hourly rollups alone to rounding, and the report built from them
// is the report built from the hourly rollups alone; a range of 28 days or more covers whole
// days, and its report is the hourly rollups' report over those days.
func TestFetchDaily(t *testing.T) {
	t.Parallel()
	s := influxtest.Start(t)
	start := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	const days = 33
	fleet := dailyFleet()
	writeHourly(t, s, fleet, start, days)
	w, err := influx.New(influx.Options{URL: s.URL, Bucket: s.Bucket()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	roller := rollup.New(s.Client(), w, s.Bucket(), slog.New(slog.DiscardHandler))
	// Every day but the 11th: a day without daily rollups is read from the hourly ones.
	gap := start.Add(10 * Day)
	for _, r := range [][2]time.Time{{start, gap}, {gap.Add(Day), start.Add(days * Day)}} {
		if _, err := roller.Days(context.Background(), r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Query(t, `SELECT count(energy_j) FROM host_1d`); len(got) != 1 || got[0].Values[0][1] != float64((days-1)*len(fleet)-4) {
		t.Fatalf("host_1d holds %v points, want %d", got, (days-1)*len(fleet)-4)
	}
	table, err := regions.Load("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	for _, tt := range []struct {
		name     string
		from, to time.Time
	}{
		{"edges and a day without daily rollups", start.Add(2*Day + 7*time.Hour), start.Add(20*Day + 15*time.Hour)},
		{"whole days", start.Add(Day), start.Add(9 * Day)},
		{"within one day", start.Add(3*Day + 2*time.Hour), start.Add(3*Day + 20*time.Hour)},
		{"one whole day and edges", start.Add(3*Day + 23*time.Hour), start.Add(5*Day + time.Hour)},
		{"the host that joins", start.Add(3*Day + 12*time.Hour), start.Add(6*Day + 12*time.Hour)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := hourlyOnly(t, s, tt.from, tt.to)
			got, err := Fetch(ctx, s.Client(), s.Bucket(), tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].key() != want[i].key() || !nearRow(got[i], want[i], 1e-12) {
					t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
				}
			}
			for _, by := range [][]string{nil, {KeyRegion, KeyScope}} {
				opts := Options{From: tt.from, To: tt.to, By: by, Regions: table}
				wantRep, err := Build(want, opts)
				if err != nil {
					t.Fatal(err)
				}
				gotRep, err := Build(got, opts)
				if err != nil {
					t.Fatal(err)
				}
				if len(wantRep.Comparisons) != 2 || wantRep.Groups[0].HostsFitted == 0 {
					t.Fatalf("the fixture's report compares nothing: %+v", wantRep)
				}
				if diff := cmp.Diff(wantRep, gotRep, sixDigits); diff != "" {
					t.Errorf("by %v: report from daily rollups (-hourly only +daily):\n%s", by, diff)
				}
			}
		})
	}

	t.Run("28 days or more: whole days", func(t *testing.T) {
		now := start.Add(days*Day - 10*time.Hour) // 14:00 on the last day
		rep, err := Run(ctx, s.Client(), s.Bucket(), Options{From: now.Add(-720 * time.Hour), To: now, Regions: table})
		if err != nil {
			t.Fatal(err)
		}
		from, to := start.Add(2*Day), start.Add(days*Day)
		if !rep.From.Equal(from) || !rep.To.Equal(to) || rep.Hours != 31*24 {
			t.Fatalf("720 h ending %s covers [%s, %s), %d hours; want [%s, %s)", now, rep.From, rep.To, rep.Hours, from, to)
		}
		want, err := Build(hourlyOnly(t, s, from, to), Options{From: from, To: to, Regions: table})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, rep, sixDigits); diff != "" {
			t.Errorf("report (-hourly rollups only +Run):\n%s", diff)
		}
	})

	t.Run("the days come from host_1d", func(t *testing.T) {
		// A daily point no hourly one backs shows in Fetch: the days are not read from host_1h.
		day := start.Add(5 * Day)
		if err := w.Write(ctx, []*write.Point{write.NewPoint(semconv.MeasurementHostDay, map[string]string{
			semconv.TagHost: "ghost", semconv.TagRegion: "cn-hangzhou", semconv.TagScope: "wall", semconv.TagSource: "ipmi",
		}, map[string]any{semconv.FieldEnergy: 1.0, semconv.FieldInterval: 1.0}, day)}); err != nil {
			t.Fatal(err)
		}
		rows, err := Fetch(ctx, s.Client(), s.Bucket(), day.Add(-time.Hour), day.Add(Day+time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(rows, func(r HostRow) bool { return r.Host == "ghost" }); i < 0 || rows[i].Energy != 1 || rows[i].HasOps {
			t.Errorf("rows %+v lack the ghost's daily point", rows)
		}
	})
}

func TestRange(t *testing.T) {
	t.Parallel()
	at := func(day, hour, minute int) time.Time { return time.Date(2026, 9, day, hour, minute, 0, 0, time.UTC) }
	for _, tt := range []struct {
		from, to, wantFrom, wantTo time.Time
	}{
		{at(1, 10, 30), at(2, 10, 30), at(1, 10, 0), at(2, 11, 0)},   // a day: whole hours
		{at(1, 10, 30), at(28, 10, 30), at(1, 10, 0), at(28, 11, 0)}, // 27 days: whole hours
		{at(1, 10, 30), at(29, 10, 30), at(1, 0, 0), at(30, 0, 0)},   // 28 days: whole days
		{at(1, 0, 0), at(30, 0, 0), at(1, 0, 0), at(30, 0, 0)},       // whole days already
		{at(1, 23, 0), at(29, 23, 0), at(1, 0, 0), at(30, 0, 0)},
	} {
		f, to := Range(tt.from, tt.to)
		if !f.Equal(tt.wantFrom) || !to.Equal(tt.wantTo) {
			t.Errorf("Range(%s, %s) = [%s, %s), want [%s, %s)", tt.from, tt.to, f, to, tt.wantFrom, tt.wantTo)
		}
	}
	// Not in UTC: the days are UTC days.
	cst := time.FixedZone("CST", 8*3600)
	f, to := Range(time.Date(2026, 9, 1, 6, 0, 0, 0, cst), time.Date(2026, 10, 1, 6, 0, 0, 0, cst))
	if !f.Equal(at(1, 0, 0).Add(-Day)) || !to.Equal(at(30, 0, 0).Add(Day)) || f.Location() != time.UTC {
		t.Errorf("Range in CST: [%s, %s)", f, to)
	}
}
