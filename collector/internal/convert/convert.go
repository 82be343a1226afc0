// Package convert turns OTLP metrics (pmetric.Metrics) into InfluxDB points, following the
// schema in internal/semconv and docs/schema.md.
//
// fleetwatt's own metrics get a purpose-built layout: hw.energy and hw.power become the power
// measurement (one point per sensor per interval), system.cpu.time and system.cpu.utilization
// the cpu measurement (one point per host or logical CPU per interval, one field per mode), and
// every ResourceMetrics that carried them one host point holding the host's identity. Every
// other metric, from any OpenTelemetry SDK or Collector, is stored too, under its own name,
// with all its attributes as tags.
//
// Conversion is stateless: a delta point carries its own interval (start → time), so the
// collector needs nothing from earlier requests and several collectors can share a region.
//
// Numbers: every numeric field of the generic mapping and of the power and cpu measurements is
// written as a float64, whether the sender used an int or a double data point (counts too).
// InfluxDB fixes a field's type by its first write to a shard and rejects a later write of
// another type with a 400 "partial write: field type conflict"; two senders (or one SDK
// switching instrument kinds) must never be able to make each other's points unwritable. Only
// the host measurement's counts (sockets, cores, logical_cpus) are integers: fleetwatt alone
// writes them and always as integers.
package convert

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Field keys of the generic mapping, for metrics outside the fleetwatt schema.
const (
	FieldValue = "value" // Gauge, cumulative Sum
	FieldDelta = "delta" // delta Sum: the increment over the point's interval
	FieldCount = "count" // Histogram, ExponentialHistogram, Summary
	FieldSum   = "sum"
	FieldMin   = "min"
	FieldMax   = "max"
	// FieldBucketPrefix starts a Histogram bucket's field, "le_0.5": the cumulative count of
	// observations ≤ the bound, as Prometheus keeps it; "le_+Inf" equals count.
	FieldBucketPrefix = "le_"
	// FieldQuantilePrefix starts a Summary quantile's field, "q0.99".
	FieldQuantilePrefix = "q"
)

// Reasons a data point is rejected, the keys of Stats.Reasons.
const (
	ReasonNoTime    = "time_unix_nano is 0"
	ReasonTimeRange = "time_unix_nano is out of range"
	ReasonFuture    = "time in the future"
	ReasonTooOld    = "time too old"
	ReasonNotFinite = "value is NaN or infinite"
	ReasonNoValue   = "data point has no value"
	ReasonNoName    = "metric has no name"
	// ReasonNoType names a metric of no type this collector knows (empty, or a newer one):
	// it has no data points to reject, so it is counted in Stats.Ignored, not in Rejected.
	ReasonNoType   = "metric has no data of a known type"
	ReasonNegative = "negative energy or power"
	ReasonMaxPower = "power above the per-sensor limit"
	// ReasonCardinality rejects the data points of a new series that Options.Admit refused.
	ReasonCardinality = "cardinality limit"
)

// Defaults of Options.
const (
	// DefaultMaxFuture tolerates a sender's clock running ahead of the collector's; a point
	// further ahead would sit in InfluxDB as a "latest" value that no later point overwrites.
	DefaultMaxFuture = 10 * time.Minute
	// DefaultMaxAge covers an agent's 24 h spool and a collector's write-ahead log with a wide
	// margin; older points are a sender's broken clock or a backfill, which belongs in a
	// bulk import, not in the live path (and usually fall outside the retention policy).
	DefaultMaxAge = 90 * 24 * time.Hour
	// DefaultMaxPowerW bounds one sensor's power (W): 1 MW is far above any server, rack PDU
	// or GPU tray, so a larger value is a unit error or garbage, and would swamp every sum.
	DefaultMaxPowerW = 1e6
)

