package rollup

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// store is a real influxd with a writer and a Roller on it.
type store struct {
	srv    *influxtest.Server
	w      *influx.Writer
	roller *Roller
}

func newStore(t *testing.T) *store {
	t.Helper()
	s := influxtest.Start(t)
	w, err := influx.New(influx.Options{URL: s.URL, Bucket: s.Bucket()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return &store{srv: s, w: w, roller: New(s.Client(), w, s.Bucket(), slog.New(slog.DiscardHandler))}
}

func (s *store) write(t *testing.T, points []*write.Point) {
	t.Helper()
	if err := s.w.Write(context.Background(), points); err != nil {
		t.Fatal(err)
	}
}

// rollups returns the points of measurement in [from, to) by series key (the tags, empty
// ones left out, sorted: k=v,k=v) and time (Unix ms): the fields that are not null.
func (s *store) rollups(t *testing.T, measurement string, from, to time.Time) map[string]map[int64]map[string]float64 {
	t.Helper()
	out := map[string]map[int64]map[string]float64{}
	q := "SELECT * FROM " + influxql.QuoteIdent(measurement) + " WHERE " + timeRange(from, to) + " GROUP BY *"
	for _, ser := range s.srv.Query(t, q) {
		var tags []string
		for _, k := range slices.Sorted(maps.Keys(ser.Tags)) {
			if ser.Tags[k] != "" {
				tags = append(tags, k+"="+ser.Tags[k])
			}
		}
		key := strings.Join(tags, ",")
		if out[key] == nil {
			out[key] = map[int64]map[string]float64{}
		}
		for _, row := range ser.Values {
			fields := map[string]float64{}
			for i, c := range ser.Columns {
				if v, ok := row[i].(float64); ok && c != "time" {
					fields[c] = v
				}
			}
			out[key][int64(row[0].(float64))] = fields
		}
	}
	return out
}

// hourly is one host_1h point as the test writes it.
type hourly struct {
	tags   map[string]string
	at     time.Time
	fields map[string]float64
}

func (h hourly) key() string {
	var tags []string
	for _, k := range slices.Sorted(maps.Keys(h.tags)) {
		tags = append(tags, k+"="+h.tags[k])
	}
	return strings.Join(tags, ",")
}

// TestDays: the daily rollup of a day is, per host, scope and source, the sum of each field
// of the day's hourly rollups: exactly (the values are binary fractions, whose sums are exact
// in any order), with the hourly points' tags, at 00:00 UTC; a field no hour has is left out;
// a day without hourly points writes nothing; and computing the days again writes the same
// points, no more.
func TestDays(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	d1 := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	d2 := d1.Add(Day)
	host := func(name, scope, source string) map[string]string {
		return map[string]string{
			semconv.TagHost: name, semconv.TagArch: "arm64", semconv.TagCPUVendor: "ARM",
			semconv.TagCPUModel: "Ampere Altra Q80-30", semconv.TagRegion: "cn-hangzhou",
			semconv.TagZone: "cn-hangzhou-h", semconv.TagDatacenter: "hz-dc1",
			semconv.TagScope: scope, semconv.TagSource: source,
		}
	}
	var hours []hourly
	add := func(tags map[string]string, at time.Time, k float64, cpu, ops, cost bool) {
		f := map[string]float64{
			semconv.FieldEnergy: 360000 + 1000*k + 0.25, semconv.FieldInterval: 3600,
			semconv.FieldSamples: 360, semconv.FieldSumU: 100 + k/8, semconv.FieldSumUU: 30 + k/16,
			semconv.FieldSumUUU: 10 + k/32, semconv.FieldSumUUUU: 4 + k/64, semconv.FieldSumP: 36000 + k,
			semconv.FieldSumUP: 10000 + k/2, semconv.FieldSumUUP: 3000 + k/4, semconv.FieldSumPP: 3.6e6 + 128*k,
		}
		if cpu {
			f[semconv.FieldBusy], f[semconv.FieldTotal], f[semconv.FieldCPUInterval] = 90000+k*16, 288000, 3600
		}
		if ops {
			f[semconv.FieldOps] = 1e8 + k*1024
		}
		if cost {
			f[semconv.FieldCost], f[semconv.FieldCO2e] = 0.125+k/1024, 0.5+k/512
		}
		hours = append(hours, hourly{tags: tags, at: at, fields: f})
	}
	wall := host("hz-1", "wall", "ipmi")
	redfish := host("hz-1", "wall", "redfish") // a second source of the same scope
	pkg := host("hz-1", "cpu-package", "rapl") // a second scope
	bare := host("hz-2", "wall", "ipmi")       // no CPU time, no work, no cost
	delete(bare, semconv.TagDatacenter)        // and no datacenter: the tag is left out
	for h := range 24 {
		at, k := d1.Add(time.Duration(h)*time.Hour), float64(h)
		if h != 5 { // a missing hour
			add(wall, at, k, true, h%3 == 0, true) // work in some hours only
		}
		add(redfish, at, k+100, true, false, true)
		add(pkg, at, k+200, true, false, true)
		add(bare, at, k+300, false, false, false)
	}
	for h := range 3 { // the next day, partly
		add(wall, d2.Add(time.Duration(h)*time.Hour), float64(h+400), true, true, true)
	}
	var points []*write.Point
	for _, h := range hours {
		fields := map[string]any{}
		for k, v := range h.fields {
			fields[k] = v
		}
		points = append(points, write.NewPoint(semconv.MeasurementHostHour, h.tags, fields, h.at))
	}
	s.write(t, points)

	want := map[string]map[int64]map[string]float64{}
	for _, h := range hours {
		day := h.at.Truncate(Day).UnixMilli()
		if want[h.key()] == nil {
			want[h.key()] = map[int64]map[string]float64{}
		}
		if want[h.key()][day] == nil {
			want[h.key()][day] = map[string]float64{}
		}
		for f, v := range h.fields {
			want[h.key()][day][f] += v
		}
	}

	// From the day before (no hourly points) to the day after.
	from, to := d1.Add(-Day), d2.Add(Day+time.Hour)
	st, err := s.roller.Days(context.Background(), from.Add(time.Hour), to)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Days: 4, DayPoints: 5}); st != want {
		t.Errorf("stats %+v, want %+v (4 days, 4 series on the first day and 1 on the second)", st, want)
	}
	got := s.rollups(t, semconv.MeasurementHostDay, from, to.Add(Day))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("host_1d against the sums of host_1h (-want +got):\n%s", diff)
	}
	if f := got[hourly{tags: wall}.key()][d1.UnixMilli()]; f[semconv.FieldInterval] != 23*3600 || f[semconv.FieldOps] != 8*1e8+(0+3+6+9+12+15+18+21)*1024 {
		t.Errorf("hz-1 wall on %s: interval %v s (23 hours), ops %v (8 hours)", d1.Format(time.DateOnly), f[semconv.FieldInterval], f[semconv.FieldOps])
	}

	dump := func() string {
		b, err := json.Marshal(s.srv.Query(t, `SELECT * FROM host_1d GROUP BY *`))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	first := dump()
	again, err := s.roller.Days(context.Background(), from, to)
	if err != nil || again != st {
		t.Errorf("again: %+v, %v; want %+v", again, err, st)
	}
	if second := dump(); first != second {
		t.Errorf("recomputing the days changed host_1d:\n%s\n%s", first, second)
	}
	if st, err := s.roller.Days(context.Background(), d1.Add(-30*Day), d1.Add(-20*Day)); err != nil || st.DayPoints != 0 || st.Days != 10 {
		t.Errorf("days without hourly rollups: %+v, %v; want 10 days and no points", st, err)
	}
	if got := s.srv.Query(t, `SELECT count(energy_j) FROM host_1d`); len(got) != 1 || got[0].Values[0][1] != 5.0 {
		t.Errorf("host_1d holds %v points, want 5", got)
	}
}

