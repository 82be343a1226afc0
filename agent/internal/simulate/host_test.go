package simulate

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/export"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

var discard = slog.New(slog.DiscardHandler)

// day0 is a UTC midnight.
var day0 = time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)

func defaultHosts(t testing.TB, seed uint64) []*Host {
	t.Helper()
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := NewHosts(s, seed)
	if err != nil {
		t.Fatal(err)
	}
	return hosts
}

func TestHostsOfTheDefaultFleet(t *testing.T) {
	t.Parallel()
	hosts := defaultHosts(t, 1)
	if len(hosts) != 120 {
		t.Fatalf("%d hosts, want 120", len(hosts))
	}
	names := map[string]bool{}
	for _, h := range hosts {
		if names[h.HostName] {
			t.Errorf("host name %s twice", h.HostName)
		}
		names[h.HostName] = true
		g := h.Group
		if !strings.HasPrefix(h.HostName, g.Region+"-"+g.Arch+"-") {
			t.Errorf("host name %s for %s %s", h.HostName, g.Region, g.Arch)
		}
		// Part-to-part variation stays within ±Variation, and P(0), P(1) are the truth.
		if math.Abs(h.IdleW/g.IdleW-1) > Variation || math.Abs(h.PeakW/g.PeakW-1) > Variation {
			t.Errorf("%s: idle %v peak %v, spec %v %v: beyond ±%v", h.HostName, h.IdleW, h.PeakW, g.IdleW, g.PeakW, Variation)
		}
		if h.PowerW(0) != h.IdleW || h.PowerW(1) != h.PeakW {
			t.Errorf("%s: P(0) = %v, P(1) = %v, want %v and %v", h.HostName, h.PowerW(0), h.PowerW(1), h.IdleW, h.PeakW)
		}
		if id := h.Identity(); id.LogicalCPUs != g.Cores || id.Cores*id.ThreadsPerCore != g.Cores {
			t.Errorf("%s: identity %+v for %d logical CPUs", h.HostName, id, g.Cores)
		}
	}
	for _, n := range []string{"cn-hangzhou-arm64-01", "cn-hangzhou-arm64-10", "us-west-1-amd64-01"} {
		if !names[n] {
			t.Errorf("no host %s", n)
		}
	}
}