// Options bound what Convert accepts. The zero value means the defaults; a negative
// duration or power turns that check off.
type Options struct {
	// MaxFuture is how far past Now a data point's timestamp may be; 0 means DefaultMaxFuture.
	MaxFuture time.Duration
	// MaxAge is how far before Now a data point's timestamp may be; 0 means DefaultMaxAge.
	MaxAge time.Duration
	// MaxPowerW is the largest power of one sensor (W), as hw.power or as a delta hw.energy
	// over its interval (of 1 s or more); 0 means DefaultMaxPowerW. Negative energy (J) or
	// power is always rejected.
	MaxPowerW float64
	// Now is the collector's clock; nil means time.Now.
	Now func() time.Time
	// Admit, when set, is asked about every point before it is returned: false leaves the
	// point out and rejects its data points with ReasonCardinality. The pipeline's series
	// limit (package limit) plugs in here, after every other check, so that a point rejected
	// for its value or time never takes a place in a sender's series budget.
	Admit func(p *write.Point) bool
}

// Stats says what one conversion did. A rejected data point is counted, never logged: the
// receiver reports the count and FirstError to the sender as an OTLP partial success.
type Stats struct {
	DataPoints int64            // OTLP data points read
	Rejected   int64            // data points left out, each for one reason
	Reasons    map[string]int64 // Rejected by reason (Reason* constants); nil when none
	FirstError string           // the first rejection, with its metric's name
	Ignored    int64            // metrics of no known type (ReasonNoType), left out
}

func (s *Stats) reject(metric, reason string) { s.rejectN(metric, reason, 1, nil) }

// rejectN rejects n data points of metric for reason; detail, when not nil, says more in
// FirstError (the value or time at fault). It is called for the first rejection only, so
// that a request full of bad data points formats one message, not one per data point.
func (s *Stats) rejectN(metric, reason string, n int64, detail func() string) {
	if n <= 0 {
		return
	}
	s.Rejected += n
	if s.Reasons == nil {
		s.Reasons = make(map[string]int64)
	}
	s.Reasons[reason] += n
	if s.FirstError == "" {
		s.FirstError = fmt.Sprintf("metric %q: %s", metric, reason)
		if detail != nil {
			s.FirstError += " (" + detail() + ")"
		}
	}
}

// Convert is Options.Convert with the default Options.
func Convert(md pmetric.Metrics) ([]*write.Point, Stats) {
	return Options{}.Convert(md)
}

// Convert returns the InfluxDB points for md, with tags sorted by key and fields by key, in
// the order their first data point appeared, leaving out the data points out of opts' bounds.
// Data points that share a measurement, tag set and timestamp become one point (hw.energy and
// hw.power of a sensor; the modes of system.cpu.time).
func (opts Options) Convert(md pmetric.Metrics) ([]*write.Point, Stats) {
	rms := md.ResourceMetrics()
	// A fleetwatt agent's export makes 4 points per resource.
	c := newConverter(newLimits(opts), 4*rms.Len())
	for i := range rms.Len() {
		c.resourceMetrics(rms.At(i))
	}
	points := make([]*write.Point, 0, len(c.builders))
	for _, b := range c.builders {
		p := b.point()
		if p == nil {
			continue
		}
		if opts.Admit != nil && !opts.Admit(p) {
			c.stats.rejectN(b.metric, ReasonCardinality, b.dataPoints, func() string {
				return "new series of " + b.measurement + ": the sender has reached its limit of distinct series"
			})
			continue
		}
		points = append(points, p)
	}
	return points, c.stats
}

// limits are Options resolved for one conversion.
type limits struct {
	now            time.Time
	earliest       pcommon.Timestamp // 0: no lower bound
	latest         pcommon.Timestamp // maxTime: no upper bound
	maxFuture      time.Duration
	maxAge         time.Duration
	maxPower       float64 // W; +Inf: no bound
	checkFuture    bool
	checkAge       bool
	checkPowerHigh bool
}

func newLimits(o Options) limits {
	clock := time.Now
	if o.Now != nil {
		clock = o.Now
	}
	l := limits{now: clock(), latest: maxTime, maxPower: math.Inf(1)}
	l.maxFuture = cmp.Or(o.MaxFuture, DefaultMaxFuture)
	now := l.now.UnixNano()
	if l.maxFuture > 0 {
		l.checkFuture = true
		if now > 0 && int64(l.maxFuture) < maxTime-now {
			l.latest = pcommon.Timestamp(now + int64(l.maxFuture))
		}
	}
	l.maxAge = cmp.Or(o.MaxAge, DefaultMaxAge)
	if l.maxAge > 0 {
		l.checkAge = true
		if int64(l.maxAge) < now {
			l.earliest = pcommon.Timestamp(now - int64(l.maxAge))
		}
	}
	if p := cmp.Or(o.MaxPowerW, DefaultMaxPowerW); p > 0 {
		l.maxPower, l.checkPowerHigh = p, true
	}
	return l
}

