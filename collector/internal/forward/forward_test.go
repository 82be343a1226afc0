package forward

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.uber.org/goleak"

	"github.com/fleetwatt/fleetwatt/collector/internal/auth"
	"github.com/fleetwatt/fleetwatt/collector/internal/receive"
	"github.com/fleetwatt/fleetwatt/collector/internal/wal"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
	"github.com/fleetwatt/fleetwatt/internal/tlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	discard = slog.New(slog.DiscardHandler)
	t0      = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
)

// export returns one host's interval as an agent sends it: its resource and a power reading.
func export(host, region string, i int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(semconv.AttrHostName, host)
	rm.Resource().Attributes().PutStr(semconv.AttrCloudRegion, region)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(semconv.MetricPower)
	m.SetUnit("W")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * 10 * time.Second)))
	dp.SetDoubleValue(100 + float64(i))
	dp.Attributes().PutStr(semconv.AttrScope, "wall")
	return md
}

// key names a host's interval in what the central collector received.
func key(rm pmetric.ResourceMetrics) string {
	host, _ := rm.Resource().Attributes().Get(semconv.AttrHostName)
	dp := rm.ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0)
	return fmt.Sprintf("%s@%d", host.Str(), dp.Timestamp().AsTime().Sub(t0)/(10*time.Second))
}

// central is a real OTLP/HTTP receiver with TLS and region-bound tokens, recording what it
// is given; fail, when set, decides the answer to each request first.
type central struct {
	rcv *receive.Receiver
	url string
	ca  *tlstest.CA

	mu       sync.Mutex
	got      []string // key of every resource, in arrival order, duplicates included
	senders  []string // the principal of every request
	requests int
	fail     func(md pmetric.Metrics) (receive.Result, error)
}

func (c *central) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) (receive.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	if c.fail != nil {
		if res, err := c.fail(md); err != nil || res.RejectedDataPoints > 0 {
			return res, err
		}
	}
	p, _ := auth.FromContext(ctx)
	c.senders = append(c.senders, p.Name)
	for _, rm := range md.ResourceMetrics().All() {
		c.got = append(c.got, key(rm))
	}
	return receive.Result{}, nil
}

func (c *central) received() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

const regionToken = "region-a-5f1c2e9b7d3a"

func startCentral(t *testing.T, maxRequestBytes int64) *central {
	t.Helper()
	c := &central{ca: tlstest.NewCA(t, "central")}
	server := c.ca.Server(t, "central")
	sum := sha256.Sum256([]byte(regionToken))
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	yaml := fmt.Sprintf("tokens:\n  - {name: region-a-collector, sha256: %s, regions: [cn-hangzhou]}\n", hex.EncodeToString(sum[:]))
	if err := os.WriteFile(tokens, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	tk, err := auth.Load(tokens)
	if err != nil {
		t.Fatal(err)
	}
	c.rcv = receive.New(receive.Config{
		HTTPAddr: "127.0.0.1:0", MaxRequestBytes: maxRequestBytes, Auth: tk,
		TLS: receive.TLS{CertFile: server.CertFile, KeyFile: server.KeyFile},
	}, c, discard)
	if err := c.rcv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.rcv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	c.url = "https://" + c.rcv.HTTPAddr().String()
	return c
}

func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// regional is a forwarding collector's store: the log, its writer and drainer.
type regional struct {
	wal     *wal.WAL
	writer  *Writer
	drainer *Drainer
	dead    string
}

func startRegional(t *testing.T, endpoint string, client ClientOptions, dopts DrainerOptions) *regional {
	t.Helper()
	dir := t.TempDir()
	w, err := wal.Open(wal.Options{Dir: filepath.Join(dir, "wal"), SegmentBytes: 1 << 20, MaxBytes: 8 << 20, Kind: wal.KindOTLP}, discard)
	if err != nil {
		t.Fatal(err)
	}
	client.Endpoint = endpoint
	c, err := NewClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if dopts.MinBackoff == 0 {
		dopts.MinBackoff, dopts.MaxBackoff = time.Millisecond, 20*time.Millisecond
	}
	r := &regional{wal: w, writer: NewWriter(w, 1<<20), dead: filepath.Join(dir, "dead-letter.jsonl")}
	r.drainer = NewDrainer(w, c, dopts, discard)
	if err := r.drainer.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.drainer.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := w.Close(); err != nil {
			t.Error(err)
		}
		c.Close()
	})
	return r
}

