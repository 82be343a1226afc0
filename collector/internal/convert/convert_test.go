package convert

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// t0 is the end of the test interval; start is 15 s earlier.
var (
	t0    = time.Date(2025, 3, 1, 12, 0, 15, 0, time.UTC)
	start = t0.Add(-15 * time.Second)
)

// atT0 converts as the collector would at t0.
var atT0 = Options{Now: func() time.Time { return t0 }}

func ts(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

// host describes an agent's resource.
type host struct {
	name, arch, vendor, model, region, zone, dc string
	sockets, cores, logical                     int64
	sysVendor, product, version                 string
	interval                                    float64
}

var intelHost = host{
	name: "web-1", arch: "amd64", vendor: "GenuineIntel", model: "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
	region: "cn-hangzhou", zone: "cn-hangzhou-h", dc: "hz1",
	sockets: 2, cores: 64, logical: 128, sysVendor: "Dell Inc.", product: "PowerEdge R750", version: "0.3.0",
	interval: 15,
}

func (h host) resource(rm pmetric.ResourceMetrics) {
	a := rm.Resource().Attributes()
	a.PutStr(semconv.AttrServiceName, "fleetwatt-agent")
	a.PutStr(semconv.AttrOSType, "linux")
	for k, v := range map[string]string{
		semconv.AttrHostName: h.name, semconv.AttrHostArch: h.arch, semconv.AttrHostCPUVendor: h.vendor,
		semconv.AttrHostCPUModel: h.model, semconv.AttrCloudRegion: h.region, semconv.AttrCloudZone: h.zone,
		semconv.AttrDatacenter: h.dc, semconv.AttrSystemVendor: h.sysVendor, semconv.AttrSystemProduct: h.product,
		semconv.AttrServiceVersion: h.version,
	} {
		a.PutStr(k, v)
	}
	if h.sockets > 0 {
		a.PutInt(semconv.AttrSockets, h.sockets)
		a.PutInt(semconv.AttrCores, h.cores)
		a.PutInt(semconv.AttrLogicalCPUs, h.logical)
	}
	if h.interval > 0 {
		a.PutDouble(semconv.AttrAgentInterval, h.interval)
	}
}

type sensor struct {
	id, name, source string
	scope            semconv.Scope
	joules, total    float64
}

var intelSensors = []sensor{
	{"package-0", "package-0", semconv.SourceRAPL, semconv.ScopeCPUPackage, 1800, 9.1e6},
	{"package-1", "package-1", semconv.SourceRAPL, semconv.ScopeCPUPackage, 1650, 8.7e6},
	{"dram-0", "dram", semconv.SourceRAPL, semconv.ScopeDRAM, 300, 1.4e6},
	{"psys", "psys", semconv.SourceRAPL, semconv.ScopePlatform, 4200, 2.1e7},
	{"dcmi", "Power Meter", semconv.SourceIPMI, semconv.ScopeWall, 6000, 3.2e7},
}

func (s sensor) attrs(m pcommon.Map) {
	m.PutStr(semconv.AttrHwID, s.id)
	m.PutStr(semconv.AttrHwName, s.name)
	m.PutStr(semconv.AttrHwType, s.scope.HwType())
	m.PutStr(semconv.AttrSource, s.source)
	m.PutStr(semconv.AttrScope, string(s.scope))
	m.PutStr(semconv.AttrMethod, semconv.MethodMeasured)
}

// agentPayload builds what fleetwatt-agent sends for one host and one interval: hw.energy and
// hw.power per sensor, system.cpu.time per mode (all CPUs, and perCPU logical CPUs), and
// system.cpu.utilization.
func agentPayload(rms pmetric.ResourceMetricsSlice, h host, sensors []sensor, perCPU int, delta bool) {
	rm := rms.AppendEmpty()
	h.resource(rm)
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(semconv.InstrumentationScope)
	sm.Scope().SetVersion(h.version)

	energy := sm.Metrics().AppendEmpty()
	energy.SetName(semconv.MetricEnergy)
	energy.SetUnit(semconv.UnitJoule)
	sum := energy.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(temporality(delta))
	power := sm.Metrics().AppendEmpty()
	power.SetName(semconv.MetricPower)
	power.SetUnit(semconv.UnitWatt)
	gauge := power.SetEmptyGauge()
	for _, s := range sensors {
		dp := sum.DataPoints().AppendEmpty()
		s.attrs(dp.Attributes())
		dp.SetStartTimestamp(ts(start))
		dp.SetTimestamp(ts(t0))
		dp.SetDoubleValue(s.joules)
		if !delta {
			dp.SetStartTimestamp(ts(start.Add(-time.Hour)))
			dp.SetDoubleValue(s.total)
		}
		g := gauge.DataPoints().AppendEmpty()
		s.attrs(g.Attributes())
		g.SetStartTimestamp(ts(start))
		g.SetTimestamp(ts(t0))
		g.SetDoubleValue(s.joules / 15)
	}

	cpu := sm.Metrics().AppendEmpty()
	cpu.SetName(semconv.MetricCPUTime)
	cpu.SetUnit(semconv.UnitSecond)
	cs := cpu.SetEmptySum()
	cs.SetIsMonotonic(true)
	cs.SetAggregationTemporality(temporality(delta))
	util := sm.Metrics().AppendEmpty()
	util.SetName(semconv.MetricCPUUtilization)
	util.SetUnit(semconv.UnitRatio)
	ug := util.SetEmptyGauge()
	modes := []float64{1100, 5, 420, 380, 12, 3, 0} // CPU-seconds over 15 s, 128 CPUs
	for c := -1; c < perCPU; c++ {
		scale := 1.0
		if c >= 0 {
			scale = 1.0 / 128
		}
		for i, mode := range semconv.CPUModes {
			dp := cs.DataPoints().AppendEmpty()
			if c >= 0 {
				dp.Attributes().PutInt(semconv.AttrCPUNumber, int64(c))
			}
			dp.Attributes().PutStr(semconv.AttrCPUMode, mode)
			dp.SetStartTimestamp(ts(start))
			dp.SetTimestamp(ts(t0))
			dp.SetDoubleValue(modes[i] * scale)
			if !delta {
				dp.SetStartTimestamp(ts(start.Add(-time.Hour)))
				dp.SetDoubleValue(modes[i] * scale * 240)
			}
		}
		u := ug.DataPoints().AppendEmpty()
		if c >= 0 {
			u.Attributes().PutInt(semconv.AttrCPUNumber, int64(c))
		}
		u.SetStartTimestamp(ts(start))
		u.SetTimestamp(ts(t0))
		u.SetDoubleValue(0.5 + float64(c+1)/100)
	}
}

func temporality(delta bool) pmetric.AggregationTemporality {
	if delta {
		return pmetric.AggregationTemporalityDelta
	}
	return pmetric.AggregationTemporalityCumulative
}

// otelHost adds a ResourceMetrics as an OpenTelemetry SDK or the Collector's hostmetrics
// receiver would send it, with one scope, and returns its metric slice.
func otelHost(md pmetric.Metrics, attrs map[string]string) pmetric.MetricSlice {
	rm := md.ResourceMetrics().AppendEmpty()
	for k, v := range attrs {
		rm.Resource().Attributes().PutStr(k, v)
	}
	return rm.ScopeMetrics().AppendEmpty().Metrics()
}

func gaugeDP(ms pmetric.MetricSlice, name string) pmetric.NumberDataPoint {
	m := ms.AppendEmpty()
	m.SetName(name)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(t0))
	return dp
}

