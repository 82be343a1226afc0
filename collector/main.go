// Command fleetwatt-collector receives OTLP metrics from fleetwatt agents and from any
// OpenTelemetry SDK or Collector (gRPC :4317, HTTP :4318), converts them to fleetwatt's InfluxDB
// schema and writes them into InfluxDB, acknowledging each export only once it is stored.
//
//	fleetwatt-collector [flags]              run the collector
//	fleetwatt-collector status [flags]       show the hosts InfluxDB heard from recently
//	fleetwatt-collector report [flags]       the efficiency report (docs/report.md)
//	fleetwatt-collector rollup [flags]       compute the hourly rollups of a range
//	fleetwatt-collector version              print the version
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/auth"
	"github.com/fleetwatt/fleetwatt/collector/internal/chart"
	"github.com/fleetwatt/fleetwatt/collector/internal/config"
	"github.com/fleetwatt/fleetwatt/collector/internal/forward"
	"github.com/fleetwatt/fleetwatt/collector/internal/hosts"
	"github.com/fleetwatt/fleetwatt/collector/internal/influx"
	"github.com/fleetwatt/fleetwatt/collector/internal/pipeline"
	"github.com/fleetwatt/fleetwatt/collector/internal/receive"
	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
	"github.com/fleetwatt/fleetwatt/collector/internal/report"
	"github.com/fleetwatt/fleetwatt/collector/internal/rollup"
	"github.com/fleetwatt/fleetwatt/collector/internal/wal"
	"github.com/fleetwatt/fleetwatt/collector/internal/web"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
)

// version is stamped at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

// writeFlushers is how many InfluxDB writes run at once; each carries the points of every
// export that arrived while the previous one was in flight.
const writeFlushers = 2

// shutdownTimeout bounds a graceful shutdown: in-flight writes finishing, connections closing.
const shutdownTimeout = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `fleetwatt-collector receives OpenTelemetry (OTLP) metrics from fleetwatt agents and from any
OpenTelemetry SDK or Collector, and writes them into InfluxDB.

Usage:
  fleetwatt-collector [flags]           run the collector until SIGINT or SIGTERM
  fleetwatt-collector status [flags]    print the hosts seen in InfluxDB recently, with their
                                        utilization and average power per scope
  fleetwatt-collector report [flags]    the efficiency report: per region, arch and CPU model,
                                        and ARM vs x86 at matched utilization
  fleetwatt-collector rollup [flags]    compute the hourly rollups of a range (after a backfill)
  fleetwatt-collector plan [flags]      the capacity plan: move a share of a region's load from
                                        one pool of hosts to another; kWh, USD, t CO2e a year
  fleetwatt-collector version           print the version

The InfluxDB token is read from influx.token_file (--influx-token-file), else from
$FLEETWATT_INFLUX_TOKEN, else from $INFLUX_TOKEN; never from the command line.
Flags override the configuration file; see collector.example.yaml for every key.

Flags:
`

// cli runs the command line args and returns the process's exit code.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Fprintln(stdout, "fleetwatt-collector", version)
			return 0
		case "status":
			return statusCmd(ctx, args[1:], stdout, stderr)
		case "report":
			return reportCmd(ctx, args[1:], stdout, stderr)
		case "rollup":
			return rollupCmd(ctx, args[1:], stdout, stderr)
		case "plan":
			return planCmd(ctx, args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("fleetwatt-collector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "configuration file (YAML); defaults apply without one")
	showVersion := fs.Bool("version", false, "print the version and exit")
	overrides := configFlags(fs, true)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "fleetwatt-collector", version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fleetwatt-collector: unknown command %q (want status, report, rollup or version)\n", fs.Arg(0))
		return 2
	}
	cfg, err := loadConfig(*configPath, fs, overrides)
	if err != nil {
		fmt.Fprintf(stderr, "fleetwatt-collector: %v\n", err)
		return 2
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "fleetwatt-collector: %v\n", err)
		return 2
	}
	if err := run(ctx, cfg, log); err != nil {
		log.Error("fleetwatt-collector failed", "error", err)
		return 1
	}
	return 0
}

