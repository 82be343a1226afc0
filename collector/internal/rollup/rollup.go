// Package rollup computes the collector's hourly per-host rollups (measurement host_1h) from
// the raw power, cpu and work points, so that reports over months read one point per host,
// scope and source per hour instead of 360, and the daily ones (host_1d) from the hourly, so
// that they read one per day.
//
// A rollup point holds, for one host, one power scope and one source, over one hour:
//
//   - energy_j: Σ energy over the power points (sensors of the scope and source summed), J;
//   - interval_s: Σ over the distinct timestamps of the power interval, s (a sensor-summed
//     point counts once, so energy_j / interval_s is the host's average power, W);
//   - busy_s, total_s, cpu_interval_s: Σ of the whole-host cpu points' fields, s
//     (busy_s / cpu_interval_s is the average number of busy logical CPUs);
//   - ops: Σ of the work points' ops (left out when the host reported no work);
//   - samples, sum_u … sum_pp: the sums a least-squares power curve P(u) needs, over the
//     intervals that have both power and cpu at the same timestamp, with
//     P = Σ_sensors energy_j / interval_s (W) and u = busy_s / total_s (0..1);
//   - cost_usd, co2e_kg: the energy priced and turned into carbon with the host's region's
//     factors (Roller.Regions; PUE included), so that dashboards sum money and carbon in
//     InfluxQL, which cannot join the energy with a table of factors. Left out when the region
//     is not in the table.
//
// The point's tags are the host's resource tags plus scope and source, its timestamp the
// hour's start. Computing it twice (two collectors, a rerun after a backfill) writes the same
// point: the sums run in a fixed order, and an hour without raw data writes nothing, so an
// expired hour never overwrites a rollup with zeros.
//
// A daily point (Days) has the same tags and fields, each field the sum over the UTC day's
// hourly points, and the day's start (00:00 UTC) as its timestamp. Rollup computes the days
// of the hours it computes, so every writer of host_1h keeps host_1d in step.
package rollup

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Querier runs an InfluxQL statement; *influxql.Client is one.
type Querier interface {
	Query(ctx context.Context, db, q string) ([]influxql.Series, error)
}

// Writer stores points; *influx.Writer is one.
type Writer interface {
	Write(ctx context.Context, points []*write.Point) error
}

var _ Querier = (*influxql.Client)(nil)

// HostTags are the raw points' tags a rollup point keeps, besides scope and source.
var HostTags = []string{
	semconv.TagHost, semconv.TagArch, semconv.TagCPUVendor, semconv.TagCPUModel,
	semconv.TagRegion, semconv.TagZone, semconv.TagDatacenter,
}

// DefaultHostBatch is how many hosts one raw query covers: 100 hosts × 2 sensors × 360
// points is about 7 MB of JSON, which bounds the rollup's memory whatever the fleet's size.
const DefaultHostBatch = 100

// Roller computes and writes rollups.
type Roller struct {
	q   Querier
	w   Writer
	db  string // database for /query
	rp  string // retention policy, "" for the default
	log *slog.Logger
	// HostBatch is the number of hosts per raw query; 0 means DefaultHostBatch.
	HostBatch int
	// Regions prices each point's energy and turns it into carbon (cost_usd, co2e_kg); the
	// zero Table knows no region, and the points then have neither field.
	Regions regions.Table
}

// New returns a Roller that reads and writes the bucket ("db" or "db/rp" on InfluxDB 1.8, the
// bucket name with a DBRP mapping on 2.x).
func New(q Querier, w Writer, bucket string, log *slog.Logger) *Roller {
	db, rp, _ := strings.Cut(bucket, "/")
	return &Roller{q: q, w: w, db: db, rp: rp, log: log}
}

// Stats says what one Rollup or Days call did.
type Stats struct {
	Hours     int // hours computed
	Hosts     int // host-hours with power data
	Points    int // hourly rollup points written
	Days      int // days computed
	DayPoints int // daily rollup points written
}

// Rollup computes the hourly rollups of every whole hour that overlaps [from, to) (from is
// rounded down and to up to the hour) and writes them, then the daily rollups of the days
// those hours fall in (Days), so that host_1d always sums what host_1h holds. It works one
// hour and one batch of hosts at a time, so its memory does not grow with the range or the
// fleet.
func (r *Roller) Rollup(ctx context.Context, from, to time.Time) (Stats, error) {
	st, err := r.Hours(ctx, from, to)
	if err != nil {
		return st, err
	}
	start, end := wholeHours(from, to)
	days, err := r.Days(ctx, start, end)
	st.Days, st.DayPoints = days.Days, days.DayPoints
	return st, err
}