type tag struct{ k, v string }

type field struct {
	k string
	v any
}

// builder collects the fields of one InfluxDB point.
type builder struct {
	measurement string
	metric      string // the OTLP metric of its first data point, for error messages
	dataPoints  int64  // OTLP data points merged into it
	tags        []tag
	ts          pcommon.Timestamp
	fields      []field
	// powerSent is set once hw.power gave power_w: the value as sent wins over the one derived
	// from hw.energy.
	powerSent bool
	cpu       *cpuSums
	next      *builder // the next builder whose key has the same hash (converter.index)
}

// cpuSums adds up system.cpu.time modes of one point.
type cpuSums struct {
	delta, cumulative      bool
	busy, total, busyTotal float64
	interval               float64
	hasInterval            bool
}

// set sets field k to v, keeping the fields sorted by key.
func (b *builder) set(k string, v any) {
	i, found := slices.BinarySearchFunc(b.fields, k, func(f field, k string) int { return strings.Compare(f.k, k) })
	if found {
		b.fields[i].v = v
		return
	}
	b.fields = slices.Insert(b.fields, i, field{k, v})
}

func (b *builder) point() *write.Point {
	if s := b.cpu; s != nil {
		if s.delta {
			b.set(semconv.FieldBusy, s.busy)
			b.set(semconv.FieldTotal, s.total)
			if s.hasInterval {
				b.set(semconv.FieldInterval, s.interval)
			}
		}
		if s.cumulative {
			b.set(semconv.FieldBusyTotal, s.busyTotal)
		}
	}
	if len(b.fields) == 0 {
		return nil
	}
	p := write.NewPointWithMeasurement(b.measurement)
	for _, t := range b.tags {
		p.AddTag(t.k, t.v)
	}
	for _, f := range b.fields {
		p.AddField(f.k, f.v)
	}
	p.SetTime(time.Unix(0, int64(b.ts)))
	return p
}

// converter converts one request. A request's points are many small objects that live as
// long as the request: the builders, their tags and their fields are carved out of slabs
// (one allocation for many), and a builder is found by the hash of its key, which needs no
// string of its own.
type converter struct {
	limits   limits
	builders []*builder
	index    map[uint64]*builder // by the hash of measurement, tags and time; chained by next
	last     *builder            // the builder builder returned last
	seed     maphash.Seed
	stats    Stats
	key      []byte // scratch for index keys
	tags     []tag  // scratch for tag sets
	resTags  []tag  // scratch for a resource's tags

	// Slabs, sized by the request's first estimate of its points.
	slab       int
	freeB      []builder
	freeTags   []tag
	freeFields []field
}

// fieldsPerBuilder is the room for fields a builder starts with: a power point has 3 fields,
// a host point 10, a cpu point 11 (one more allocation).
const fieldsPerBuilder = 8

func newConverter(l limits, points int) *converter {
	slab := min(max(points, 4), 256)
	return &converter{
		limits: l,
		index:  make(map[uint64]*builder, points),
		seed:   maphash.MakeSeed(),
		slab:   slab,
	}
}

// newBuilder returns a builder with a copy of tags and room for fieldsPerBuilder fields.
func (c *converter) newBuilder(measurement string, tags []tag, ts pcommon.Timestamp) *builder {
	if len(c.freeB) == 0 {
		c.freeB = make([]builder, c.slab)
	}
	b := &c.freeB[0]
	c.freeB = c.freeB[1:]
	if len(c.freeTags) < len(tags) {
		c.freeTags = make([]tag, max(c.slab*8, len(tags)))
	}
	n := copy(c.freeTags, tags)
	b.tags, c.freeTags = c.freeTags[:n:n], c.freeTags[n:]
	if len(c.freeFields) < fieldsPerBuilder {
		c.freeFields = make([]field, c.slab*fieldsPerBuilder)
	}
	b.fields, c.freeFields = c.freeFields[:0:fieldsPerBuilder], c.freeFields[fieldsPerBuilder:]
	b.measurement, b.ts = measurement, ts
	return b
}