// rawPoints are raw power and cpu points of host every 10 minutes in [from, to), the power
// following the utilization.
func rawPoints(host string, from, to time.Time) []*write.Point {
	tags := map[string]string{
		semconv.TagHost: host, semconv.TagArch: "amd64", semconv.TagCPUModel: "AMD EPYC 9754",
		semconv.TagRegion: "cn-hangzhou", semconv.TagZone: "cn-hangzhou-i",
	}
	ptags := maps.Clone(tags)
	ptags[semconv.TagScope], ptags[semconv.TagSource], ptags[semconv.TagSensor] = "wall", "ipmi", "psu"
	var points []*write.Point
	for ts := from; ts.Before(to); ts = ts.Add(10 * time.Minute) {
		u := 0.4 + 0.3*math.Sin(float64(ts.Unix())/7200)
		p := 120 + 500*u
		points = append(points,
			write.NewPoint(semconv.MeasurementPower, ptags, map[string]any{
				semconv.FieldEnergy: p * 600, semconv.FieldInterval: 600.0,
			}, ts),
			write.NewPoint(semconv.MeasurementCPU, tags, map[string]any{
				semconv.FieldBusy: u * 256 * 600, semconv.FieldTotal: 256 * 600.0, semconv.FieldInterval: 600.0,
			}, ts))
	}
	return points
}