// wholeHours widens [from, to) to whole hours (UTC): from down, to up.
func wholeHours(from, to time.Time) (time.Time, time.Time) {
	f := from.UTC().Truncate(time.Hour)
	t := to.UTC().Truncate(time.Hour)
	if t.Before(to) {
		t = t.Add(time.Hour)
	}
	return f, t
}

// Hours computes and writes the hourly rollups of every whole hour that overlaps [from, to),
// without the daily ones: Rollup is Hours, then Days.
func (r *Roller) Hours(ctx context.Context, from, to time.Time) (Stats, error) {
	var st Stats
	start, end := wholeHours(from, to)
	for h := start; h.Before(end); h = h.Add(time.Hour) {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		hosts, points, err := r.hour(ctx, h)
		if err != nil {
			return st, fmt.Errorf("rollup hour %s: %w", h.Format(time.RFC3339), err)
		}
		st.Hours++
		st.Hosts += hosts
		st.Points += points
	}
	return st, nil
}

func (r *Roller) from(measurement string) string {
	if r.rp != "" {
		return influxql.QuoteIdent(r.rp) + "." + influxql.QuoteIdent(measurement)
	}
	return influxql.QuoteIdent(measurement)
}

func timeRange(start, end time.Time) string {
	return fmt.Sprintf("time >= %d AND time < %d", start.UnixNano(), end.UnixNano())
}

// hour rolls up the hour starting at h and returns the hosts seen and the points written.
func (r *Roller) hour(ctx context.Context, h time.Time) (int, int, error) {
	where := timeRange(h, h.Add(time.Hour))
	series, err := r.q.Query(ctx, r.db, fmt.Sprintf(`SELECT count(%s) FROM %s WHERE %s GROUP BY %s`,
		influxql.QuoteIdent(semconv.FieldEnergy), r.from(semconv.MeasurementPower), where,
		influxql.QuoteIdent(semconv.TagHost)))
	if err != nil {
		return 0, 0, err
	}
	var hosts []string
	for _, s := range series {
		if name := s.Tags[semconv.TagHost]; name != "" && !slices.Contains(hosts, name) {
			hosts = append(hosts, name)
		}
	}
	slices.Sort(hosts)
	batch := cmp.Or(r.HostBatch, DefaultHostBatch)
	written := 0
	for chunk := range slices.Chunk(hosts, batch) {
		points, err := r.batch(ctx, h, chunk)
		if err != nil {
			return 0, written, err
		}
		if len(points) == 0 {
			continue
		}
		if err := r.w.Write(ctx, points); err != nil {
			return 0, written, err
		}
		written += len(points)
	}
	return len(hosts), written, nil
}

// seriesKey identifies a rollup point: the host's tags, scope and source.
type seriesKey struct {
	tags          string // HostTags values joined by \x00
	scope, source string
}

// instant is the power of one scope and source at one timestamp, its sensors summed.
type instant struct {
	energy   float64 // J
	power    float64 // W, Σ sensors' energy_j / interval_s
	interval float64 // s, the longest sensor interval (they are equal for one reading)
}

type cpuSample struct{ busy, total float64 }

// Sums are one rollup point's fields.
type Sums struct {
	Energy, Interval         float64 // J, s
	Busy, Total, CPUInterval float64 // s
	Ops                      float64 // operations
	HasCPU, HasOps           bool
	N, U, UU, UUU, UUUU      float64 // samples, Σu, Σu², Σu³, Σu⁴
	P, UP, UUP, PP           float64 // ΣP, ΣuP, Σu²P, ΣP² (W, W, W, W²)
	CostUSD, CO2eKg          float64 // USD, kg CO2e of Energy, PUE included
	HasCost                  bool
	tags                     map[string]string
	scope, source            string
}

// add accumulates one interval that has both power and utilization.
func (s *Sums) add(u, p float64) {
	u2 := u * u
	s.N++
	s.U += u
	s.UU += u2
	s.UUU += u2 * u
	s.UUUU += u2 * u2
	s.P += p
	s.UP += u * p
	s.UUP += u2 * p
	s.PP += p * p
}

// Fields returns the point's fields.
func (s *Sums) Fields() map[string]any {
	f := map[string]any{
		semconv.FieldEnergy:   s.Energy,
		semconv.FieldInterval: s.Interval,
		semconv.FieldSamples:  s.N,
		semconv.FieldSumU:     s.U,
		semconv.FieldSumUU:    s.UU,
		semconv.FieldSumUUU:   s.UUU,
		semconv.FieldSumUUUU:  s.UUUU,
		semconv.FieldSumP:     s.P,
		semconv.FieldSumUP:    s.UP,
		semconv.FieldSumUUP:   s.UUP,
		semconv.FieldSumPP:    s.PP,
	}
	if s.HasCPU {
		f[semconv.FieldBusy] = s.Busy
		f[semconv.FieldTotal] = s.Total
		f[semconv.FieldCPUInterval] = s.CPUInterval
	}
	if s.HasOps {
		f[semconv.FieldOps] = s.Ops
	}
	if s.HasCost {
		f[semconv.FieldCost] = s.CostUSD
		f[semconv.FieldCO2e] = s.CO2eKg
	}
	return f
}