// TestDeterminism: the same seed gives the same hosts and the same readings; another seed
// other hosts.
func TestDeterminism(t *testing.T) {
	t.Parallel()
	run := func(seed uint64) (hosts []*Host, energy []float64) {
		hosts = defaultHosts(t, seed)
		opts := &Options{Version: "test", Interval: time.Minute}
		for _, h := range hosts[:24] {
			v := newVHost(h, opts, discard)
			v.begin(context.Background(), day0)
			for k := 1; k <= 10; k++ {
				rm := v.step(context.Background(), day0.Add(time.Duration(k)*time.Minute))
				energy = append(energy, sumMetric(rm, semconv.MetricEnergy))
			}
		}
		return hosts, energy
	}
	type truth struct {
		Name        string
		Idle, Peak  float64
		U           float64
		Group, Host int
	}
	truths := func(hosts []*Host) []truth {
		var out []truth
		for _, h := range hosts {
			out = append(out, truth{h.HostName, h.IdleW, h.PeakW, h.Utilization(day0.Add(7 * time.Hour)), h.GroupIndex, h.Index})
		}
		return out
	}
	a, ea := run(7)
	b, eb := run(7)
	if diff := cmp.Diff(truths(a), truths(b)); diff != "" {
		t.Errorf("hosts of seed 7 differ between runs (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(ea, eb); diff != "" {
		t.Errorf("readings of seed 7 differ between runs (-first +second):\n%s", diff)
	}
	c, ec := run(8)
	if cmp.Equal(truths(a), truths(c)) || cmp.Equal(ea, ec) {
		t.Error("seeds 7 and 8 give the same fleet")
	}
}

// TestDiurnalPeak: without noise, utilization peaks at 15:00 local time and bottoms out at
// 03:00, in China (UTC+8) and in Silicon Valley (UTC−8).
func TestDiurnalPeak(t *testing.T) {
	t.Parallel()
	spec := func(region string) Spec {
		return Spec{Groups: []Group{{
			Region: region, Arch: "arm64", CPUModel: "X", Hosts: 1, Sockets: 1, Cores: 4, IdleW: 10, PeakW: 20,
			Utilization: Utilization{Mean: 0.4, DiurnalAmplitude: 0.2},
		}}}
	}
	for _, c := range []struct {
		region           string
		peakUTC, lowUTC  int
		midUTCa, midUTCb int
	}{
		{"cn-hangzhou", 7, 19, 1, 13},
		{"us-west-1", 23, 11, 17, 5},
	} {
		hosts, err := NewHosts(spec(c.region), 1)
		if err != nil {
			t.Fatal(err)
		}
		h := hosts[0]
		at := func(hour int) float64 { return h.Utilization(day0.Add(time.Duration(hour) * time.Hour)) }
		for _, p := range []struct {
			hour int
			want float64
		}{{c.peakUTC, 0.6}, {c.lowUTC, 0.2}, {c.midUTCa, 0.4}, {c.midUTCb, 0.4}} {
			if got := at(p.hour); math.Abs(got-p.want) > 1e-12 {
				t.Errorf("%s: u at %02d:00 UTC = %v, want %v", c.region, p.hour, got, p.want)
			}
		}
	}
}

// TestEnergyMatchesTruth drives hosts through the collection and export path for a simulated
// day, without sensor noise, and checks the energy, busy CPU time and work they send against
// the truth integrated independently at 1 s resolution: within 0.1 %.
func TestEnergyMatchesTruth(t *testing.T) {
	t.Parallel()
	spec := Spec{Groups: []Group{
		{
			Region: "cn-hangzhou", Arch: "arm64", CPUModel: "Ampere Altra Q80-30", Hosts: 2, Sockets: 1, Cores: 80,
			IdleW: 54, PeakW: 140, Curve: Curve{Name: "teads"}, OpsPerCoreSecond: 1050,
			Utilization: Utilization{Mean: 0.35, DiurnalAmplitude: 0.25, Noise: 0.05},
		},
		{
			Region: "us-west-1", Arch: "amd64", CPUModel: "AMD EPYC 7763", Hosts: 2, Sockets: 2, Cores: 256,
			IdleW: 102, PeakW: 455, Curve: Curve{Points: [][]float64{{0, 0.2}, {0.3, 0.6}, {1, 1}}},
			Utilization: Utilization{Mean: 0.6, DiurnalAmplitude: 0.45, Noise: 0.1}, // clamps at 1
		},
	}}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	hosts, err := NewHosts(spec, 42)
	if err != nil {
		t.Fatal(err)
	}
	const step = 5 * time.Minute
	start := day0.Add(17*time.Second + 250*time.Millisecond) // off the noise knots
	opts := &Options{Version: "test", Interval: step}
	for _, h := range hosts {
		v := newVHost(h, opts, discard)
		v.begin(context.Background(), start)
		var energy, busy, ops float64
		for k := 1; k <= 288; k++ {
			rm := v.step(context.Background(), start.Add(time.Duration(k)*step))
			energy += sumMetric(rm, semconv.MetricEnergy)
			busy += busyTime(rm)
			ops += sumMetric(rm, semconv.MetricWork)
		}
		var wantE, wantU float64
		for s := range 86400 {
			u := h.Utilization(start.Add(time.Duration(s)*time.Second + 500*time.Millisecond))
			wantE += h.PowerW(u)
			wantU += u
		}
		wantBusy := wantU * float64(h.Group.Cores)
		for _, c := range []struct {
			what      string
			got, want float64
		}{
			{"energy J", energy, wantE},
			{"busy CPU s", busy, wantBusy},
			{"ops", ops, wantBusy * h.Group.OpsPerCoreSecond},
		} {
			if !near(c.got, c.want, 0.001) {
				t.Errorf("%s: %s over a day = %.1f, truth %.1f (%+.4f%%)", h.HostName, c.what, c.got, c.want, 100*(c.got/c.want-1))
			}
		}
		if integ := h.Integrate(start, start.Add(24*time.Hour)); !near(integ.EnergyJ, wantE, 0.001) {
			t.Errorf("%s: Integrate over a day = %.1f J, truth %.1f J", h.HostName, integ.EnergyJ, wantE)
		}
	}
}

// TestSensorNoise: readings scatter around the truth by about sensor_noise, and never run a
// counter backwards.
func TestSensorNoise(t *testing.T) {
	t.Parallel()
	spec := Spec{Groups: []Group{{
		Region: "cn-qingdao", Arch: "arm64", CPUModel: "X", Hosts: 1, Sockets: 1, Cores: 8, IdleW: 50, PeakW: 100,
		Utilization: Utilization{Mean: 0.5}, SensorNoise: 0.02,
	}}}
	hosts, err := NewHosts(spec, 3)
	if err != nil {
		t.Fatal(err)
	}
	h := hosts[0]
	v := newVHost(h, &Options{Version: "test", Interval: time.Minute}, discard)
	v.begin(context.Background(), day0)
	var sum, sum2 float64
	const n = 2000
	for k := 1; k <= n; k++ {
		t0, t1 := day0.Add(time.Duration(k-1)*time.Minute), day0.Add(time.Duration(k)*time.Minute)
		got := sumMetric(v.step(context.Background(), t1), semconv.MetricEnergy)
		r := got/h.Integrate(t0, t1).EnergyJ - 1
		sum += r
		sum2 += r * r
	}
	mean, sd := sum/n, math.Sqrt(sum2/n-(sum/n)*(sum/n))
	if math.Abs(mean) > 0.002 || math.Abs(sd-0.02) > 0.002 {
		t.Errorf("relative reading error: mean %.4f, sd %.4f; want about 0 and 0.02", mean, sd)
	}
}

// TestSampleAsTheAgentSendsIt checks one interval's metrics: the resource is the live agent's,
// the reading is the simulator's, primary, at the group's scope.
func TestSampleAsTheAgentSendsIt(t *testing.T) {
	t.Parallel()
	h := defaultHosts(t, 1)[1] // cn-hangzhou-amd64-02
	v := newVHost(h, &Options{Version: "v9", Interval: 5 * time.Minute}, discard)
	v.begin(context.Background(), day0)
	rm := v.step(context.Background(), day0.Add(5*time.Minute))

	res := map[string]string{}
	for _, kv := range rm.Resource.Attributes() {
		res[string(kv.Key)] = kv.Value.String()
	}
	want := map[string]string{
		semconv.AttrHostName: "cn-hangzhou-amd64-02", semconv.AttrHostArch: "amd64",
		semconv.AttrHostCPUModel: "AMD EPYC 7763 64-Core Processor", semconv.AttrSockets: "2",
		semconv.AttrCores: "128", semconv.AttrLogicalCPUs: "256", semconv.AttrThreadsPerCore: "2",
		semconv.AttrCloudRegion: "cn-hangzhou", semconv.AttrCloudZone: "cn-hangzhou-h",
		semconv.AttrServiceName: "fleetwatt-agent", semconv.AttrServiceVersion: "v9",
		semconv.AttrOSType: "linux", semconv.AttrAgentInterval: "300", semconv.AttrVirtual: "false",
		semconv.AttrNominalHz: "2.45e+09",
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("resource (-want +got):\n%s", diff)
	}
	var names []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		names = append(names, m.Name)
		if m.Name != semconv.MetricEnergy {
			continue
		}
		p := m.Data.(metricdata.Sum[float64]).DataPoints[0]
		for k, want := range map[attribute.Key]string{
			semconv.AttrSource: semconv.SourceSimulator, semconv.AttrScope: "wall",
			semconv.AttrPrimary: "true", semconv.AttrMethod: semconv.MethodMeasured,
		} {
			if v, _ := p.Attributes.Value(k); v.String() != want {
				t.Errorf("hw.energy %s = %q, want %q", k, v.String(), want)
			}
		}
		if !p.StartTime.Equal(day0) || !p.Time.Equal(day0.Add(5*time.Minute)) {
			t.Errorf("hw.energy from %v to %v", p.StartTime, p.Time)
		}
	}
	wantNames := []string{
		semconv.MetricEnergy, semconv.MetricPower, semconv.MetricCPUTime, semconv.MetricCPUUtilization,
		semconv.MetricCPUFrequency, semconv.MetricCPUIdleTime, semconv.MetricCPUIdleUsage, semconv.MetricWork,
	}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if got, want := export.Points(rm), pointsPerInterval(h); got != want {
		t.Errorf("%d points, pointsPerInterval says %d", got, want)
	}
}

// sumMetric adds up the values of the named metric's points.
func sumMetric(rm *metricdata.ResourceMetrics, name string) float64 {
	var sum float64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					sum += p.Value
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					sum += p.Value
				}
			}
		}
	}
	return sum
}

// busyTime is the CPU time of the busy modes in rm.
func busyTime(rm *metricdata.ResourceMetrics) float64 {
	var sum float64
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name != semconv.MetricCPUTime {
			continue
		}
		for _, p := range m.Data.(metricdata.Sum[float64]).DataPoints {
			if mode, _ := p.Attributes.Value(semconv.AttrCPUMode); semconv.Busy(mode.AsString()) {
				sum += p.Value
			}
		}
	}
	return sum
}

func newTestLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
