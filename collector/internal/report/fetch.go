package report

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Day is the length of a daily rollup (host_1d): a UTC day.
const Day = 24 * time.Hour

// DaysPerQuery is how many days of daily rollups one query reads at most: a month is read in
// two pieces, in parallel (21 days of 2,000 hosts are 42,000 rows, about 11 MB of JSON).
const DaysPerQuery = 21

// QueriesInParallel bounds the queries one Fetch has InfluxDB run at a time.
const QueriesInParallel = 4

// fetchFields are the rollup fields a report reads, all sums.
var fetchFields = []string{
	semconv.FieldEnergy, semconv.FieldInterval, semconv.FieldBusy, semconv.FieldTotal,
	semconv.FieldCPUInterval, semconv.FieldOps, semconv.FieldSamples,
	semconv.FieldSumU, semconv.FieldSumUU, semconv.FieldSumUUU, semconv.FieldSumUUUU,
	semconv.FieldSumP, semconv.FieldSumUP, semconv.FieldSumUUP, semconv.FieldSumPP,
}

// fetchTags are the tags a row of Fetch is keyed by.
var fetchTags = []string{
	semconv.TagHost, semconv.TagRegion, semconv.TagZone, semconv.TagArch,
	semconv.TagCPUModel, semconv.TagScope, semconv.TagSource,
}

// Fetch reads the sums of the rollups in [from, to) per host, scope and source: the whole UTC
// days of the range from the daily rollups (host_1d), the hours before the first and after
// the last whole day from the hourly ones (host_1h), added up per host, scope and source.
// Every field is a sum, so the rows equal those of the hourly rollups over [from, to) alone,
// to rounding. A day without any daily point (a range from before the daily rollups existed)
// is read from the hourly rollups. bucket is "db" or "db/rp" (InfluxDB 1.8) or a 2.x bucket
// with a DBRP mapping.
//
// The hours are summed by InfluxDB (one row per host comes back); the days are read as they
// are, in pieces of DaysPerQuery days, QueriesInParallel at a time, and added up here:
// InfluxDB 1.8 sums fields of thousands of series at a cost per series, field and shard
// (summing a month of 2,000 hosts' daily points takes it 5 s on two cores) while it returns
// them at a cost per value (1 s). Run widens long ranges to whole days (Range), so that they
// have no hourly edges.
func Fetch(ctx context.Context, q Querier, bucket string, from, to time.Time) ([]HostRow, error) {
	f := fetcher{q: q, bucket: bucket}
	f.db, f.rp, _ = strings.Cut(bucket, "/")
	d0, d1 := innerDays(from, to)
	if !d0.Before(d1) {
		rows, err := f.sums(ctx, semconv.MeasurementHostHour, from, to)
		slices.SortFunc(rows, func(a, b HostRow) int { return a.key().compare(b.key()) })
		return rows, err
	}

	// The edges' hourly sums and the days' points, in parallel.
	type part struct {
		from, to time.Time
		hourly   bool
		rows     []HostRow
		days     map[int64]bool // days with daily points, Unix ms of their start
	}
	var parts []*part
	if from.Before(d0) {
		parts = append(parts, &part{from: from, to: d0, hourly: true})
	}
	for _, p := range pieces(d0, d1) {
		parts = append(parts, &part{from: p[0], to: p[1]})
	}
	if d1.Before(to) {
		parts = append(parts, &part{from: d1, to: to, hourly: true})
	}
	err := parallel(ctx, len(parts), func(ctx context.Context, i int) error {
		p := parts[i]
		var err error
		if p.hourly {
			p.rows, err = f.sums(ctx, semconv.MeasurementHostHour, p.from, p.to)
		} else {
			p.rows, p.days, err = f.days(ctx, p.from, p.to)
		}
		return err
	})
	if err != nil {
		return nil, err
	}

	// Days without daily points: from the hourly rollups, one query per run of such days.
	covered := map[int64]bool{}
	for _, p := range parts {
		for d := range p.days {
			covered[d] = true
		}
	}
	var missing []*part
	for d := d0; d.Before(d1); d = d.Add(Day) {
		switch {
		case covered[d.UnixMilli()]:
		case len(missing) > 0 && missing[len(missing)-1].to.Equal(d):
			missing[len(missing)-1].to = d.Add(Day)
		default:
			missing = append(missing, &part{from: d, to: d.Add(Day), hourly: true})
		}
	}
	err = parallel(ctx, len(missing), func(ctx context.Context, i int) error {
		var err error
		missing[i].rows, err = f.sums(ctx, semconv.MeasurementHostHour, missing[i].from, missing[i].to)
		return err
	})
	if err != nil {
		return nil, err
	}

	// Add up in time order, so that the same rollups always give the same bits.
	parts = append(parts, missing...)
	slices.SortFunc(parts, func(a, b *part) int { return a.from.Compare(b.from) })
	sums := map[rowKey]*HostRow{}
	for _, p := range parts {
		for _, r := range p.rows {
			if s := sums[r.key()]; s != nil {
				s.add(r)
			} else {
				sums[r.key()] = &r
			}
		}
	}
	rows := make([]HostRow, 0, len(sums))
	for _, r := range sums {
		rows = append(rows, *r)
	}
	slices.SortFunc(rows, func(a, b HostRow) int { return a.key().compare(b.key()) })
	return rows, nil
}