// configFlags declares the flags that override configuration keys, keyed by flag name. With
// all set, it declares the run command's flags; otherwise only the InfluxDB ones.
func configFlags(fs *flag.FlagSet, all bool) map[string]func(*config.Config, string) {
	def := config.DefaultConfig()
	set := map[string]func(*config.Config, string){}
	str := func(name, value, help string, apply func(*config.Config, string)) {
		fs.String(name, value, help)
		set[name] = apply
	}
	str("influx-url", def.Influx.URL, "InfluxDB base URL (influx.url)", func(c *config.Config, v string) { c.Influx.URL = v })
	str("influx-bucket", def.Influx.Bucket, `bucket; on InfluxDB 1.8 "db" or "db/rp" (influx.bucket)`, func(c *config.Config, v string) { c.Influx.Bucket = v })
	str("influx-org", def.Influx.Org, "InfluxDB 2.x organization (influx.org)", func(c *config.Config, v string) { c.Influx.Org = v })
	str("influx-token-file", "", "file holding the InfluxDB token (influx.token_file)", func(c *config.Config, v string) { c.Influx.TokenFile = v })
	if all {
		str("otlp-grpc", def.OTLP.GRPC, `OTLP/gRPC listen address, "" disables (otlp.grpc)`, func(c *config.Config, v string) { c.OTLP.GRPC = v })
		str("otlp-http", def.OTLP.HTTP, `OTLP/HTTP listen address, "" disables (otlp.http)`, func(c *config.Config, v string) { c.OTLP.HTTP = v })
		str("listen", def.Listen, "address of the web page (/), /healthz, /readyz, /metrics and the API: /api/v1/report, plan, hosts, charts (listen)", func(c *config.Config, v string) { c.Listen = v })
		fs.Duration("rollup-every", def.Rollup.Every, "how often to recompute the hourly rollups of the last 3 hours and the daily ones of their days; 0 disables (rollup.every)")
		set["rollup-every"] = func(c *config.Config, v string) { c.Rollup.Every, _ = time.ParseDuration(v) }
		fs.Duration("self-metrics-every", def.SelfMetrics.Every, "how often to store the collector's own counters in InfluxDB; 0 disables (self_metrics.every)")
		set["self-metrics-every"] = func(c *config.Config, v string) { c.SelfMetrics.Every, _ = time.ParseDuration(v) }
		str("regions", "", "CSV file of regional factors overriding the shipped table (regions_file)", func(c *config.Config, v string) { c.RegionsFile = v })
		str("log-level", def.Log.Level, "debug, info, warn or error (log.level)", func(c *config.Config, v string) { c.Log.Level = v })
		str("tls-cert", "", "certificate of the OTLP receivers and the listener, PEM (tls.cert_file)", func(c *config.Config, v string) { c.TLS.CertFile = v })
		str("tls-key", "", "its private key, PEM (tls.key_file)", func(c *config.Config, v string) { c.TLS.KeyFile = v })
		str("tls-client-ca", "", "CA of the agents' certificates: mutual TLS on the receivers (tls.client_ca_file)", func(c *config.Config, v string) { c.TLS.ClientCAFile = v })
		str("wal-dir", "", "write-ahead log directory: exports are acknowledged once on disk there; \"\" acknowledges once in InfluxDB (wal.dir)", func(c *config.Config, v string) { c.WAL.Dir = v })
		str("auth-tokens-file", "", "bearer tokens (SHA-256) and the regions each may write; see docs/security.md (auth.tokens_file)", func(c *config.Config, v string) { c.Auth.TokensFile = v })
		str("forward-endpoint", "", "forward accepted exports to this central collector's OTLP/HTTP URL instead of writing InfluxDB, through the WAL (needs --wal-dir) (forward.endpoint)", func(c *config.Config, v string) { c.Forward.Endpoint = v })
		str("forward-token-file", "", "file holding the bearer token for the central collector (forward.token_file)", func(c *config.Config, v string) { c.Forward.TokenFile = v })
		str("forward-ca", "", "CA of the central collector's certificate, PEM; default the system roots (forward.tls.ca_file)", func(c *config.Config, v string) { c.Forward.TLS.CAFile = v })
		str("forward-cert", "", "client certificate for a central collector that requires mutual TLS, PEM (forward.tls.cert_file)", func(c *config.Config, v string) { c.Forward.TLS.CertFile = v })
		str("forward-key", "", "its private key, PEM (forward.tls.key_file)", func(c *config.Config, v string) { c.Forward.TLS.KeyFile = v })
		fs.Duration("forward-timeout", def.Forward.Timeout, "bound on one request to the central collector (forward.timeout)")
		set["forward-timeout"] = func(c *config.Config, v string) { c.Forward.Timeout, _ = time.ParseDuration(v) }
	}
	return set
}

