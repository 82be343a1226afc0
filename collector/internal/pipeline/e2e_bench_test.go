package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/fleetwatt/fleetwatt/collector/internal/benchdata"
	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/collector/internal/receive"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
)

// Parameters of BenchmarkEndToEndVsDirect.
const (
	// e2eHosts is one round: every host's export of one interval, 4 points each; enough
	// exports of 100 hosts to keep the senders busy well past the first burst.
	e2eHosts = 12500
	// e2eWriters is how many InfluxDB writes are in flight at most on either side: the
	// collector's Batcher flushers (collector/main.go's writeFlushers) and the direct client's
	// goroutines.
	e2eWriters = 2
	// e2eSenders is how many exports are sent at once: the receiver's default MaxInFlight,
	// the most it takes at once (more would be answered "busy"), so the collector runs flat
	// out.
	e2eSenders = receive.DefaultMaxInFlight
)

// BenchmarkEndToEndVsDirect compares, against one real influxd, the collector's path with
// the influxdb-client-go client writing the very same points directly, and reports both
// rates and their ratio:
//
//   - collector-points/s: OTLP/HTTP exports (protobuf bodies encoded beforehand, so that a
//     sender costs only its HTTP exchange) POSTed by e2eSenders concurrent senders to a
//     running receiver → pipeline (decode, convert, series limit) → Batcher (group commit,
//     e2eWriters flushers, at most influx.MaxLines points a write) → influx.Writer →
//     InfluxDB, each export acknowledged only once its points are stored; no write-ahead log.
//   - direct-points/s: the client's best practice for bulk writes: WriteAPIBlocking.WritePoint
//     with batches of 5,000 points (influx.MaxLines) from e2eWriters goroutines, gzip on and
//     ms precision as the collector's writer; the points are built beforehand (by the
//     collector's own conversion, which is what makes them the same points).
//   - ratio: collector-points/s ÷ direct-points/s.
//   - collector-points/write: the collector's average write, which decides how hard InfluxDB
//     works for each point (influxd spends about half the CPU on a point in requests of
//     5,000 as in requests of 500).
//   - collector-cpu-us/point and direct-cpu-us/point: this process's CPU time (user + system)
//     while each side ran, per point: on the collector's side the receiver, pipeline and
//     writer, and also the senders' HTTP requests; on the direct side the client's encoding,
//     compression and requests. Unlike the rates, they hardly move when other programs load
//     the machine.
//
// A point is one InfluxDB point (one line of line protocol). Both sides write the same
// number of points with the same timestamps, each into its own database of the same server,
// with at most the same number of writes in flight; rounds alternate which side goes first,
// so that drifts of the shared machine touch both alike. The check at the end reads the
// points back. On a machine of few cores the collector and InfluxDB share the CPU, so the
// ratio also measures the collector's CPU per point against the client's.
//
// hosts-per-request=100 is a relay's or a batching SDK's export: the Batcher's writes hold up
// to 12 exports, 4,800 points. hosts-per-request=1 is the fleetwatt agent's: a write holds at
// most the exports in flight, e2eSenders of 4 points, so InfluxDB gets requests of about a
// hundred points and the collector's cost per export (HTTP, decoding) weighs on every 4
// points. (With the write-ahead log, which this benchmark leaves out, the drainer writes
// requests of 5,000 lines whatever the exports' size.)
func BenchmarkEndToEndVsDirect(b *testing.B) {
	s := influxtest.Start(b)
	fleet, err := benchdata.New()
	if err != nil {
		b.Fatal(err)
	}
	for _, perRequest := range []int{100, 1} {
		b.Run(fmt.Sprintf("hosts-per-request=%d", perRequest), func(b *testing.B) {
			directDB := fmt.Sprintf("direct_%d", perRequest)
			collectorDB := fmt.Sprintf("collector_%d", perRequest)
			for _, db := range []string{directDB, collectorDB} {
				if _, err := s.Client().Query(b.Context(), "", "CREATE DATABASE "+influxql.QuoteIdent(db)); err != nil {
					b.Fatal(err)
				}
			}
			direct := newDirect(b, s.URL, directDB)
			col := startCollector(b, s.URL, collectorDB)

			// Rounds of e2eHosts hosts' exports, 10 s apart, ending an hour ago: within the
			// conversion's bounds and never the same point twice.
			start := time.Now().Add(-time.Hour).Truncate(time.Hour)
			round := func(k int) (bodies [][]byte, points []*write.Point) {
				end := start.Add(time.Duration(k) * 10 * time.Second)
				bodies, err := fleet.Requests(0, e2eHosts, perRequest, end)
				if err != nil {
					b.Fatal(err)
				}
				points, _ = convert.Convert(fleet.Metrics(0, e2eHosts, end))
				return bodies, points
			}
			// A first round warms both up: connections, shards, series.
			bodies, points := round(0)
			direct.write(b, points)
			col.send(b, bodies)
			col.writes.Store(0)

			var directTime, collectorTime, directCPU, collectorCPU time.Duration
			rounds := 0
			for b.Loop() {
				rounds++
				b.StopTimer()
				bodies, points := round(rounds)
				b.StartTimer()
				sides := []func(){
					func() {
						cpu := cpuTime(b)
						directTime += direct.write(b, points)
						directCPU += cpuTime(b) - cpu
					},
					func() {
						cpu := cpuTime(b)
						collectorTime += col.send(b, bodies)
						collectorCPU += cpuTime(b) - cpu
					},
				}
				if rounds%2 == 0 {
					sides[0], sides[1] = sides[1], sides[0]
				}
				for _, side := range sides {
					side()
				}
			}
			want := (rounds + 1) * e2eHosts * benchdata.PointsPerHost
			if got := col.p.Stats().PointsWritten; got != int64(want) {
				b.Fatalf("the collector wrote %d points, want %d", got, want)
			}
			for _, db := range []string{directDB, collectorDB} {
				series, err := s.Client().Query(b.Context(), db, `SELECT count(energy_j) AS n FROM power`)
				if err != nil {
					b.Fatal(err)
				}
				if len(series) != 1 || series[0].Rows()[0]["n"] != float64((rounds+1)*e2eHosts) {
					b.Fatalf("%s holds %+v power points, want %d", db, series, (rounds+1)*e2eHosts)
				}
			}
			measured := float64(rounds * e2eHosts * benchdata.PointsPerHost)
			d, c := measured/directTime.Seconds(), measured/collectorTime.Seconds()
			b.ReportMetric(d, "direct-points/s")
			b.ReportMetric(c, "collector-points/s")
			b.ReportMetric(c/d, "ratio")
			b.ReportMetric(measured/float64(col.writes.Load()), "collector-points/write")
			b.ReportMetric(float64(collectorCPU.Nanoseconds())/1e3/measured, "collector-cpu-us/point")
			b.ReportMetric(float64(directCPU.Nanoseconds())/1e3/measured, "direct-cpu-us/point")
		})
	}
}

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// direct writes points with influxdb-client-go as its documentation advises for bulk writes.
type direct struct {
	api interface {
		WritePoint(ctx context.Context, points ...*write.Point) error
	}
}