// TestRunnerDays: a run shortly after midnight recomputes the last three hours, across
// midnight, and then both days they fall in: yesterday's daily rollup holds every hourly
// rollup of yesterday, those computed by earlier runs included, and today's the hour so far.
func TestRunnerDays(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	today := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	now := today.Add(30 * time.Minute)
	yesterday := today.Add(-Day)
	// Earlier runs rolled up yesterday morning; the raw points of the evening and of today
	// are there to be rolled up.
	s.write(t, rawPoints("x86-1", yesterday.Add(8*time.Hour), yesterday.Add(10*time.Hour)))
	if _, err := s.roller.Hours(context.Background(), yesterday.Add(8*time.Hour), yesterday.Add(10*time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.write(t, rawPoints("x86-1", yesterday.Add(20*time.Hour), now))

	done := make(chan Stats, 1)
	f := func(ctx context.Context, from, to time.Time) (Stats, error) {
		st, err := s.roller.Rollup(ctx, from, to)
		done <- st
		return st, err
	}
	r := NewRunner(f, time.Hour, 0, slog.New(slog.DiscardHandler))
	r.now = func() time.Time { return now }
	r.Start(t.Context())
	var st Stats
	select {
	case st = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the runner did not run")
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 21:30 to 00:30: the hours 21, 22, 23 and 0, and the two days.
	if want := (Stats{Hours: 4, Hosts: 4, Points: 4, Days: 2, DayPoints: 2}); st != want {
		t.Errorf("run: %+v, want %+v", st, want)
	}
	hours := s.rollups(t, semconv.MeasurementHostHour, yesterday, today.Add(Day))
	days := s.rollups(t, semconv.MeasurementHostDay, yesterday, today.Add(Day))
	if len(hours) != 1 || len(days) != 1 {
		t.Fatalf("%d hourly and %d daily series, want 1 each", len(hours), len(days))
	}
	for key, byTime := range hours {
		want := map[int64]map[string]float64{}
		for at, fields := range byTime {
			day := time.UnixMilli(at).UTC().Truncate(Day).UnixMilli()
			if want[day] == nil {
				want[day] = map[string]float64{}
			}
			for f, v := range fields {
				want[day][f] += v
			}
		}
		// Yesterday: hours 8, 9 (earlier runs) and 21, 22, 23 (this one); today: hour 0.
		if n := len(byTime); n != 6 {
			t.Errorf("%d hourly rollups, want 6", n)
		}
		if got := days[key]; !near(want, got) {
			t.Errorf("%s: host_1d %v, want the sums of host_1h %v", key, got, want)
		}
		if got := days[key][yesterday.UnixMilli()][semconv.FieldInterval]; got != 5*3600 {
			t.Errorf("yesterday's interval_s %v, want 5 hours", got)
		}
	}
}

// near compares two sets of rollups, fields within a relative 1e-12: InfluxDB adds the
// hours up in its own order.
func near(want, got map[int64]map[string]float64) bool {
	return cmp.Equal(want, got, cmp.Comparer(func(a, b float64) bool {
		return math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
	}))
}