// loadConfig loads the file (or the defaults), applies the flags set on the command line, and
// validates the result.
func loadConfig(path string, fs *flag.FlagSet, overrides map[string]func(*config.Config, string)) (config.Config, error) {
	cfg := config.DefaultConfig()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return cfg, err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		if apply, ok := overrides[f.Name]; ok {
			apply(&cfg, f.Value.String())
		}
	})
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	level, err := config.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// run runs the collector until ctx ends, then shuts down gracefully: the receivers stop
// accepting, requests in flight finish their writes (everything acknowledged is in InfluxDB),
// and the writer closes.
func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	token, err := cfg.Influx.Token(os.Getenv)
	if err != nil {
		return err
	}
	mx := newMetrics()
	w, err := influx.New(influx.Options{
		URL: cfg.Influx.URL, Token: token, Org: cfg.Influx.Org, Bucket: cfg.Influx.Bucket, Latency: mx.influxLatency,
	})
	if err != nil {
		return err
	}
	defer w.Close()
	factors, err := regions.Load(cfg.RegionsFile)
	if err != nil {
		return err
	}
	q := &influxql.Client{URL: cfg.Influx.URL, Token: token}
	var (
		p          *pipeline.Pipeline
		store      pipeline.Writer // nil when forwarding
		retryAfter time.Duration
		closeStore func()
		ready      pinger = w
	)
	if cfg.Forwarding() {
		var fw pipeline.MetricsWriter
		if fw, ready, closeStore, err = newForwarder(ctx, cfg, mx, log); err != nil {
			return err
		}
		p, retryAfter = pipeline.NewForwarding(fw, log, pipelineOptions(cfg.Limits)), wal.DefaultRetryAfter
	} else {
		if store, retryAfter, closeStore, err = newStore(ctx, cfg.WAL, w, mx, log); err != nil {
			return err
		}
		p = pipeline.NewWithOptions(store, log, pipelineOptions(cfg.Limits))
	}
	// Deferred after w.Close, so it runs before it; after the receivers have stopped, so
	// every request they accepted is stored first.
	defer closeStore()
	rtls := receive.TLS{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, ClientCAFile: cfg.TLS.ClientCAFile}
	// An interface, not a *auth.Tokens: a nil pointer inside it would not be nil.
	var authn receive.Authenticator
	var tokens *auth.Tokens
	if cfg.Auth.TokensFile != "" {
		if tokens, err = auth.Load(cfg.Auth.TokensFile); err != nil {
			return err
		}
		authn = tokens
	}
	// SIGHUP (systemctl reload) reloads the tokens file; without one it must not stop us.
	stopReload := reloadOnHUP(ctx, tokens, log)
	defer stopReload()
	rcv := receive.New(receive.Config{
		GRPCAddr: cfg.OTLP.GRPC, HTTPAddr: cfg.OTLP.HTTP, TLS: rtls, Auth: authn, RetryAfter: retryAfter,
	}, p, log)
	mx.pipeline, mx.receiver = p, rcv
	if store != nil && cfg.SelfMetrics.Every > 0 {
		// A forwarding collector's own counters stay on its /metrics: sent on, they would
		// carry no cloud.region, which a central collector's region-bound token refuses.
		stopSelfReport := selfReport(ctx, mx, store, cfg.SelfMetrics.Every, log)
		defer stopSelfReport()
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen for health endpoints on %s: %w", cfg.Listen, err)
	}
	// The listener gets the certificate but not the client CA, so that probes of load
	// balancers and kubelets keep working under mutual TLS.
	if htls, err := (receive.TLS{CertFile: rtls.CertFile, KeyFile: rtls.KeyFile}).ServerConfig(); err != nil {
		ln.Close()
		return err
	} else if htls != nil {
		ln = tls.NewListener(ln, htls)
	}
	if err := rcv.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	var roller *rollup.Runner
	if cfg.Rollup.Every > 0 && !cfg.Forwarding() { // the central collector computes them
		rlog := log.With("component", "rollup")
		r := rollup.New(q, w, cfg.Influx.Bucket, rlog)
		r.Regions = factors // cost_usd and co2e_kg beside the energy, for InfluxQL dashboards
		roller = rollup.NewRunner(r.Rollup, cfg.Rollup.Every, 0, rlog)
		roller.Start(ctx)
	}
	api := map[string]http.Handler{
		// A month of a large fleet takes InfluxDB seconds to sum: the handler's own
		// timeout bounds the query, not the client's default 30 s.
		"GET /api/v1/report": &report.Handler{
			Querier: &influxql.Client{URL: cfg.Influx.URL, Token: token, HTTP: noTimeout()},
			Bucket:  cfg.Influx.Bucket, Regions: factors, Log: log,
		},
		"GET /api/v1/plan": &planHandler{
			q:      &influxql.Client{URL: cfg.Influx.URL, Token: token, HTTP: noTimeout()},
			bucket: cfg.Influx.Bucket, factors: factors,
		},
		"GET /api/v1/charts/{file}": &chart.Handler{
			Querier: &influxql.Client{URL: cfg.Influx.URL, Token: token, HTTP: noTimeout()},
			Bucket:  cfg.Influx.Bucket, Regions: factors, Log: log,
		},
		"GET /api/v1/hosts": &hosts.Handler{Querier: &influxql.Client{URL: cfg.Influx.URL, Token: token, HTTP: noTimeout()}, Bucket: cfg.Influx.Bucket, Log: log},
		"GET /metrics":      mx.handler(),
		"GET /":             web.Handler(),
	}
	health := &http.Server{Handler: httpHandler(ready, api), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- health.Serve(ln) }()

	log.Info("fleetwatt-collector started", "version", version,
		"otlp_grpc", addrString(rcv.GRPCAddr()), "otlp_http", addrString(rcv.HTTPAddr()),
		"listen", ln.Addr().String(), "influx_url", cfg.Influx.URL, "influx_bucket", cfg.Influx.Bucket,
		"influx_token", token != "", "rollup_every", cfg.Rollup.Every.String(), "forward_endpoint", cfg.Forward.Endpoint)
	if !cfg.Forwarding() {
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := w.Ping(pingCtx); err != nil {
			log.Warn("influxdb does not answer yet; exports are refused as retryable until it does", "error", err)
		}
		cancel()
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", shutdownTimeout.String())
	case err := <-serveErr:
		runErr = fmt.Errorf("health endpoints on %s: %w", cfg.Listen, err)
	}

	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer scancel()
	errs := []error{runErr}
	if err := rcv.Shutdown(sctx); err != nil {
		errs = append(errs, err)
	}
	if roller != nil {
		if err := roller.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("stop rollups: %w", err))
		}
	}
	if err := health.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("shut down health endpoints: %w", err))
	}
	if runErr == nil {
		// Serve returns http.ErrServerClosed once Shutdown has run; anything else was
		// already reported through runErr.
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("health endpoints: %w", err))
		}
	}
	s := p.Stats()
	log.Info("fleetwatt-collector stopped", "requests", s.Requests, "data_points", s.DataPoints,
		"data_points_rejected", s.DataPointsRejected, "points_written", s.PointsWritten,
		"write_failures", s.WriteFailures, "permanent_failures", s.PermanentFailures,
		"points_refused", s.PointsRefused, "unauthenticated", rcv.Stats().Unauthenticated,
		"forbidden", rcv.Stats().Forbidden)
	return errors.Join(errs...)
}

