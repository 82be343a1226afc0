// Package benchdata holds the inputs of the collector's benchmarks: OTLP exports exactly as
// fleetwatt agents send them, for fleets of any size.
//
// testdata/fleet.binpb is one OTLP/protobuf ExportMetricsServiceRequest holding twelve hosts'
// exports, one of each group of the simulator's default fleet (agent/internal/simulate,
// default.yaml: six regions, x86 and ARM pools), captured as the agent's exporter sent them
// over OTLP/HTTP: simulate.Run backfilling one 10 s interval ending 2026-03-09T12:00:00Z,
// seed 1, each request body saved by a test server. Each is one host and one interval:
// hw.energy and hw.power of the wall sensor, system.cpu.time of the 7 modes,
// system.cpu.utilization and fleetwatt.work.operations (11 data points, about 2.1 kB of
// protobuf), which the collector stores as 4 InfluxDB points (power, cpu, work, host).
//
// Larger fleets reuse the twelve: host i is a copy of capture i mod 12, renamed and with
// its readings scaled by a few per mille, so that no two hosts send the same bytes.
package benchdata

import (
	_ "embed"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

//go:embed testdata/fleet.binpb
var fleetProto []byte

// captured is the end of the captured interval: every data point's time.
var captured = time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC)

// PointsPerHost is the number of InfluxDB points (lines) the collector stores for one host's
// export: power, cpu, work and host.
const PointsPerHost = 4

// Fleet makes exports of a fleet of hosts.
type Fleet struct {
	captured pmetric.ResourceMetricsSlice
}

// New returns a Fleet built on the captured exports.
func New() (*Fleet, error) {
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(fleetProto); err != nil {
		return nil, fmt.Errorf("decode testdata/fleet.binpb: %w", err)
	}
	return &Fleet{captured: req.Metrics().ResourceMetrics()}, nil
}

// Metrics returns one export request of n hosts, first to first+n−1, each with the readings
// of the 10 s interval ending at end.
func (f *Fleet) Metrics(first, n int, end time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rms := md.ResourceMetrics()
	rms.EnsureCapacity(n)
	shift := end.Sub(captured)
	for i := first; i < first+n; i++ {
		rm := rms.AppendEmpty()
		f.captured.At(i % f.captured.Len()).CopyTo(rm)
		attrs := rm.Resource().Attributes()
		if v, ok := attrs.Get(semconv.AttrHostName); ok {
			// "cn-hangzhou-amd64-01" → "cn-hangzhou-amd64-00042"
			name := v.Str()
			name = name[:strings.LastIndexByte(name, '-')+1]
			v.SetStr(fmt.Sprintf("%s%05d", name, i))
		}
		scale := 1 + float64(i%97)/1000
		eachPoint(rm, func(dp pmetric.NumberDataPoint) {
			dp.SetStartTimestamp(dp.StartTimestamp() + pcommon.Timestamp(shift))
			dp.SetTimestamp(dp.Timestamp() + pcommon.Timestamp(shift))
			if dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
				dp.SetDoubleValue(dp.DoubleValue() * scale)
			}
		})
	}
	return md
}

// Requests returns the OTLP/protobuf bodies of the exports of hosts hosts from first on,
// perRequest hosts to a request (the last may hold fewer), readings ending at end.
func (f *Fleet) Requests(first, hosts, perRequest int, end time.Time) ([][]byte, error) {
	var bodies [][]byte
	for i := first; i < first+hosts; i += perRequest {
		md := f.Metrics(i, min(perRequest, first+hosts-i), end)
		b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, b)
	}
	return bodies, nil
}

// eachPoint calls fn for every number data point of rm: the agent sends nothing else.
func eachPoint(rm pmetric.ResourceMetrics, fn func(pmetric.NumberDataPoint)) {
	sms := rm.ScopeMetrics()
	for i := range sms.Len() {
		ms := sms.At(i).Metrics()
		for j := range ms.Len() {
			var dps pmetric.NumberDataPointSlice
			switch m := ms.At(j); m.Type() {
			case pmetric.MetricTypeSum:
				dps = m.Sum().DataPoints()
			case pmetric.MetricTypeGauge:
				dps = m.Gauge().DataPoints()
			default:
				continue
			}
			for k := range dps.Len() {
				fn(dps.At(k))
			}
		}
	}
}