// is reports whether b is the builder of measurement, tags and ts.
func (b *builder) is(measurement string, tags []tag, ts pcommon.Timestamp) bool {
	return b.ts == ts && b.measurement == measurement && slices.Equal(b.tags, tags)
}

// get returns the builder for a data point of metric, with measurement, tags (sorted by the
// caller) and ts, creating it, and counts the data point in it.
func (c *converter) get(metric, measurement string, tags []tag, ts pcommon.Timestamp) *builder {
	b := c.builder(measurement, tags, ts)
	if b.metric == "" {
		b.metric = metric
	}
	b.dataPoints++
	return b
}

// builder returns the builder for measurement, tags (sorted by the caller) and ts, creating it.
func (c *converter) builder(measurement string, tags []tag, ts pcommon.Timestamp) *builder {
	// Consecutive data points mostly belong to one point: a metric's (the CPU modes), and
	// consecutive metrics' (hw.energy and hw.power).
	if b := c.last; b != nil && b.is(measurement, tags, ts) {
		return b
	}
	k := append(c.key[:0], measurement...)
	for _, t := range tags {
		k = append(k, 0)
		k = append(k, t.k...)
		k = append(k, 0)
		k = append(k, t.v...)
	}
	k = append(k, 1)
	k = strconv.AppendUint(k, uint64(ts), 10)
	c.key = k
	h := maphash.Bytes(c.seed, k)
	first := c.index[h]
	for b := first; b != nil; b = b.next {
		if b.is(measurement, tags, ts) {
			c.last = b
			return b
		}
	}
	b := c.newBuilder(measurement, tags, ts)
	b.next = first
	c.index[h] = b
	c.builders = append(c.builders, b)
	c.last = b
	return b
}

// resource holds what a ResourceMetrics contributes to its points.
type resource struct {
	attrs   pcommon.Map
	tags    []tag // semconv.ResourceTags, sorted
	generic []tag // tags plus every other resource attribute, sorted; built on first use
	latest  pcommon.Timestamp
	schema  bool // carried a fleetwatt metric
}

func (r *resource) genericTags() []tag {
	if r.generic != nil {
		return r.generic
	}
	g := slices.Clone(r.tags)
	r.attrs.Range(func(k string, v pcommon.Value) bool {
		if !mappedResourceAttr(k) {
			g = setTag(g, k, v.AsString())
		}
		return true
	})
	r.generic = g
	return g
}

func mappedResourceAttr(k string) bool {
	for _, m := range semconv.ResourceTags {
		if m.Attr == k {
			return true
		}
	}
	return false
}

func (c *converter) resourceMetrics(rm pmetric.ResourceMetrics) {
	r := &resource{attrs: rm.Resource().Attributes(), tags: c.resTags[:0]}
	for _, m := range semconv.ResourceTags {
		if v, ok := r.attrs.Get(m.Attr); ok {
			r.tags = setTag(r.tags, m.Tag, v.AsString())
		}
	}
	c.resTags = r.tags
	sms := rm.ScopeMetrics()
	for i := range sms.Len() {
		ms := sms.At(i).Metrics()
		for j := range ms.Len() {
			c.metric(r, ms.At(j))
		}
	}
	c.host(r)
}