// newStore returns where accepted exports go: the write-ahead log, drained into InfluxDB by
// its own goroutine, when cfg has a directory; else InfluxDB directly, concurrent exports
// sharing writes. retryAfter is what refused senders are asked to wait. closeStore stops the
// drainer and closes the log, or flushes and stops the batcher. The log, its writer and its
// drainer are put in mx for /metrics.
func newStore(ctx context.Context, cfg config.WAL, w *influx.Writer, mx *metrics, log *slog.Logger) (store pipeline.Writer, retryAfter time.Duration, closeStore func(), err error) {
	if cfg.Dir == "" {
		batcher := pipeline.NewBatcher(w, influx.MaxLines, writeFlushers, shutdownTimeout)
		return batcher, 0, batcher.Close, nil
	}
	wlog := log.With("component", "wal")
	wl, err := wal.Open(wal.Options{
		Dir: cfg.Dir, MaxBytes: cfg.MaxBytes, SegmentBytes: cfg.SegmentBytes, SyncInterval: cfg.SyncInterval,
	}, wlog)
	if err != nil {
		return nil, 0, nil, err
	}
	drainer := wal.NewDrainer(wl, w, wal.DrainerOptions{DeadLetterPath: cfg.DeadLetter}, wlog)
	if err := drainer.Start(ctx); err != nil {
		wl.Close()
		return nil, 0, nil, err
	}
	wlog.Info("write-ahead log open: exports are acknowledged once on disk", "dir", cfg.Dir, "max_bytes", cfg.MaxBytes)
	ww := wal.NewWriter(wl)
	mx.wal, mx.walWriter, mx.drainer = wl, ww, drainer
	return ww, wal.DefaultRetryAfter, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if err := drainer.Shutdown(sctx); err != nil {
			wlog.Warn("drainer stopped before the log was empty; the rest is written at the next start", "error", err)
		}
		if err := wl.Close(); err != nil {
			wlog.Error("close the write-ahead log", "error", err)
		}
	}, nil
}