func sumDP(ms pmetric.MetricSlice, name string, delta bool) pmetric.NumberDataPoint {
	m := ms.AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetAggregationTemporality(temporality(delta))
	s.SetIsMonotonic(true)
	dp := s.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(ts(start))
	dp.SetTimestamp(ts(t0))
	return dp
}

func TestConvert(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func(md pmetric.Metrics)
	}{
		{"agent_delta", func(md pmetric.Metrics) {
			agentPayload(md.ResourceMetrics(), intelHost, intelSensors, 2, true)
		}},
		{"agent_cumulative", func(md pmetric.Metrics) {
			agentPayload(md.ResourceMetrics(), intelHost, intelSensors[:2], 0, false)
		}},
		{"agent_two_hosts", func(md pmetric.Metrics) {
			arm := host{
				name: "arm-7", arch: "arm64", vendor: "ARM", model: "Neoverse-N1", region: "cn-hangzhou",
				sockets: 1, cores: 80, logical: 80, version: "0.3.0",
			}
			agentPayload(md.ResourceMetrics(), intelHost, intelSensors[4:], 0, true)
			agentPayload(md.ResourceMetrics(), arm, []sensor{
				{"hwmon0/power1", "CPU power", semconv.SourceHwmon, semconv.ScopeCPUPackage, 1500, 0},
				{"hwmon0/power2", "IO power", semconv.SourceHwmon, semconv.ScopeIO, 450, 0},
			}, 0, true)
		}},
		{"cpu_state", func(md pmetric.Metrics) {
			// Frequency, idle states and the host facts an arm64 agent adds.
			rm := md.ResourceMetrics().AppendEmpty()
			a := rm.Resource().Attributes()
			a.PutStr(semconv.AttrHostName, "grace-1")
			a.PutStr(semconv.AttrHostArch, "arm64")
			a.PutInt(semconv.AttrThreadsPerCore, 1)
			a.PutDouble(semconv.AttrNominalHz, 3.1e9)
			a.PutStr(semconv.AttrCPUCore, "Neoverse-V2")
			a.PutBool(semconv.AttrVirtual, false)
			ms := rm.ScopeMetrics().AppendEmpty().Metrics()
			gaugeDP(ms, semconv.MetricCPUFrequency).SetDoubleValue(3.0e9)
			for _, st := range []struct {
				state       string
				time, usage float64
			}{{"WFI", 412.5, 90000}, {"cpuoff", 301, 1200}} {
				dp := sumDP(ms, semconv.MetricCPUIdleTime, true)
				dp.Attributes().PutStr(semconv.AttrIdleState, st.state)
				dp.SetDoubleValue(st.time)
				dp = sumDP(ms, semconv.MetricCPUIdleUsage, true)
				dp.Attributes().PutStr(semconv.AttrIdleState, st.state)
				dp.SetDoubleValue(st.usage)
			}
			dp := sumDP(ms, semconv.MetricCPUIdleTime, false)
			dp.Attributes().PutStr(semconv.AttrIdleState, "WFI")
			dp.SetTimestamp(ts(t0.Add(time.Second)))
			dp.SetDoubleValue(99999)
			sumDP(ms, semconv.MetricWork, true).SetDoubleValue(1.5e6)
		}},
		{"int_values", func(md pmetric.Metrics) {
			// An SDK with int64 counters: values stored as floats, like everyone else's.
			ms := otelHost(md, map[string]string{semconv.AttrHostName: "db-2"})
			dp := sumDP(ms, semconv.MetricEnergy, true)
			dp.Attributes().PutStr(semconv.AttrScope, string(semconv.ScopeWall))
			dp.SetIntValue(3000)
			g := gaugeDP(ms, "queue.length")
			g.SetIntValue(42)
			g.Attributes().PutStr("queue", "ingest")
		}},
		{"generic", func(md pmetric.Metrics) {
			ms := otelHost(md, map[string]string{
				semconv.AttrHostName: "app-3", semconv.AttrCloudRegion: "eu-west-1",
				semconv.AttrServiceName: "checkout", "k8s.pod.name": "checkout-7d9f", "empty.attr": "",
			})
			g := gaugeDP(ms, "process.memory.usage")
			g.SetDoubleValue(1.5e8)
			c := sumDP(ms, "http.server.requests", false)
			c.SetIntValue(1234)
			c.Attributes().PutStr("http.route", "/pay")
			c.Attributes().PutInt("http.status_code", 200)
			d := sumDP(ms, "checkout.orders", true)
			d.SetDoubleValue(17)
			// The hostmetrics receiver's per-mode utilization: generic, not the cpu measurement.
			u := gaugeDP(ms, semconv.MetricCPUUtilization)
			u.Attributes().PutStr(semconv.AttrCPUMode, "user")
			u.Attributes().PutStr("cpu", "cpu0")
			u.SetDoubleValue(0.25)

			h := ms.AppendEmpty()
			h.SetName("http.server.duration")
			hist := h.SetEmptyHistogram()
			hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			hdp := hist.DataPoints().AppendEmpty()
			hdp.SetStartTimestamp(ts(start))
			hdp.SetTimestamp(ts(t0))
			hdp.SetCount(10)
			hdp.SetSum(2.5)
			hdp.SetMin(0.01)
			hdp.SetMax(1.2)
			hdp.ExplicitBounds().FromRaw([]float64{0.05, 0.5, 1})
			hdp.BucketCounts().FromRaw([]uint64{3, 4, 2, 1})
			hdp.Attributes().PutStr("http.route", "/pay")

			e := ms.AppendEmpty()
			e.SetName("rpc.latency")
			edp := e.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
			edp.SetTimestamp(ts(t0))
			edp.SetCount(7)
			edp.SetSum(0.7)
			edp.SetScale(2)
			edp.Positive().BucketCounts().FromRaw([]uint64{1, 2, 4})

			s := ms.AppendEmpty()
			s.SetName("gc.pause")
			sdp := s.SetEmptySummary().DataPoints().AppendEmpty()
			sdp.SetTimestamp(ts(t0))
			sdp.SetCount(100)
			sdp.SetSum(0.9)
			for _, q := range [][2]float64{{0.5, 0.004}, {0.99, 0.05}, {1, 0.08}} {
				qv := sdp.QuantileValues().AppendEmpty()
				qv.SetQuantile(q[0])
				qv.SetValue(q[1])
			}
		}},
		{"rejected", func(md pmetric.Metrics) {
			ms := otelHost(md, map[string]string{semconv.AttrHostName: "bad-1", semconv.AttrHostArch: ""})
			gaugeDP(ms, "temp.nan").SetDoubleValue(math.NaN())
			gaugeDP(ms, "temp.inf").SetDoubleValue(math.Inf(-1))
			gaugeDP(ms, "temp.empty")
			z := gaugeDP(ms, "temp.zero_time")
			z.SetDoubleValue(1)
			z.SetTimestamp(0)
			gaugeDP(ms, "").SetDoubleValue(1)
			stale := gaugeDP(ms, "temp.stale")
			stale.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			e := sumDP(ms, semconv.MetricEnergy, true)
			e.SetDoubleValue(math.Inf(1))
			e.Attributes().PutStr(semconv.AttrScope, string(semconv.ScopeWall))
			// The same sensor's hw.power is fine: the point keeps power_w alone.
			p := gaugeDP(ms, semconv.MetricPower)
			p.Attributes().PutStr(semconv.AttrScope, string(semconv.ScopeWall))
			p.SetDoubleValue(400)
			// A NaN sum is left out of a histogram that still has its count.
			h := ms.AppendEmpty()
			h.SetName("latency")
			hdp := h.SetEmptyHistogram().DataPoints().AppendEmpty()
			hdp.SetTimestamp(ts(t0))
			hdp.SetCount(2)
			hdp.SetSum(math.NaN())
			// Reserved tag keys and empty tag values are left out.
			g := gaugeDP(ms, "odd.tags")
			g.SetDoubleValue(1)
			g.Attributes().PutStr("time", "now")
			g.Attributes().PutStr("_field", "x")
			g.Attributes().PutStr("blank", "")
			g.Attributes().PutStr(`trailing\`, `value\`)
		}},
		{"cpu_no_interval", func(md pmetric.Metrics) {
			// An SDK that leaves start_time_unix_nano unset: no interval_s, no derived power_w.
			ms := otelHost(md, map[string]string{semconv.AttrHostName: "vm-9"})
			e := sumDP(ms, semconv.MetricEnergy, true)
			e.SetStartTimestamp(0)
			e.SetDoubleValue(100)
			e.Attributes().PutStr(semconv.AttrScope, string(semconv.ScopeEstimatedHost))
			e.Attributes().PutStr(semconv.AttrMethod, semconv.MethodEstimated)
			e.Attributes().PutStr(semconv.AttrSource, semconv.SourceModel)
			for _, mode := range []string{semconv.ModeUser, semconv.ModeIdle} {
				c := sumDP(ms, semconv.MetricCPUTime, true)
				c.SetStartTimestamp(0)
				c.SetDoubleValue(10)
				c.Attributes().PutStr(semconv.AttrCPUMode, mode)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			md := pmetric.NewMetrics()
			tt.build(md)
			points, stats := atT0.Convert(md)
			got := render(points, stats)
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("Convert() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// render writes points as line protocol (ms precision, as the writer sends them) after a
// header line with the stats.
func render(points []*write.Point, s Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# data_points=%d points=%d rejected=%d", s.DataPoints, len(points), s.Rejected)
	reasons := make([]string, 0, len(s.Reasons))
	for r, n := range s.Reasons {
		reasons = append(reasons, fmt.Sprintf("%q=%d", r, n))
	}
	slices.Sort(reasons)
	if len(reasons) > 0 {
		fmt.Fprintf(&b, " reasons=%s first_error=%q", strings.Join(reasons, ","), s.FirstError)
	}
	b.WriteString("\n")
	for _, p := range points {
		b.WriteString(write.PointToLineProtocol(p, time.Millisecond))
	}
	return b.String()
}

func TestConvertAgentValues(t *testing.T) {
	t.Parallel()
	// The derived numbers, checked by hand rather than by golden file.
	md := pmetric.NewMetrics()
	agentPayload(md.ResourceMetrics(), intelHost, intelSensors[:1], 0, true)
	points, stats := atT0.Convert(md)
	if stats.Rejected != 0 || stats.DataPoints != 2+7+1 {
		t.Fatalf("stats = %+v, want 10 data points, none rejected", stats)
	}
	fields := map[string]map[string]any{}
	for _, p := range points {
		f := map[string]any{}
		for _, x := range p.FieldList() {
			f[x.Key] = x.Value
		}
		fields[p.Name()] = f
		if !p.Time().Equal(t0) {
			t.Errorf("%s: time %v, want %v", p.Name(), p.Time(), t0)
		}
	}
	want := map[string]map[string]any{
		semconv.MeasurementPower: {
			semconv.FieldEnergy: 1800.0, semconv.FieldInterval: 15.0, semconv.FieldPower: 120.0,
		},
		semconv.MeasurementCPU: {
			"user_s": 1100.0, "nice_s": 5.0, "system_s": 420.0, "idle_s": 380.0, "iowait_s": 12.0,
			"interrupt_s": 3.0, "steal_s": 0.0,
			semconv.FieldBusy: 1528.0, semconv.FieldTotal: 1920.0, semconv.FieldInterval: 15.0,
			semconv.FieldUtilization: 0.5,
		},
		semconv.MeasurementHost: {
			semconv.FieldSockets: int64(2), semconv.FieldCores: int64(64), semconv.FieldLogicalCPUs: int64(128),
			semconv.FieldSysVendor: "Dell Inc.", semconv.FieldProduct: "PowerEdge R750",
			semconv.FieldAgent: "0.3.0", semconv.FieldIntervalCfg: 15.0,
		},
	}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

func TestConvertEmpty(t *testing.T) {
	t.Parallel()
	points, stats := Convert(pmetric.NewMetrics())
	if len(points) != 0 || stats.DataPoints != 0 || stats.Rejected != 0 {
		t.Errorf("Convert(empty) = %d points, %+v", len(points), stats)
	}
}

func TestConvertLimits(t *testing.T) {
	t.Parallel()
	type want struct {
		points  int
		reasons map[string]int64
		first   string // a part of Stats.FirstError
	}
	power := func(v float64, at time.Time) func(pmetric.MetricSlice) {
		return func(ms pmetric.MetricSlice) {
			dp := gaugeDP(ms, semconv.MetricPower)
			dp.SetDoubleValue(v)
			dp.SetTimestamp(ts(at))
		}
	}
	energy := func(j float64, delta bool) func(pmetric.MetricSlice) {
		return func(ms pmetric.MetricSlice) { sumDP(ms, semconv.MetricEnergy, delta).SetDoubleValue(j) }
	}
	tests := []struct {
		name  string
		opts  Options
		build func(pmetric.MetricSlice)
		want  want
	}{
		{"in bounds", Options{}, power(350, t0), want{points: 1}},
		{"9 min ahead", Options{}, power(350, t0.Add(9*time.Minute)), want{points: 1}},
		{
			"11 min ahead",
			Options{},
			power(350, t0.Add(11*time.Minute)),
			want{reasons: map[string]int64{ReasonFuture: 1}, first: `metric "hw.power": time in the future (2025-03-01T12:11:15Z is more than 10m0s ahead`},
		},
		{"89 days old", Options{}, power(350, t0.Add(-89*24*time.Hour)), want{points: 1}},
		{
			"91 days old",
			Options{},
			power(350, t0.Add(-91*24*time.Hour)),
			want{reasons: map[string]int64{ReasonTooOld: 1}, first: `time too old (2024-11-30T12:00:15Z is more than 2160h0m0s before`},
		},
		{
			"1 s ahead, MaxFuture 0.5 s",
			Options{MaxFuture: 500 * time.Millisecond},
			power(350, t0.Add(time.Second)),
			want{reasons: map[string]int64{ReasonFuture: 1}},
		},
		{"a year ahead, future check off", Options{MaxFuture: -1}, power(350, t0.Add(365*24*time.Hour)), want{points: 1}},
		{"10 years old, age check off", Options{MaxAge: -1}, power(350, t0.Add(-3650*24*time.Hour)), want{points: 1}},
		{
			"negative power",
			Options{},
			power(-5, t0),
			want{reasons: map[string]int64{ReasonNegative: 1}, first: `metric "hw.power": negative energy or power (-5 W)`},
		},
		{
			"1.5 MW",
			Options{},
			power(1.5e6, t0),
			want{reasons: map[string]int64{ReasonMaxPower: 1}, first: `(1.5e+06 W is above 1e+06 W)`},
		},
		{"1.5 MW, limit off", Options{MaxPowerW: -1}, power(1.5e6, t0), want{points: 1}},
		{"500 W, limit 400 W", Options{MaxPowerW: 400}, power(500, t0), want{reasons: map[string]int64{ReasonMaxPower: 1}}},
		{"negative energy", Options{}, energy(-1, true), want{reasons: map[string]int64{ReasonNegative: 1}, first: `(-1 J)`}},
		{"negative energy total", Options{}, energy(-1, false), want{reasons: map[string]int64{ReasonNegative: 1}}},
		{
			"30 MJ in 15 s",
			Options{},
			energy(30e6, true),
			want{reasons: map[string]int64{ReasonMaxPower: 1}, first: `metric "hw.energy": power above the per-sensor limit (2e+06 W`},
		},
		{"30 MJ since the start", Options{}, energy(30e6, false), want{points: 1}},
		{"generic negative values pass", Options{}, func(ms pmetric.MetricSlice) { gaugeDP(ms, "temperature").SetDoubleValue(-40) }, want{points: 1}},
		{"good and bad together", Options{}, func(ms pmetric.MetricSlice) {
			power(350, t0)(ms)
			power(-1, t0)(ms)
			power(350, t0.Add(time.Hour))(ms)
			gaugeDP(ms, "fan").SetDoubleValue(1)
		}, want{points: 2, reasons: map[string]int64{ReasonNegative: 1, ReasonFuture: 1}, first: "negative"}},
		{
			"cardinality",
			Options{Admit: func(p *write.Point) bool { return p.Name() != semconv.MeasurementPower }},
			func(ms pmetric.MetricSlice) {
				power(350, t0)(ms)
				energy(5250, true)(ms)
				gaugeDP(ms, "fan").SetDoubleValue(1)
			},
			want{points: 1, reasons: map[string]int64{ReasonCardinality: 2}, first: `metric "hw.power": cardinality limit (new series of power: the sender`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			md := pmetric.NewMetrics()
			ms := otelHost(md, map[string]string{semconv.AttrHostName: "h", semconv.AttrHostCPUModel: "x"})
			tt.build(ms)
			opts := tt.opts
			opts.Now = atT0.Now
			points, stats := opts.Convert(md)
			var n int64
			for _, c := range tt.want.reasons {
				n += c
			}
			if len(points) != tt.want.points || stats.Rejected != n || !cmp.Equal(tt.want.reasons, stats.Reasons) {
				t.Errorf("%d points, %d rejected %v; want %d points, %v", len(points), stats.Rejected, stats.Reasons, tt.want.points, tt.want.reasons)
			}
			if !strings.Contains(stats.FirstError, tt.want.first) {
				t.Errorf("FirstError %q, want it to contain %q", stats.FirstError, tt.want.first)
			}
		})
	}
}

func TestConvertNoType(t *testing.T) {
	t.Parallel()
	md := pmetric.NewMetrics()
	ms := otelHost(md, map[string]string{semconv.AttrHostName: "h"})
	ms.AppendEmpty().SetName("empty")
	gaugeDP(ms, "g").SetDoubleValue(1)
	points, stats := atT0.Convert(md)
	want := Stats{DataPoints: 1, Ignored: 1, FirstError: `metric "empty": ` + ReasonNoType}
	if diff := cmp.Diff(want, stats); len(points) != 1 || diff != "" {
		t.Errorf("%d points, stats (-want +got):\n%s", len(points), diff)
	}
}

// TestConvertDefaultClock: Convert checks times against the real clock.
func TestConvertDefaultClock(t *testing.T) {
	t.Parallel()
	md := pmetric.NewMetrics()
	ms := otelHost(md, map[string]string{semconv.AttrHostName: "h"})
	now := gaugeDP(ms, "now")
	now.SetDoubleValue(1)
	now.SetTimestamp(ts(time.Now()))
	gaugeDP(ms, "then").SetDoubleValue(1) // at t0, long ago
	points, stats := Convert(md)
	if len(points) != 1 || stats.Reasons[ReasonTooOld] != 1 {
		t.Errorf("%d points, reasons %v; want 1 point and 1 too old", len(points), stats.Reasons)
	}
}

// FuzzConvert decodes random bytes as an OTLP export request and converts it: whatever a
// sender puts on the wire, Convert must not panic, and every point it returns must be writable.
func FuzzConvert(f *testing.F) {
	for _, build := range []func(pmetric.Metrics){
		func(md pmetric.Metrics) {
			agentPayload(md.ResourceMetrics(), host{name: "h"}, intelSensors[:1], 0, true)
		},
		func(md pmetric.Metrics) { agentPayload(md.ResourceMetrics(), intelHost, intelSensors[:1], 0, false) },
		func(md pmetric.Metrics) {
			// Out of bounds: in the future, too old, negative and absurd power.
			ms := otelHost(md, map[string]string{semconv.AttrHostName: "h"})
			gaugeDP(ms, semconv.MetricPower).SetDoubleValue(-1)
			gaugeDP(ms, semconv.MetricPower).SetDoubleValue(2e6)
			e := sumDP(ms, semconv.MetricEnergy, true)
			e.SetDoubleValue(1e9)
			g := gaugeDP(ms, "g")
			g.SetDoubleValue(1)
			g.SetTimestamp(ts(t0.Add(time.Hour)))
			o := gaugeDP(ms, "o")
			o.SetDoubleValue(1)
			o.SetTimestamp(ts(t0.Add(-100 * 24 * time.Hour)))
		},
		func(md pmetric.Metrics) {
			ms := otelHost(md, map[string]string{semconv.AttrHostName: "h"})
			gaugeDP(ms, "g").SetDoubleValue(1)
			h := ms.AppendEmpty()
			h.SetName("h")
			hdp := h.SetEmptyHistogram().DataPoints().AppendEmpty()
			hdp.SetTimestamp(ts(t0))
			hdp.ExplicitBounds().FromRaw([]float64{1})
			hdp.BucketCounts().FromRaw([]uint64{1, 2, 3})
		},
	} {
		md := pmetric.NewMetrics()
		build(md)
		b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(data); err != nil {
			return
		}
		points, stats := atT0.Convert(req.Metrics())
		if stats.Rejected > stats.DataPoints {
			t.Fatalf("rejected %d of %d data points", stats.Rejected, stats.DataPoints)
		}
		lo, hi := t0.Add(-DefaultMaxAge), t0.Add(DefaultMaxFuture)
		for _, p := range points {
			if p.Time().Before(lo) || p.Time().After(hi) {
				t.Fatalf("point at %s outside [%s, %s]", p.Time(), lo, hi)
			}
			if p.Name() == semconv.MeasurementPower {
				for _, fl := range p.FieldList() {
					x, ok := fl.Value.(float64)
					if ok && (fl.Key == semconv.FieldPower || fl.Key == semconv.FieldEnergy || fl.Key == semconv.FieldEnergyTotal) &&
						(x < 0 || fl.Key == semconv.FieldPower && x > DefaultMaxPowerW) {
						t.Fatalf("absurd %s = %g", fl.Key, x)
					}
				}
			}
			if len(p.FieldList()) == 0 {
				t.Fatalf("point without fields: %s", write.PointToLineProtocol(p, time.Millisecond))
			}
			for _, tg := range p.TagList() {
				if tg.Key == "" || tg.Value == "" {
					t.Fatalf("empty tag key or value: %s", write.PointToLineProtocol(p, time.Millisecond))
				}
			}
			for _, fl := range p.FieldList() {
				if x, ok := fl.Value.(float64); ok && !finite(x) {
					t.Fatalf("non-finite field %s", fl.Key)
				}
			}
		}
	})
}

func BenchmarkConvert(b *testing.B) {
	for _, hosts := range []int{1, 100} {
		md := pmetric.NewMetrics()
		for i := range hosts {
			h := intelHost
			h.name = fmt.Sprintf("web-%d", i)
			agentPayload(md.ResourceMetrics(), h, intelSensors, 0, true)
		}
		b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				points, _ := atT0.Convert(md)
				if len(points) == 0 {
					b.Fatal("no points")
				}
			}
		})
	}
}