// host adds the host measurement's point for r: the host's identity, once per export.
func (c *converter) host(r *resource) {
	if !r.schema {
		return
	}
	if v, ok := r.attrs.Get(semconv.AttrHostName); !ok || v.AsString() == "" {
		return
	}
	var room [12]field
	fields := room[:0]
	for _, f := range []struct{ attr, field string }{
		{semconv.AttrSockets, semconv.FieldSockets},
		{semconv.AttrCores, semconv.FieldCores},
		{semconv.AttrLogicalCPUs, semconv.FieldLogicalCPUs},
		{semconv.AttrThreadsPerCore, semconv.FieldThreads},
	} {
		if v, ok := r.attrs.Get(f.attr); ok {
			if n, ok := attrInt(v); ok {
				fields = append(fields, field{f.field, n})
			}
		}
	}
	for _, f := range []struct{ attr, field string }{
		{semconv.AttrSystemVendor, semconv.FieldSysVendor},
		{semconv.AttrSystemProduct, semconv.FieldProduct},
		{semconv.AttrServiceVersion, semconv.FieldAgent},
		{semconv.AttrCPUCore, semconv.FieldCPUCore},
	} {
		if v, ok := r.attrs.Get(f.attr); ok && v.AsString() != "" {
			fields = append(fields, field{f.field, v.AsString()})
		}
	}
	for _, f := range []struct{ attr, field string }{
		{semconv.AttrAgentInterval, semconv.FieldIntervalCfg},
		{semconv.AttrNominalHz, semconv.FieldNominalHz},
	} {
		if v, ok := r.attrs.Get(f.attr); ok {
			if x, ok := attrFloat(v); ok {
				fields = append(fields, field{f.field, x})
			}
		}
	}
	if v, ok := r.attrs.Get(semconv.AttrVirtual); ok && v.Type() == pcommon.ValueTypeBool {
		fields = append(fields, field{semconv.FieldVirtual, v.Bool()})
	}
	if len(fields) == 0 {
		return
	}
	b := c.builder(semconv.MeasurementHost, r.tags, r.latest)
	b.metric = semconv.MeasurementHost
	for _, f := range fields {
		b.set(f.k, f.v)
	}
}