// newForwarder opens the write-ahead log for OTLP records and starts the drainer that sends
// them to the central collector: accepted exports go to mw, durable once it returns; the
// collector is ready while the log takes appends. closeStore stops the drainer and closes the
// log. A log still holding line protocol (this collector wrote InfluxDB until now) is refused:
// that cannot be sent over OTLP.
func newForwarder(ctx context.Context, cfg config.Config, mx *metrics, log *slog.Logger) (mw pipeline.MetricsWriter, ready pinger, closeStore func(), err error) {
	flog := log.With("component", "forwarder")
	client, err := forward.NewClient(forward.ClientOptions{
		Endpoint: cfg.Forward.Endpoint, TokenFile: cfg.Forward.TokenFile, Timeout: cfg.Forward.Timeout,
		TLS:         forward.TLS{CAFile: cfg.Forward.TLS.CAFile, CertFile: cfg.Forward.TLS.CertFile, KeyFile: cfg.Forward.TLS.KeyFile},
		Compression: cfg.Forward.Compression, UserAgent: "fleetwatt-collector/" + version, Latency: mx.forwardLatency,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	wl, err := wal.Open(wal.Options{
		Dir: cfg.WAL.Dir, MaxBytes: cfg.WAL.MaxBytes, SegmentBytes: cfg.WAL.SegmentBytes, SyncInterval: cfg.WAL.SyncInterval,
		Kind: wal.KindOTLP,
	}, log.With("component", "wal"))
	if err != nil {
		return nil, nil, nil, err
	}
	if n := wl.PendingBytes(wal.KindLineProtocol); n > 0 {
		wl.Close()
		return nil, nil, nil, fmt.Errorf("forward: the write-ahead log %s still holds %d bytes of line protocol for InfluxDB, which cannot be forwarded: "+
			"start once without forward.endpoint until fleetwatt_collector_wal_pending_bytes is 0, then forward", cfg.WAL.Dir, n)
	}
	drainer := forward.NewDrainer(wl, client, forward.DrainerOptions{
		DeadLetterPath: cfg.WAL.DeadLetter, MaxBackoff: cfg.Forward.MaxBackoff,
	}, log)
	if err := drainer.Start(ctx); err != nil {
		wl.Close()
		return nil, nil, nil, err
	}
	flog.Info("forwarding to the central collector through the write-ahead log: exports are acknowledged once on disk",
		"endpoint", client.URL(), "wal_dir", cfg.WAL.Dir, "max_bytes", cfg.WAL.MaxBytes, "token", cfg.Forward.TokenFile != "")
	fw := forward.NewWriter(wl, cfg.WAL.SegmentBytes)
	mx.wal, mx.forwardWriter, mx.forwarder = wl, fw, drainer
	return fw, walReady{wl}, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if err := drainer.Shutdown(sctx); err != nil {
			flog.Warn("forwarder stopped before the log was empty; the rest is sent at the next start", "error", err)
		}
		if err := wl.Close(); err != nil {
			flog.Error("close the write-ahead log", "error", err)
		}
		client.Close()
	}, nil
}

// walReady is /readyz of a forwarding collector: ready while the log takes appends, whether
// or not the central collector answers, since an export is acknowledged once on disk.
type walReady struct{ w *wal.WAL }

func (r walReady) Ping(context.Context) error { return r.w.Ready() }

// reloadOnHUP reloads the tokens file on SIGHUP until ctx ends; a broken file keeps the old
// tokens. With no tokens (nil) a SIGHUP is logged and otherwise ignored, never fatal. The
// returned func stops it.
func reloadOnHUP(ctx context.Context, tokens *auth.Tokens, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if tokens == nil {
					log.Info("SIGHUP: nothing to reload (no auth.tokens_file)")
					continue
				}
				if err := tokens.Reload(); err != nil {
					log.Error("reload of the tokens file failed; the previous tokens stay in force", "error", err)
				} else {
					log.Info("tokens file reloaded", "tokens", tokens.Len())
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return "disabled"
	}
	return a.String()
}

// pinger is what /readyz needs of the writer.
type pinger interface {
	Ping(ctx context.Context) error
}

// httpHandler serves the health endpoints and the API: api maps a pattern
// ("GET /api/v1/report") to its handler.
func httpHandler(p pinger, api map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	addHealth(mux, p)
	for pattern, h := range api {
		mux.Handle(pattern, h)
	}
	return mux
}

// healthHandler serves the health endpoints alone.
func healthHandler(p pinger) http.Handler { return httpHandler(p, nil) }

// addHealth adds GET /healthz (200 while the process runs) and GET /readyz (200 when
// p answers: InfluxDB, or a forwarding collector's write-ahead log; 503 with the reason
// otherwise: a load balancer should then send exports elsewhere).
func addHealth(mux *http.ServeMux, p pinger) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
}