// innerDays returns the whole UTC days in [from, to): [d0, d1), empty when d1 is not after d0.
func innerDays(from, to time.Time) (time.Time, time.Time) {
	d0 := from.UTC().Truncate(Day)
	if d0.Before(from) {
		d0 = d0.Add(Day)
	}
	return d0, to.UTC().Truncate(Day)
}

// week is InfluxDB's shard group duration for a retention policy longer than six months or
// infinite: its shards start on Mondays, 00:00 UTC (Go's zero time is a Monday).
const week = 7 * Day

// pieces splits the whole days [d0, d1) into ranges of at most DaysPerQuery days that meet at
// Mondays where they can, so that no weekly shard is read by two queries: InfluxDB pays for
// each series of each shard a query reads.
func pieces(d0, d1 time.Time) [][2]time.Time {
	var out [][2]time.Time
	for start := d0; start.Before(d1); {
		end := d1
		if end.Sub(start) > DaysPerQuery*Day {
			end = start.Add(DaysPerQuery * Day)
			if monday := end.Truncate(week); monday.After(start) {
				end = monday
			}
		}
		out = append(out, [2]time.Time{start, end})
		start = end
	}
	return out
}

// parallel runs f(ctx, 0) … f(ctx, n−1), QueriesInParallel at a time, and returns the first
// error once every call has returned; the first error cancels the others' context.
func parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, QueriesInParallel)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
			cancel()
		}
	}
	for i := range n {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				fail(ctx.Err())
				return
			}
			if err := f(ctx, i); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	return first
}

// fetcher reads rollups from one bucket.
type fetcher struct {
	q      Querier
	bucket string
	db, rp string
}

func (f fetcher) from(measurement string) string {
	if f.rp != "" {
		return influxql.QuoteIdent(f.rp) + "." + influxql.QuoteIdent(measurement)
	}
	return influxql.QuoteIdent(measurement)
}

func groupByTags() string {
	group := make([]string, len(fetchTags))
	for i, t := range fetchTags {
		group[i] = influxql.QuoteIdent(t)
	}
	return strings.Join(group, ", ")
}

// sums sums the rollups of measurement in [from, to) per host, scope and source in InfluxDB:
// one row per series of the result.
func (f fetcher) sums(ctx context.Context, measurement string, from, to time.Time) ([]HostRow, error) {
	sel := make([]string, len(fetchFields))
	for i, name := range fetchFields {
		sel[i] = fmt.Sprintf("sum(%s) AS %s", influxql.QuoteIdent(name), influxql.QuoteIdent(name))
	}
	stmt := fmt.Sprintf("SELECT %s FROM %s WHERE time >= %d AND time < %d GROUP BY %s",
		strings.Join(sel, ", "), f.from(measurement), from.UnixNano(), to.UnixNano(), groupByTags())
	series, err := f.q.Query(ctx, f.db, stmt)
	if err != nil {
		return nil, fmt.Errorf("query %s in %s: %w", measurement, f.bucket, err)
	}
	rows := make([]HostRow, 0, len(series))
	for _, s := range series {
		if len(s.Values) == 0 {
			continue
		}
		rows = append(rows, rowOf(s, s.Values[0], fieldColumns(s)))
	}
	return rows, nil
}