func newDirect(b *testing.B, url, db string) *direct {
	opts := influxdb2.DefaultOptions().
		SetUseGZip(true).
		SetPrecision(time.Millisecond).
		SetBatchSize(influx.MaxLines).
		SetLogLevel(0)
	client := influxdb2.NewClientWithOptions(url, "", opts)
	b.Cleanup(client.Close)
	return &direct{api: client.WriteAPIBlocking("", db+"/autogen")}
}

// write writes points in batches of influx.MaxLines from e2eWriters goroutines and returns
// how long it took.
func (d *direct) write(b *testing.B, points []*write.Point) time.Duration {
	batches := make(chan []*write.Point, len(points)/influx.MaxLines+1)
	for len(points) > 0 {
		n := min(influx.MaxLines, len(points))
		batches <- points[:n]
		points = points[n:]
	}
	close(batches)
	start := time.Now()
	var wg sync.WaitGroup
	for range e2eWriters {
		wg.Go(func() {
			for batch := range batches {
				if err := d.api.WritePoint(context.Background(), batch...); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// collector is the collector's path without a write-ahead log, as collector/main.go wires it.
type collector struct {
	p      *Pipeline
	writes *writeCounter
	url    string
	client *http.Client
}

// writeCounter counts the writer's requests to InfluxDB: an influx.Observer of their latency.
type writeCounter struct{ atomic.Int64 }

func (c *writeCounter) Observe(float64) { c.Add(1) }

func startCollector(b *testing.B, url, db string) *collector {
	log := slog.New(slog.DiscardHandler)
	writes := &writeCounter{}
	w, err := influx.New(influx.Options{URL: url, Bucket: db + "/autogen", Timeout: 30 * time.Second, Latency: writes})
	if err != nil {
		b.Fatal(err)
	}
	batcher := NewBatcher(w, influx.MaxLines, e2eWriters, 30*time.Second)
	p := New(batcher, log)
	r := receive.New(receive.Config{HTTPAddr: "127.0.0.1:0"}, p, log)
	if err := r.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := r.Shutdown(context.Background()); err != nil {
			b.Error(err)
		}
		batcher.Close()
		w.Close()
	})
	return &collector{
		p: p, writes: writes, url: "http://" + r.HTTPAddr().String() + receive.MetricsPath,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: e2eSenders}},
	}
}

// send POSTs bodies from e2eSenders goroutines, each waiting for its export's answer, and
// returns how long it took.
func (c *collector) send(b *testing.B, bodies [][]byte) time.Duration {
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range e2eSenders {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(bodies)); i = next.Add(1) - 1 {
				if err := c.export(bodies[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

func (c *collector) export(body []byte) error {
	resp, err := c.client.Post(c.url, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("export: HTTP %d: %s", resp.StatusCode, answer)
	}
	res := pmetricotlp.NewExportResponse()
	if err := res.UnmarshalProto(answer); err != nil {
		return err
	}
	if ps := res.PartialSuccess(); ps.RejectedDataPoints() != 0 {
		return fmt.Errorf("export: %d data points rejected: %s", ps.RejectedDataPoints(), ps.ErrorMessage())
	}
	return nil
}