func attrInt(v pcommon.Value) (int64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), true
	case pcommon.ValueTypeDouble:
		x := v.Double()
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func attrFloat(v pcommon.Value) (float64, bool) {
	var x float64
	switch v.Type() {
	case pcommon.ValueTypeInt:
		x = float64(v.Int())
	case pcommon.ValueTypeDouble:
		x = v.Double()
	case pcommon.ValueTypeStr:
		var err error
		if x, err = strconv.ParseFloat(v.Str(), 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	return x, finite(x)
}

// numberValue returns a number data point's value as a float64 (see the package doc).
func numberValue(dp pmetric.NumberDataPoint) (float64, string) {
	switch dp.ValueType() {
	case pmetric.NumberDataPointValueTypeDouble:
		x := dp.DoubleValue()
		if !finite(x) {
			return 0, ReasonNotFinite
		}
		return x, ""
	case pmetric.NumberDataPointValueTypeInt:
		return float64(dp.IntValue()), ""
	default:
		return 0, ReasonNoValue
	}
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// maxTime is the latest timestamp InfluxDB stores (ns since the epoch).
const maxTime = math.MaxInt64 - 1

// checkTime says why ts cannot be a point's timestamp, or "", and the detail for an error
// message.
func (l *limits) checkTime(ts pcommon.Timestamp) (reason string, detail func() string) {
	switch {
	case ts == 0:
		return ReasonNoTime, nil
	case uint64(ts) > maxTime:
		return ReasonTimeRange, nil
	case l.checkFuture && ts > l.latest:
		return ReasonFuture, func() string {
			return fmt.Sprintf("%s is more than %s ahead of the collector's clock", ts.AsTime().Format(time.RFC3339), l.maxFuture)
		}
	case l.checkAge && ts < l.earliest:
		return ReasonTooOld, func() string {
			return fmt.Sprintf("%s is more than %s before the collector's clock", ts.AsTime().Format(time.RFC3339), l.maxAge)
		}
	}
	return "", nil
}

// minPowerInterval is the shortest interval (s) over which hw.energy's power is checked.
const minPowerInterval = 1.0

// checkPower says why v, energy over interval seconds (J, when energy) or power (W), is not a
// sensor's reading, or "", and the detail for an error message. interval is 0 when unknown.
func (l *limits) checkPower(v float64, energy bool, interval float64) (reason string, detail func() string) {
	if v < 0 {
		return ReasonNegative, func() string {
			if energy {
				return fmt.Sprintf("%g J", v)
			}
			return fmt.Sprintf("%g W", v)
		}
	}
	w := v
	if energy {
		// Over a sub-second interval (an SDK's first export right after it started) the
		// energy's power says more about the flush than about the sensor: the joules are
		// kept, since energy sums must never lose them to a short interval.
		if interval < minPowerInterval {
			return "", nil
		}
		w = v / interval
	}
	if l.checkPowerHigh && w > l.maxPower {
		return ReasonMaxPower, func() string { return fmt.Sprintf("%g W is above %g W", w, l.maxPower) }
	}
	return "", nil
}

// seen records a data point's timestamp for the host point.
func (r *resource) seen(ts pcommon.Timestamp) {
	if ts > r.latest {
		r.latest = ts
	}
}

func (c *converter) metric(r *resource, m pmetric.Metric) {
	name := m.Name()
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		for i := range dps.Len() {
			c.gaugePoint(r, name, dps.At(i))
		}
	case pmetric.MetricTypeSum:
		s := m.Sum()
		delta := s.AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := s.DataPoints()
		for i := range dps.Len() {
			c.sumPoint(r, name, delta, dps.At(i))
		}
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for i := range dps.Len() {
			c.histogramPoint(r, name, dps.At(i))
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for i := range dps.Len() {
			c.expHistogramPoint(r, name, dps.At(i))
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := range dps.Len() {
			c.summaryPoint(r, name, dps.At(i))
		}
	default:
		// Nothing to store; the sender hears of it through FirstError (an OTLP partial
		// success may carry a message with no data point rejected).
		c.stats.Ignored++
		if c.stats.FirstError == "" {
			c.stats.FirstError = fmt.Sprintf("metric %q: %s", name, ReasonNoType)
		}
	}
}

// accept counts a data point and says whether it can become (part of) a point.
func (c *converter) accept(r *resource, name string, ts pcommon.Timestamp, flags pmetric.DataPointFlags) bool {
	c.stats.DataPoints++
	if flags.NoRecordedValue() {
		// A staleness marker, not a value: nothing to store and nothing wrong.
		return false
	}
	if name == "" {
		c.stats.reject(name, ReasonNoName)
		return false
	}
	if why, detail := c.limits.checkTime(ts); why != "" {
		c.stats.rejectN(name, why, 1, detail)
		return false
	}
	r.seen(ts)
	return true
}

func (c *converter) gaugePoint(r *resource, name string, dp pmetric.NumberDataPoint) {
	ts := dp.Timestamp()
	if !c.accept(r, name, ts, dp.Flags()) {
		return
	}
	v, why := numberValue(dp)
	if why != "" {
		c.stats.reject(name, why)
		return
	}
	attrs := dp.Attributes()
	switch name {
	case semconv.MetricPower:
		if why, detail := c.limits.checkPower(v, false, 0); why != "" {
			c.stats.rejectN(name, why, 1, detail)
			return
		}
		b := c.get(name, semconv.MeasurementPower, c.powerTags(r, attrs), ts)
		b.set(semconv.FieldPower, v)
		b.powerSent = true
		r.schema = true
		return
	case semconv.MetricCPUUtilization, semconv.MetricCPUFrequency:
		if _, ok := attrs.Get(semconv.AttrCPUMode); !ok {
			b := c.get(name, semconv.MeasurementCPU, c.cpuTags(r, attrs), ts)
			if name == semconv.MetricCPUFrequency {
				b.set(semconv.FieldFrequency, v)
			} else {
				b.set(semconv.FieldUtilization, v)
			}
			r.schema = true
			return
		}
	}
	c.generic(r, name, attrs, ts).set(FieldValue, v)
}

func (c *converter) sumPoint(r *resource, name string, delta bool, dp pmetric.NumberDataPoint) {
	ts := dp.Timestamp()
	if !c.accept(r, name, ts, dp.Flags()) {
		return
	}
	v, why := numberValue(dp)
	if why != "" {
		c.stats.reject(name, why)
		return
	}
	attrs := dp.Attributes()
	interval, hasInterval := 0.0, false
	if start := dp.StartTimestamp(); start > 0 && ts > start {
		interval, hasInterval = time.Duration(ts-start).Seconds(), true
	}
	switch name {
	case semconv.MetricEnergy:
		if !delta {
			interval = 0 // a cumulative value is energy since the start, not over one interval
		}
		if why, detail := c.limits.checkPower(v, true, interval); why != "" {
			c.stats.rejectN(name, why, 1, detail)
			return
		}
		b := c.get(name, semconv.MeasurementPower, c.powerTags(r, attrs), ts)
		r.schema = true
		if !delta {
			b.set(semconv.FieldEnergyTotal, v)
			return
		}
		b.set(semconv.FieldEnergy, v)
		if hasInterval {
			b.set(semconv.FieldInterval, interval)
			if !b.powerSent {
				b.set(semconv.FieldPower, v/interval)
			}
		}
		return
	case semconv.MetricWork:
		b := c.get(name, semconv.MeasurementWork, r.tags, ts)
		r.schema = true
		if !delta {
			b.set(semconv.FieldOpsTotal, v)
			return
		}
		b.set(semconv.FieldOps, v)
		if hasInterval {
			b.set(semconv.FieldInterval, interval)
		}
		return
	case semconv.MetricCPUIdleTime, semconv.MetricCPUIdleUsage:
		if state, ok := attrs.Get(semconv.AttrIdleState); ok && state.AsString() != "" {
			b := c.get(name, semconv.MeasurementCPUIdle, c.idleTags(r, attrs, state.AsString()), ts)
			r.schema = true
			usage := name == semconv.MetricCPUIdleUsage
			switch {
			case delta && usage:
				b.set(semconv.FieldIdleUsage, v)
			case delta:
				b.set(semconv.FieldIdleTime, v)
			case usage:
				b.set(semconv.FieldIdleUseT, v)
			default:
				b.set(semconv.FieldIdleTimeT, v)
			}
			if delta && hasInterval {
				b.set(semconv.FieldInterval, interval)
			}
			return
		}
	case semconv.MetricCPUTime:
		if mode, ok := attrs.Get(semconv.AttrCPUMode); ok && mode.AsString() != "" {
			b := c.get(name, semconv.MeasurementCPU, c.cpuTags(r, attrs), ts)
			r.schema = true
			if b.cpu == nil {
				b.cpu = &cpuSums{}
			}
			s, m, busy := b.cpu, mode.AsString(), semconv.Busy(mode.AsString())
			if !delta {
				s.cumulative = true
				b.set(modeField(m, true), v)
				if busy {
					s.busyTotal += v
				}
				return
			}
			s.delta = true
			b.set(modeField(m, false), v)
			s.total += v
			if busy {
				s.busy += v
			}
			if hasInterval && !s.hasInterval {
				s.interval, s.hasInterval = interval, true
			}
			return
		}
	}
	k := FieldValue
	if delta {
		k = FieldDelta
	}
	c.generic(r, name, attrs, ts).set(k, v)
}

func (c *converter) histogramPoint(r *resource, name string, dp pmetric.HistogramDataPoint) {
	ts := dp.Timestamp()
	if !c.accept(r, name, ts, dp.Flags()) {
		return
	}
	b := c.generic(r, name, dp.Attributes(), ts)
	b.set(FieldCount, float64(dp.Count()))
	c.summaryStats(b, dp.HasSum(), dp.Sum(), dp.HasMin(), dp.Min(), dp.HasMax(), dp.Max())
	bounds, counts := dp.ExplicitBounds(), dp.BucketCounts()
	var cum uint64
	for i := range min(bounds.Len(), counts.Len()) {
		cum += counts.At(i)
		if bound := bounds.At(i); finite(bound) {
			b.set(FieldBucketPrefix+strconv.FormatFloat(bound, 'g', -1, 64), float64(cum))
		}
	}
	if counts.Len() > 0 {
		b.set(FieldBucketPrefix+"+Inf", float64(dp.Count()))
	}
}

func (c *converter) expHistogramPoint(r *resource, name string, dp pmetric.ExponentialHistogramDataPoint) {
	ts := dp.Timestamp()
	if !c.accept(r, name, ts, dp.Flags()) {
		return
	}
	b := c.generic(r, name, dp.Attributes(), ts)
	b.set(FieldCount, float64(dp.Count()))
	c.summaryStats(b, dp.HasSum(), dp.Sum(), dp.HasMin(), dp.Min(), dp.HasMax(), dp.Max())
}

func (c *converter) summaryStats(b *builder, hasSum bool, sum float64, hasMin bool, minV float64, hasMax bool, maxV float64) {
	if hasSum && finite(sum) {
		b.set(FieldSum, sum)
	}
	if hasMin && finite(minV) {
		b.set(FieldMin, minV)
	}
	if hasMax && finite(maxV) {
		b.set(FieldMax, maxV)
	}
}

func (c *converter) summaryPoint(r *resource, name string, dp pmetric.SummaryDataPoint) {
	ts := dp.Timestamp()
	if !c.accept(r, name, ts, dp.Flags()) {
		return
	}
	b := c.generic(r, name, dp.Attributes(), ts)
	b.set(FieldCount, float64(dp.Count()))
	if finite(dp.Sum()) {
		b.set(FieldSum, dp.Sum())
	}
	qs := dp.QuantileValues()
	for i := range qs.Len() {
		q := qs.At(i)
		if finite(q.Quantile()) && finite(q.Value()) {
			b.set(FieldQuantilePrefix+strconv.FormatFloat(q.Quantile(), 'g', -1, 64), q.Value())
		}
	}
}

// cpuModeFields are the field keys of the standard CPU modes (semconv.ModeField and
// ModeTotalField), made once rather than for every host.
var cpuModeFields = func() []struct{ mode, delta, total string } {
	fs := make([]struct{ mode, delta, total string }, len(semconv.CPUModes))
	for i, m := range semconv.CPUModes {
		fs[i].mode, fs[i].delta, fs[i].total = m, semconv.ModeField(m), semconv.ModeTotalField(m)
	}
	return fs
}()

// modeField returns the field key of time in mode over the interval, or since the sender's
// start (total).
func modeField(mode string, total bool) string {
	for _, f := range cpuModeFields {
		if f.mode == mode {
			if total {
				return f.total
			}
			return f.delta
		}
	}
	if total {
		return semconv.ModeTotalField(mode)
	}
	return semconv.ModeField(mode)
}

// powerTags returns the power measurement's tags for a data point with attrs.
func (c *converter) powerTags(r *resource, attrs pcommon.Map) []tag {
	tags := append(c.tags[:0], r.tags...)
	for _, m := range semconv.PowerTags {
		if v, ok := attrs.Get(m.Attr); ok {
			tags = setTag(tags, m.Tag, v.AsString())
		}
	}
	c.tags = tags
	return tags
}

// cpuTags returns the cpu measurement's tags for a data point with attrs.
func (c *converter) cpuTags(r *resource, attrs pcommon.Map) []tag {
	tags := append(c.tags[:0], r.tags...)
	if v, ok := attrs.Get(semconv.AttrCPUNumber); ok {
		tags = setTag(tags, semconv.TagCPU, v.AsString())
	}
	c.tags = tags
	return tags
}

// idleTags returns the cpuidle measurement's tags: the host's, the state, and the CPU when
// the point is per CPU.
func (c *converter) idleTags(r *resource, attrs pcommon.Map, state string) []tag {
	tags := setTag(append(c.tags[:0], r.tags...), semconv.TagIdleState, state)
	if v, ok := attrs.Get(semconv.AttrCPUNumber); ok {
		tags = setTag(tags, semconv.TagCPU, v.AsString())
	}
	c.tags = tags
	return tags
}

// generic returns the builder of a metric outside the fleetwatt schema: measurement = the
// metric's name, tags = every resource and data point attribute (the point's win).
func (c *converter) generic(r *resource, name string, attrs pcommon.Map, ts pcommon.Timestamp) *builder {
	tags := append(c.tags[:0], r.genericTags()...)
	attrs.Range(func(k string, v pcommon.Value) bool {
		tags = setTag(tags, k, v.AsString())
		return true
	})
	c.tags = tags
	return c.get(name, name, tags, ts)
}

// setTag sets key k to v in tags, sorted by key, leaving out what InfluxDB cannot store:
// empty keys and values, and the keys it reserves.
func setTag(tags []tag, k, v string) []tag {
	// A trailing backslash would escape the separator after it in line protocol.
	k, v = strings.TrimRight(k, `\`), strings.TrimRight(v, `\`)
	if k == "" || v == "" || k == "time" || k == "_field" || k == "_measurement" {
		return tags
	}
	i, found := slices.BinarySearchFunc(tags, k, func(t tag, k string) int { return strings.Compare(t.k, k) })
	if found {
		tags[i].v = v
		return tags
	}
	return slices.Insert(tags, i, tag{k, v})
}