func (r *regional) write(t *testing.T, hosts, intervals int) []string {
	t.Helper()
	var want []string
	for i := range intervals {
		for h := range hosts {
			md := export(fmt.Sprintf("hz-%02d", h), "cn-hangzhou", i)
			if err := r.writer.WriteMetrics(t.Context(), md); err != nil {
				t.Fatal(err)
			}
			want = append(want, key(md.ResourceMetrics().At(0)))
		}
	}
	return want
}

// drained waits until the log is empty and the drainer has sent n records.
func (r *regional) drained(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.wal.Stats().PendingBytes > 0 || r.drainer.Stats().SentRecords+r.drainer.Stats().DeadLetteredRecords < n {
		if time.Now().After(deadline) {
			t.Fatalf("not drained within 30s: wal %+v, drainer %+v", r.wal.Stats(), r.drainer.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// opts are the client options of a regional collector that trusts c and holds its token.
func (c *central) opts(t *testing.T) ClientOptions {
	return ClientOptions{TLS: TLS{CAFile: c.ca.CertFile}, TokenFile: tokenFile(t, regionToken)}
}

func (c *central) setFail(f func(md pmetric.Metrics) (receive.Result, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = f
}

// TestForwardInOrder: every accepted export reaches the central collector once, in order,
// with its resource unchanged, over TLS, authenticated by the regional collector's token,
// joined into few requests.
func TestForwardInOrder(t *testing.T) {
	t.Parallel()
	c := startCentral(t, 0)
	r := startRegional(t, c.url, c.opts(t), DrainerOptions{})
	want := r.write(t, 5, 40)
	r.drained(t, 200)
	if diff := cmp.Diff(want, c.received()); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
	s := r.drainer.Stats()
	if s.SentRecords != 200 || s.Retries != 0 || s.DeadLetteredRecords != 0 || s.Requests >= 200 || s.LastSuccess.IsZero() {
		t.Errorf("drainer stats %+v: want 200 records in fewer requests, no retry", s)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.senders {
		if p != "region-a-collector" {
			t.Fatalf("a request came from %q, want region-a-collector", p)
		}
	}
}

// TestRegionBoundToken: a region-bound token forwards its region's data, and another
// region's data is refused (403) and retried, never dropped, until the tokens file allows it.
func TestRegionBoundToken(t *testing.T) {
	t.Parallel()
	c := startCentral(t, 0)
	r := startRegional(t, c.url, c.opts(t), DrainerOptions{})
	if err := r.writer.WriteMetrics(t.Context(), export("bj-01", "cn-beijing", 0)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.drainer.Stats().Retries < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no retries of a forbidden request: %+v", r.drainer.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := c.rcv.Stats(); s.Forbidden < 3 {
		t.Errorf("central refusals %+v, want forbidden ≥ 3", s)
	}
	if got := c.received(); len(got) != 0 {
		t.Errorf("central took %v", got)
	}
	if s := r.wal.Stats(); s.PendingBytes == 0 {
		t.Error("the forbidden record left the log")
	}
}

// flakyProxy sits between the regional and the central collector and answers the first
// requests itself: 503 with Retry-After, 429, a dropped connection, and a request passed on
// whose answer is lost, so that it is sent again.
type flakyProxy struct {
	target   *httputil.ReverseProxy
	n        atomic.Int64
	lostAcks atomic.Int64
}

func (p *flakyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p.n.Add(1) {
	case 1:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	case 2:
		http.Error(w, "slow down", http.StatusTooManyRequests)
	case 3, 5:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	case 4:
		// Delivered, but the acknowledgement never comes back.
		rec := httptest.NewRecorder()
		p.target.ServeHTTP(rec, r)
		p.lostAcks.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	default:
		p.target.ServeHTTP(w, r)
	}
}

// TestRetriesUntilDelivered: unavailability, rate limiting, cut connections and a lost
// acknowledgement cost retries, never data; the request whose acknowledgement was lost
// arrives twice, identical, which the central collector's idempotent writes absorb.
func TestRetriesUntilDelivered(t *testing.T) {
	t.Parallel()
	c := startCentral(t, 0)
	target, err := url.Parse(c.url)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	tr := &http.Transport{TLSClientConfig: mustTLS(t, c)}
	rp.Transport = tr
	proxy := &flakyProxy{target: rp}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	t.Cleanup(tr.CloseIdleConnections)

	opts := c.opts(t) // a token over plain http, to a loopback proxy
	opts.TLS, opts.Timeout = TLS{}, 5*time.Second
	start := time.Now()
	r := startRegional(t, srv.URL, opts, DrainerOptions{})
	want := r.write(t, 3, 4)
	r.drained(t, 12)
	if time.Since(start) < time.Second {
		t.Errorf("drained in %s: the 503's Retry-After of 1s was not honoured", time.Since(start))
	}
	// The first request (whatever was in the log then) was delivered once without its
	// answer, then again.
	got := c.received()
	dup := len(got) - len(want)
	if dup < 1 || !slices.Equal(got[:dup], want[:dup]) || !slices.Equal(got[dup:], want) {
		t.Errorf("received %v\nwant a prefix of %v twice, then the rest", got, want)
	}
	if s := r.drainer.Stats(); s.Retries != 5 || s.SentRecords != 12 {
		t.Errorf("drainer stats %+v, want 5 retries and 12 records", s)
	}
	if proxy.lostAcks.Load() != 1 {
		t.Errorf("%d acknowledgements lost, want 1", proxy.lostAcks.Load())
	}
}

func mustTLS(t *testing.T, c *central) *tls.Config {
	t.Helper()
	cfg, err := TLS{CAFile: c.ca.CertFile}.clientConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestBadRecordIsDeadLettered: a 400 for one export among many splits the request until that
// export is alone; it goes to the dead-letter file as OTLP/JSON, and everything else arrives.
func TestBadRecordIsDeadLettered(t *testing.T) {
	t.Parallel()
	c := startCentral(t, 0)
	c.setFail(func(md pmetric.Metrics) (receive.Result, error) {
		for _, rm := range md.ResourceMetrics().All() {
			if key(rm) == "hz-01@2" {
				return receive.Result{}, receive.Permanent(errors.New("field type conflict"))
			}
		}
		return receive.Result{}, nil
	})
	r := startRegional(t, c.url, c.opts(t), DrainerOptions{})
	want := r.write(t, 4, 5)
	r.drained(t, 20)
	want = slices.DeleteFunc(want, func(k string) bool { return k == "hz-01@2" })
	if diff := cmp.Diff(want, c.received()); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
	if s := r.drainer.Stats(); s.DeadLetteredRecords != 1 || s.SentRecords != 19 || s.Retries != 0 {
		t.Errorf("drainer stats %+v, want 1 dead-lettered, 19 sent, no retry", s)
	}
	entries := readDead(t, r.dead)
	if len(entries) != 1 {
		t.Fatalf("dead-letter file holds %d entries, want 1", len(entries))
	}
	e := entries[0]
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalJSON(e.OTLP); err != nil {
		t.Fatalf("dead-lettered record is not OTLP/JSON: %v\n%s", err, e.OTLP)
	}
	if k := key(req.Metrics().ResourceMetrics().At(0)); e.Status != 400 || k != "hz-01@2" || !strings.Contains(e.Reason, "field type conflict") {
		t.Errorf("dead letter: status %d, record %s, reason %q", e.Status, k, e.Reason)
	}
}

func readDead(t *testing.T, path string) []deadLetterEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []deadLetterEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e deadLetterEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("dead-letter line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// TestTooLargeIsSplit: a central collector taking small requests only (413) gets the joined
// records in halves, a record of many resources split between them, and a single resource it
// can never take goes to the dead-letter file.
func TestTooLargeIsSplit(t *testing.T) {
	t.Parallel()
	c := startCentral(t, 2000)
	opts := c.opts(t)
	opts.Compression = CompressionNone
	r := startRegional(t, c.url, opts, DrainerOptions{})
	want := r.write(t, 3, 10)
	// One export of 12 resources, over 2000 bytes: split between its resources.
	big := pmetric.NewMetrics()
	for h := range 12 {
		md := export(fmt.Sprintf("big-%02d", h), "cn-hangzhou", 0)
		md.ResourceMetrics().MoveAndAppendTo(big.ResourceMetrics())
		want = append(want, fmt.Sprintf("big-%02d@0", h))
	}
	if err := r.writer.WriteMetrics(t.Context(), big); err != nil {
		t.Fatal(err)
	}
	// One resource over 2000 bytes: no split helps.
	huge := export("huge", "cn-hangzhou", 0)
	huge.ResourceMetrics().At(0).Resource().Attributes().PutStr("padding", strings.Repeat("x", 3000))
	if err := r.writer.WriteMetrics(t.Context(), huge); err != nil {
		t.Fatal(err)
	}
	r.drained(t, 32)
	if diff := cmp.Diff(want, c.received()); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
	if s := r.drainer.Stats(); s.DeadLetteredRecords != 1 || s.Retries != 0 {
		t.Errorf("drainer stats %+v, want 1 dead-lettered, no retry", s)
	}
	if e := readDead(t, r.dead); len(e) != 1 || e[0].Status != http.StatusRequestEntityTooLarge {
		t.Errorf("dead letters %+v, want the one 413", e)
	}
}

// TestPartialSuccessIsCounted: data points the central collector leaves out are counted, not
// sent again.
func TestPartialSuccessIsCounted(t *testing.T) {
	t.Parallel()
	c := startCentral(t, 0)
	c.setFail(func(pmetric.Metrics) (receive.Result, error) {
		return receive.Result{RejectedDataPoints: 1, ErrorMessage: "time too old"}, nil
	})
	r := startRegional(t, c.url, c.opts(t), DrainerOptions{MaxRequestBytes: 1})
	r.write(t, 1, 3)
	r.drained(t, 3)
	if s := r.drainer.Stats(); s.RejectedDataPoints != 3 || s.Requests != 3 || s.Retries != 0 {
		t.Errorf("drainer stats %+v, want 3 rejected data points in 3 requests", s)
	}
}

// TestDrainsAcrossRestart: what was accepted while the central collector was away is sent by
// the next process, from the checkpoint.
func TestDrainsAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := wal.Open(wal.Options{Dir: dir, SegmentBytes: 1 << 20, MaxBytes: 8 << 20, Kind: wal.KindOTLP}, discard)
	if err != nil {
		t.Fatal(err)
	}
	wr := NewWriter(w, 1<<20)
	var want []string
	for i := range 5 {
		md := export("hz-01", "cn-hangzhou", i)
		if err := wr.WriteMetrics(t.Context(), md); err != nil {
			t.Fatal(err)
		}
		want = append(want, key(md.ResourceMetrics().At(0)))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c := startCentral(t, 0)
	w, err = wal.Open(wal.Options{Dir: dir, SegmentBytes: 1 << 20, MaxBytes: 8 << 20, Kind: wal.KindOTLP}, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	opts := c.opts(t)
	opts.Endpoint = c.url
	client, err := NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	d := NewDrainer(w, client, DrainerOptions{DeadLetterPath: filepath.Join(t.TempDir(), "dead.jsonl")}, discard)
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := &regional{wal: w, drainer: d}
	r.drained(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, c.received()); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
}

// TestWriterSplitsLargeRequests: a request larger than a record may be is stored as several
// records of whole resources, which join back into the same request.
func TestWriterSplitsLargeRequests(t *testing.T) {
	t.Parallel()
	md := pmetric.NewMetrics()
	for h := range 50 {
		export(fmt.Sprintf("hz-%02d", h), "cn-hangzhou", h).ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
	}
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := splitRequest(b, len(b)/4)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 4 || len(recs) > 6 {
		t.Errorf("%d bytes split at %d into %d records, want 4 to 6", len(b), len(b)/4, len(recs))
	}
	for _, r := range recs {
		if len(r) > len(b)/4 {
			t.Errorf("a record of %d bytes, over the %d limit", len(r), len(b)/4)
		}
	}
	if got := join(recs); string(got) != string(b) {
		t.Error("the records do not join back into the request")
	}
	if _, err := splitRequest(b, 10); err == nil || !strings.Contains(err.Error(), "one resource's metrics take") {
		t.Errorf("splitRequest with a resource over the limit = %v", err)
	}
}

// TestWriterFull: a full log refuses with a *wal.FullError (retry later), and nothing is
// half-written.
func TestWriterFull(t *testing.T) {
	t.Parallel()
	w, err := wal.Open(wal.Options{Dir: t.TempDir(), SegmentBytes: 1 << 10, MaxBytes: 2 << 10, Kind: wal.KindOTLP}, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	wr := NewWriter(w, 1<<10)
	var full *wal.FullError
	for i := range 100 {
		err := wr.WriteMetrics(t.Context(), export("hz-01", "cn-hangzhou", i))
		if errors.As(err, &full) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if full == nil || full.RetryAfter != wal.DefaultRetryAfter {
		t.Fatalf("no *wal.FullError after 100 writes into 2 KiB: %v", full)
	}
	if err := w.Ready(); !errors.Is(err, wal.ErrFull) {
		t.Errorf("Ready of a full log = %v, want ErrFull", err)
	}
}

func TestNewClient(t *testing.T) {
	t.Parallel()
	tok := tokenFile(t, "s3cret")
	bad := tokenFile(t, "two words")
	tests := []struct {
		name string
		opts ClientOptions
		url  string // want, or
		err  string // the error's start
	}{
		{"path added", ClientOptions{Endpoint: "http://127.0.0.1:4318"}, "http://127.0.0.1:4318/v1/metrics", ""},
		{"path kept", ClientOptions{Endpoint: "https://central:443/otlp/v1/metrics"}, "https://central:443/otlp/v1/metrics", ""},
		{"token to loopback", ClientOptions{Endpoint: "http://localhost:4318", TokenFile: tok}, "http://localhost:4318/v1/metrics", ""},
		{"token in clear", ClientOptions{Endpoint: "http://central:4318", TokenFile: tok}, "", "forward: the token would cross the network in clear"},
		{"tls over http", ClientOptions{Endpoint: "http://central:4318", TLS: TLS{CAFile: tok}}, "", "forward: tls settings need an https:// endpoint"},
		{"bad token", ClientOptions{Endpoint: "https://central:4318", TokenFile: bad}, "", "forward token file " + bad + ": the token holds a space"},
		{"no scheme", ClientOptions{Endpoint: "central:4318"}, "", "forward endpoint \"central:4318\": want http:// or https://"},
		{"credentials", ClientOptions{Endpoint: "https://u:p@central:4318"}, "", "forward endpoint https://u:xxxxx@central:4318: credentials in the URL"},
		{"compression", ClientOptions{Endpoint: "https://central:4318", Compression: "zstd"}, "", "forward: compression \"zstd\""},
	}
	for _, tt := range tests {
		c, err := NewClient(tt.opts)
		switch {
		case tt.err != "":
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("%s: NewClient = %v, want %q...", tt.name, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%s: the error shows the token", tt.name)
			}
		case err != nil:
			t.Errorf("%s: NewClient = %v", tt.name, err)
		default:
			if c.URL() != tt.url {
				t.Errorf("%s: URL %s, want %s", tt.name, c.URL(), tt.url)
			}
			c.Close()
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"Sat, 01 Mar 2025 12:00:30 GMT": 30 * time.Second,
		"Sat, 01 Mar 2025 11:00:00 GMT": 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

// TestUnreachableIsRetried: nothing listening is a retryable failure.
func TestUnreachableIsRetried(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := startRegional(t, "http://"+addr, ClientOptions{}, DrainerOptions{})
	r.write(t, 1, 1)
	deadline := time.Now().Add(10 * time.Second)
	for r.drainer.Stats().Retries < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no retries: %+v", r.drainer.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r.wal.Stats().PendingBytes == 0 {
		t.Error("the record left the log")
	}
}