// days reads the daily rollups in [from, to), whole days, and adds them up per host, scope
// and source; it returns the rows and the days that have points (Unix ms of their start).
func (f fetcher) days(ctx context.Context, from, to time.Time) ([]HostRow, map[int64]bool, error) {
	sel := make([]string, len(fetchFields))
	for i, name := range fetchFields {
		sel[i] = influxql.QuoteIdent(name)
	}
	stmt := fmt.Sprintf("SELECT %s FROM %s WHERE time >= %d AND time < %d GROUP BY %s",
		strings.Join(sel, ", "), f.from(semconv.MeasurementHostDay), from.UnixNano(), to.UnixNano(), groupByTags())
	series, err := f.q.Query(ctx, f.db, stmt)
	if err != nil {
		return nil, nil, fmt.Errorf("query %s in %s: %w", semconv.MeasurementHostDay, f.bucket, err)
	}
	days := map[int64]bool{}
	sums := map[rowKey]*HostRow{}
	var order []rowKey
	for _, s := range series {
		if len(s.Values) == 0 {
			continue
		}
		cols := fieldColumns(s)
		ti := slices.Index(s.Columns, "time")
		sum := rowTags(s)
		for _, v := range s.Values {
			sum.addValues(v, cols)
			if ti >= 0 && ti < len(v) {
				if t, ok := v[ti].(float64); ok {
					days[int64(t)] = true
				}
			}
		}
		if old := sums[sum.key()]; old != nil {
			old.add(sum)
			continue
		}
		sums[sum.key()] = &sum
		order = append(order, sum.key())
	}
	rows := make([]HostRow, len(order))
	for i, k := range order {
		rows[i] = *sums[k]
	}
	return rows, days, nil
}

// fieldColumns maps fetchFields to their index in s's columns, −1 when absent.
func fieldColumns(s influxql.Series) []int {
	idx := make([]int, len(fetchFields))
	for i, name := range fetchFields {
		idx[i] = slices.Index(s.Columns, name)
	}
	return idx
}

// rowOf makes a HostRow of one row of values of series s (cols from fieldColumns(s)).
func rowOf(s influxql.Series, values []any, cols []int) HostRow {
	r := rowTags(s)
	r.addValues(values, cols)
	return r
}

// rowTags is a HostRow with s's tags and no sums.
func rowTags(s influxql.Series) HostRow {
	return HostRow{
		Host: s.Tags[semconv.TagHost], Region: s.Tags[semconv.TagRegion], Zone: s.Tags[semconv.TagZone],
		Arch: s.Tags[semconv.TagArch], CPUModel: s.Tags[semconv.TagCPUModel],
		Scope: s.Tags[semconv.TagScope], Source: s.Tags[semconv.TagSource],
	}
}

// addValues adds a row of values (cols from fieldColumns) to r's sums: a null or missing field
// adds nothing, and ops makes HasOps.
func (r *HostRow) addValues(values []any, cols []int) {
	c := &r.Curve
	for i, sum := range [...]*float64{
		&r.Energy, &r.Interval, &r.Busy, &r.Total, &r.CPUInterval, &r.Ops,
		&c.N, &c.U, &c.UU, &c.UUU, &c.UUUU, &c.P, &c.UP, &c.UUP, &c.PP,
	} {
		if cols[i] < 0 || cols[i] >= len(values) {
			continue
		}
		if v, ok := values[cols[i]].(float64); ok {
			*sum += v
			r.HasOps = r.HasOps || i == 5
		}
	}
}

// rowKey identifies a row of Fetch: a host's tags, scope and source.
type rowKey struct{ host, region, zone, arch, model, scope, source string }

func (r HostRow) key() rowKey {
	return rowKey{r.Host, r.Region, r.Zone, r.Arch, r.CPUModel, r.Scope, r.Source}
}

func (k rowKey) compare(o rowKey) int {
	return cmp.Or(strings.Compare(k.host, o.host), strings.Compare(k.region, o.region),
		strings.Compare(k.zone, o.zone), strings.Compare(k.arch, o.arch), strings.Compare(k.model, o.model),
		strings.Compare(k.scope, o.scope), strings.Compare(k.source, o.source))
}

// add adds o's sums to r's (o has r's key).
func (r *HostRow) add(o HostRow) {
	r.Energy += o.Energy
	r.Interval += o.Interval
	r.Busy += o.Busy
	r.Total += o.Total
	r.CPUInterval += o.CPUInterval
	r.Ops += o.Ops
	r.HasOps = r.HasOps || o.HasOps
	c, d := &r.Curve, o.Curve
	c.N += d.N
	c.U += d.U
	c.UU += d.UU
	c.UUU += d.UUU
	c.UUUU += d.UUUU
	c.P += d.P
	c.UP += d.UP
	c.UUP += d.UUP
	c.PP += d.PP
}