// Price sets the point's cost and carbon from its region's factors in t: the energy in kWh
// times the price and the grid's intensity, both times the PUE. It does nothing when t does
// not know the region.
func (s *Sums) Price(t regions.Table) {
	f, ok := t.Get(s.tags[semconv.TagRegion])
	if !ok {
		return
	}
	kwh := s.Energy / 3.6e6
	s.CostUSD, s.CO2eKg, s.HasCost = kwh*f.USDPerKWh(), kwh*f.KgCO2ePerKWh(), true
}

func hostCond(hosts []string) string {
	conds := make([]string, len(hosts))
	for i, h := range hosts {
		conds[i] = influxql.QuoteIdent(semconv.TagHost) + " = " + influxql.QuoteString(h)
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

func groupBy(tags ...string) string {
	q := make([]string, len(tags))
	for i, t := range tags {
		q[i] = influxql.QuoteIdent(t)
	}
	return strings.Join(q, ", ")
}

// batch computes the rollup points of hosts for the hour starting at h.
func (r *Roller) batch(ctx context.Context, h time.Time, hosts []string) ([]*write.Point, error) {
	where := timeRange(h, h.Add(time.Hour)) + " AND " + hostCond(hosts)

	// Power: one series per sensor, raw, so that sensors are summed per timestamp.
	tags := append(slices.Clone(HostTags), semconv.TagScope, semconv.TagSource, semconv.TagSensor)
	power, err := r.q.Query(ctx, r.db, fmt.Sprintf(`SELECT %s, %s FROM %s WHERE %s GROUP BY %s`,
		influxql.QuoteIdent(semconv.FieldEnergy), influxql.QuoteIdent(semconv.FieldInterval),
		r.from(semconv.MeasurementPower), where, groupBy(tags...)))
	if err != nil {
		return nil, err
	}
	// Whole-host cpu points only: per-CPU points (with a cpu tag) would count twice.
	cpu, err := r.q.Query(ctx, r.db, fmt.Sprintf(`SELECT %s, %s, %s FROM %s WHERE %s AND %s = '' GROUP BY %s`,
		influxql.QuoteIdent(semconv.FieldBusy), influxql.QuoteIdent(semconv.FieldTotal),
		influxql.QuoteIdent(semconv.FieldInterval), r.from(semconv.MeasurementCPU), where,
		influxql.QuoteIdent(semconv.TagCPU), groupBy(semconv.TagHost)))
	if err != nil {
		return nil, err
	}
	work, err := r.q.Query(ctx, r.db, fmt.Sprintf(`SELECT sum(%s) FROM %s WHERE %s GROUP BY %s`,
		influxql.QuoteIdent(semconv.FieldOps), r.from(semconv.MeasurementWork), where,
		groupBy(semconv.TagHost)))
	if err != nil {
		return nil, err
	}
	points := Compute(power, cpu, work)
	out := make([]*write.Point, 0, len(points))
	for _, s := range points {
		s.Price(r.Regions)
		t := s.Tags()
		for k, v := range t {
			if v == "" {
				delete(t, k)
			}
		}
		out = append(out, write.NewPoint(semconv.MeasurementHostHour, t, s.Fields(), h))
	}
	return out, nil
}

// sortSeries orders series by their tags so that sums run in the same order on every run.
func sortSeries(ss []influxql.Series) []influxql.Series {
	ss = slices.Clone(ss)
	key := func(s influxql.Series) string {
		keys := slices.Sorted(maps.Keys(s.Tags))
		var b strings.Builder
		for _, k := range keys {
			b.WriteString(k + "=" + s.Tags[k] + "\x00")
		}
		return b.String()
	}
	slices.SortStableFunc(ss, func(a, b influxql.Series) int { return strings.Compare(key(a), key(b)) })
	return ss
}

// Compute turns one hour's raw series of a batch of hosts into rollup sums, one per host,
// scope and source with power data, in a stable order. power is SELECT energy_j, interval_s
// grouped by HostTags, scope, source and sensor; cpu is SELECT busy_s, total_s, interval_s of
// whole-host points grouped by host; work is SELECT sum(ops) grouped by host.
func Compute(power, cpu, work []influxql.Series) []*Sums {
	// Host CPU: per timestamp, and the hour's sums.
	type hostCPU struct {
		at                 map[int64]cpuSample
		busy, total, intvl float64
	}
	cpus := map[string]*hostCPU{}
	for _, s := range sortSeries(cpu) {
		name := s.Tags[semconv.TagHost]
		hc := cpus[name]
		if hc == nil {
			hc = &hostCPU{at: map[int64]cpuSample{}}
			cpus[name] = hc
		}
		ti, bi, toi, ii := col(s, "time"), col(s, semconv.FieldBusy), col(s, semconv.FieldTotal), col(s, semconv.FieldInterval)
		for _, row := range s.Values {
			ts, okT := num(row, ti)
			busy, okB := num(row, bi)
			total, okTo := num(row, toi)
			if !okT || !okB || !okTo || busy < 0 || total < 0 {
				continue
			}
			intvl, _ := num(row, ii)
			hc.busy += busy
			hc.total += total
			hc.intvl += intvl
			if total > 0 {
				hc.at[int64(ts)] = cpuSample{busy: busy, total: total}
			}
		}
	}
	ops := map[string]float64{}
	for _, s := range work {
		if v, ok := num(first(s), col(s, "sum")); ok {
			ops[s.Tags[semconv.TagHost]] += v
		}
	}

	// Power: per (host tags, scope, source), per timestamp, sensors summed.
	type acc struct {
		tags          map[string]string
		scope, source string
		at            map[int64]*instant
	}
	accs := map[seriesKey]*acc{}
	var order []seriesKey
	for _, s := range sortSeries(power) {
		vals := make([]string, len(HostTags))
		for i, t := range HostTags {
			vals[i] = s.Tags[t]
		}
		k := seriesKey{tags: strings.Join(vals, "\x00"), scope: s.Tags[semconv.TagScope], source: s.Tags[semconv.TagSource]}
		a := accs[k]
		if a == nil {
			tags := make(map[string]string, len(HostTags))
			for i, t := range HostTags {
				tags[t] = vals[i]
			}
			a = &acc{tags: tags, scope: k.scope, source: k.source, at: map[int64]*instant{}}
			accs[k] = a
			order = append(order, k)
		}
		ti, ei, ii := col(s, "time"), col(s, semconv.FieldEnergy), col(s, semconv.FieldInterval)
		for _, row := range s.Values {
			ts, okT := num(row, ti)
			e, okE := num(row, ei)
			iv, okI := num(row, ii)
			if !okT || !okE || !okI || iv <= 0 || e < 0 {
				continue
			}
			in := a.at[int64(ts)]
			if in == nil {
				in = &instant{}
				a.at[int64(ts)] = in
			}
			in.energy += e
			in.power += e / iv
			in.interval = max(in.interval, iv)
		}
	}
	slices.SortFunc(order, func(a, b seriesKey) int {
		return cmp.Or(strings.Compare(a.tags, b.tags), strings.Compare(a.scope, b.scope), strings.Compare(a.source, b.source))
	})

	out := make([]*Sums, 0, len(order))
	for _, k := range order {
		a := accs[k]
		if len(a.at) == 0 {
			continue
		}
		s := &Sums{tags: a.tags, scope: a.scope, source: a.source}
		host := a.tags[semconv.TagHost]
		hc := cpus[host]
		if hc != nil {
			s.HasCPU = true
			s.Busy, s.Total, s.CPUInterval = hc.busy, hc.total, hc.intvl
		}
		if v, ok := ops[host]; ok {
			s.HasOps, s.Ops = true, v
		}
		for _, ts := range slices.Sorted(maps.Keys(a.at)) {
			in := a.at[ts]
			s.Energy += in.energy
			s.Interval += in.interval
			if hc == nil {
				continue
			}
			if c, ok := hc.at[ts]; ok {
				u := min(max(c.busy/c.total, 0), 1)
				s.add(u, in.power)
			}
		}
		out = append(out, s)
	}
	return out
}

// Tags returns the point's tags: the host's, scope and source.
func (s *Sums) Tags() map[string]string {
	t := maps.Clone(s.tags)
	t[semconv.TagScope] = s.scope
	t[semconv.TagSource] = s.source
	return t
}

func col(s influxql.Series, name string) int { return slices.Index(s.Columns, name) }

func first(s influxql.Series) []any {
	if len(s.Values) == 0 {
		return nil
	}
	return s.Values[0]
}

func num(row []any, i int) (float64, bool) {
	if i < 0 || i >= len(row) {
		return 0, false
	}
	v, ok := row[i].(float64)
	return v, ok
}
