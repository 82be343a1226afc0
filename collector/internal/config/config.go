// Package config is fleetwatt-collector's configuration: a YAML file (collector.example.yaml
// shows every key) over built-in defaults, checked as a whole so that one run reports every
// problem. The InfluxDB token never comes from the command line: it is read from a file, or
// from $FLEETWATT_INFLUX_TOKEN, or from $INFLUX_TOKEN.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the collector's configuration.
type Config struct {
	Influx Influx `yaml:"influx"`
	OTLP   OTLP   `yaml:"otlp"`
	// Listen is the address of the collector's own HTTP endpoints (/healthz, /readyz,
	// /api/v1/report).
	Listen string `yaml:"listen"`
	Log    Log    `yaml:"log"`
	Rollup Rollup `yaml:"rollup"`
	// SelfMetrics stores the collector's own counters in InfluxDB.
	SelfMetrics SelfMetrics `yaml:"self_metrics"`
	// RegionsFile is a CSV file of regional factors (price, carbon intensity, PUE) that
	// replaces or adds to the shipped table for reports; "" uses the shipped table.
	RegionsFile string `yaml:"regions_file"`
	// TLS serves the OTLP receivers and the HTTP listener over TLS (docs/security.md).
	TLS TLS `yaml:"tls"`
	// Auth requires a bearer token on every export.
	Auth Auth `yaml:"auth"`
	// WAL keeps accepted exports on disk until InfluxDB has them.
	WAL WAL `yaml:"wal"`
	// Limits bound what a sender may write (docs/operations.md).
	Limits Limits `yaml:"limits"`
	// Forward makes this a regional collector that sends what it accepts on to a central
	// collector, through the write-ahead log, instead of writing InfluxDB.
	Forward Forward `yaml:"forward"`
}

// Forward configures forwarding to a central collector over OTLP/HTTP (docs/operations.md,
// "Several regions"). With an endpoint, accepted exports are appended to the write-ahead log
// (wal.dir is required) and a drainer sends them on; InfluxDB is then only queried, by the
// report and plan APIs, and not written (rollups are the central collector's).
type Forward struct {
	// Endpoint is the central collector's OTLP/HTTP URL, "https://central.example.com:4318";
	// /v1/metrics is used when it has no path. "" disables forwarding.
	Endpoint string `yaml:"endpoint"`
	// TokenFile holds the bearer token the central collector knows this collector by (in
	// its auth.tokens_file, bound to this region). Never on the command line.
	TokenFile string `yaml:"token_file"`
	// TLS verifies the central collector (https:// endpoints) and, for mutual TLS, presents
	// this collector's certificate.
	TLS ForwardTLS `yaml:"tls"`
	// Timeout bounds one request to the central collector.
	Timeout time.Duration `yaml:"timeout"`
	// Compression of the requests: gzip or none.
	Compression string `yaml:"compression"`
	// MaxBackoff bounds the wait between retries (full jitter from 1s doubling up to it);
	// a Retry-After from the central collector is honoured if longer.
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// ForwardTLS is what a forwarding collector needs to reach the central one over TLS.
type ForwardTLS struct {
	// CAFile holds the CA certificates the central collector's certificate must chain to;
	// "" means the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are this collector's client certificate, when the central
	// collector requires mutual TLS (its tls.client_ca_file).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Limits bound what the collector accepts from a sender. Data points beyond them are
// rejected, counted and reported back in the OTLP partial success. A 0 turns that limit off.
type Limits struct {
	// MaxSeriesPerToken is how many distinct series (measurement + tag set) each token (or,
	// without auth, all senders together) may write per SeriesWindow.
	MaxSeriesPerToken int `yaml:"max_series_per_token"`
	// SeriesWindow is how long a series stays counted after its last point (1 to 2 windows).
	SeriesWindow time.Duration `yaml:"series_window"`
	// MaxFuture is how far ahead of the collector's clock a timestamp may be.
	MaxFuture time.Duration `yaml:"max_future"`
	// MaxAge is how far behind the collector's clock a timestamp may be; keep it within the
	// InfluxDB retention policy.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxPowerW is the largest power one sensor may report (W).
	MaxPowerW float64 `yaml:"max_power_w"`
}

// WAL configures the write-ahead log. Without a directory the collector acknowledges an export
// once InfluxDB has stored it (agents keep what is not acknowledged); with one, once it is on
// the collector's disk, so a long InfluxDB outage backs up here and not on every agent.
type WAL struct {
	// Dir holds the log; "" disables it.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the log; when full, exports are refused with "try later".
	MaxBytes int64 `yaml:"max_bytes"`
	// SegmentBytes is the size of one log file.
	SegmentBytes int64 `yaml:"segment_bytes"`
	// SyncInterval batches fsyncs: appends within it share one. 0 fsyncs every append.
	SyncInterval time.Duration `yaml:"sync_interval"`
	// DeadLetter receives the lines InfluxDB refuses for good (400, 422); "" means
	// dead-letter.jsonl beside the log's directory.
	DeadLetter string `yaml:"dead_letter"`
}

// TLS is the collector's certificate and, for mutual TLS, the CA of the agents' certificates.
type TLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// Auth configures the bearer tokens agents send.
type Auth struct {
	// TokensFile lists the tokens (as SHA-256 hashes) and the regions each may write;
	// reloaded on SIGHUP. Empty: no authentication.
	TokensFile string `yaml:"tokens_file"`
}

// SelfMetrics configures how the collector stores its own counters (the /metrics
// exposition) in InfluxDB, as measurements fleetwatt_collector_*, for the health dashboard.
type SelfMetrics struct {
	// Every is how often; 0 disables it (a forwarding collector never stores them).
	Every time.Duration `yaml:"every"`
}

// Rollup configures the hourly per-host rollups (measurement host_1h) reports read.
type Rollup struct {
	// Every is how often the collector recomputes the rollups of the last few hours; 0
	// disables it (another collector, or `fleetwatt-collector rollup`, does it).
	Every time.Duration `yaml:"every"`
}

// Influx says where points are written.
type Influx struct {
	URL string `yaml:"url"`
	// Bucket is the 2.x bucket, or on 1.8 the database ("fleetwatt") or "database/retention".
	Bucket string `yaml:"bucket"`
	Org    string `yaml:"org"` // 2.x organization; 1.x ignores it
	// TokenFile holds the token (2.x API token, 1.x "user:password"); when empty the token
	// comes from $FLEETWATT_INFLUX_TOKEN or $INFLUX_TOKEN.
	TokenFile string `yaml:"token_file"`
}

// OTLP says where the OTLP receivers listen; an empty address disables that receiver.
type OTLP struct {
	GRPC string `yaml:"grpc"`
	HTTP string `yaml:"http"`
}

// Log configures the log: level debug|info|warn|error, format text|json.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Token environment variables, in the order they are tried.
const (
	EnvToken       = "FLEETWATT_INFLUX_TOKEN"
	EnvInfluxToken = "INFLUX_TOKEN"
)

// DefaultConfig returns the configuration used when the file and the flags leave a key out.
func DefaultConfig() Config {
	return Config{
		Influx:      Influx{URL: "http://127.0.0.1:8086", Bucket: "fleetwatt"},
		OTLP:        OTLP{GRPC: ":4317", HTTP: ":4318"},
		Listen:      ":8090",
		Log:         Log{Level: "info", Format: "text"},
		Rollup:      Rollup{Every: 5 * time.Minute},
		SelfMetrics: SelfMetrics{Every: 30 * time.Second},
		WAL:         WAL{MaxBytes: 8 << 30, SegmentBytes: 64 << 20, SyncInterval: 10 * time.Millisecond},
		Limits: Limits{
			MaxSeriesPerToken: 100_000, SeriesWindow: 24 * time.Hour,
			MaxFuture: 10 * time.Minute, MaxAge: 90 * 24 * time.Hour, MaxPowerW: 1e6,
		},
		Forward: Forward{Timeout: 30 * time.Second, Compression: "gzip", MaxBackoff: 30 * time.Second},
	}
}

// Load reads the YAML file at path over the defaults. Unknown keys are errors. It does not
// validate; call Validate once the flags are applied.
func Load(path string) (Config, error) {
	cfg := DefaultConfig()
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("parse config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate returns every problem in c, each prefixed by its YAML path.
func (c Config) Validate() error {
	var errs []error
	add := func(path string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	add("influx.url", checkURL(c.Influx.URL))
	if strings.TrimSpace(c.Influx.Bucket) == "" {
		add("influx.bucket", errors.New(`empty: name the bucket (on InfluxDB 1.8, the database: "fleetwatt" or "fleetwatt/autogen")`))
	}
	if c.Influx.TokenFile != "" {
		if _, err := os.Stat(c.Influx.TokenFile); err != nil {
			add("influx.token_file", err)
		}
	}
	if c.OTLP.GRPC == "" && c.OTLP.HTTP == "" {
		add("otlp", errors.New("both grpc and http are empty: enable at least one receiver"))
	}
	if c.OTLP.GRPC != "" {
		add("otlp.grpc", checkAddr(c.OTLP.GRPC))
	}
	if c.OTLP.HTTP != "" {
		add("otlp.http", checkAddr(c.OTLP.HTTP))
	}
	add("listen", checkAddr(c.Listen))
	if _, err := ParseLevel(c.Log.Level); err != nil {
		add("log.level", err)
	}
	if c.Rollup.Every < 0 {
		add("rollup.every", fmt.Errorf("%s: want a positive duration, or 0 to disable", c.Rollup.Every))
	} else if c.Rollup.Every > 0 && c.Rollup.Every < time.Second {
		add("rollup.every", fmt.Errorf("%s: want at least 1s", c.Rollup.Every))
	}
	if c.SelfMetrics.Every < 0 {
		add("self_metrics.every", fmt.Errorf("%s: want a positive duration, or 0 to disable", c.SelfMetrics.Every))
	} else if c.SelfMetrics.Every > 0 && c.SelfMetrics.Every < time.Second {
		add("self_metrics.every", fmt.Errorf("%s: want at least 1s", c.SelfMetrics.Every))
	}
	if c.RegionsFile != "" {
		if _, err := os.Stat(c.RegionsFile); err != nil {
			add("regions_file", err)
		}
	}
	if c.WAL.Dir != "" {
		if c.WAL.SegmentBytes < 1<<20 {
			add("wal.segment_bytes", fmt.Errorf("%d: want at least 1 MiB", c.WAL.SegmentBytes))
		}
		if c.WAL.MaxBytes < 2*c.WAL.SegmentBytes {
			add("wal.max_bytes", fmt.Errorf("%d: want at least twice wal.segment_bytes", c.WAL.MaxBytes))
		}
		if c.WAL.SyncInterval < 0 {
			add("wal.sync_interval", errors.New("negative"))
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls", errors.New("cert_file and key_file go together"))
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		add("tls.client_ca_file", errors.New("mutual TLS needs the collector's own cert_file and key_file too"))
	}
	for _, f := range []struct{ path, file string }{
		{"tls.cert_file", c.TLS.CertFile},
		{"tls.key_file", c.TLS.KeyFile},
		{"tls.client_ca_file", c.TLS.ClientCAFile},
		{"auth.tokens_file", c.Auth.TokensFile},
	} {
		if f.file != "" {
			if _, err := os.Stat(f.file); err != nil {
				add(f.path, err)
			}
		}
	}
	l := c.Limits
	for _, f := range []struct {
		path     string
		negative bool
	}{
		{"limits.max_series_per_token", l.MaxSeriesPerToken < 0},
		{"limits.series_window", l.SeriesWindow < 0},
		{"limits.max_future", l.MaxFuture < 0},
		{"limits.max_age", l.MaxAge < 0},
		{"limits.max_power_w", l.MaxPowerW < 0 || math.IsNaN(l.MaxPowerW)},
	} {
		if f.negative {
			add(f.path, errors.New("negative: want a positive value, or 0 to turn the limit off"))
		}
	}
	if l.MaxSeriesPerToken > 0 && l.SeriesWindow >= 0 && l.SeriesWindow < time.Minute {
		add("limits.series_window", fmt.Errorf("%s: want at least 1m with max_series_per_token", l.SeriesWindow))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add("log.format", fmt.Errorf("%q: want text or json", c.Log.Format))
	}
	errs = append(errs, c.Forward.validate(c.WAL)...)
	return errors.Join(errs...)
}

// Forwarding reports whether the collector forwards to a central one.
func (c Config) Forwarding() bool { return c.Forward.Endpoint != "" }

// validate returns the forward section's problems, prefixed by their YAML paths.
func (f Forward) validate(w WAL) []error {
	var errs []error
	add := func(path string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("forward.%s: %w", path, err))
		}
	}
	if f.Endpoint == "" {
		if f.TokenFile != "" || f.TLS != (ForwardTLS{}) {
			add("endpoint", errors.New("empty, but token_file or tls is set: name the central collector's OTLP/HTTP URL (--forward-endpoint)"))
		}
		return errs
	}
	u, err := url.Parse(f.Endpoint)
	switch {
	case err != nil:
		add("endpoint", err)
	case u.Scheme != "http" && u.Scheme != "https":
		add("endpoint", fmt.Errorf("%q: want the central collector's OTLP/HTTP URL, http:// or https://", f.Endpoint))
	case u.Host == "":
		add("endpoint", fmt.Errorf("%q: no host", f.Endpoint))
	case u.User != nil:
		add("endpoint", fmt.Errorf("%s: no credentials in the URL; use token_file", u.Redacted()))
	case u.Scheme == "http" && f.TLS != (ForwardTLS{}):
		add("tls", fmt.Errorf("set, but the endpoint %s is plain http://; use https://", f.Endpoint))
	}
	if w.Dir == "" {
		add("endpoint", errors.New("forwarding goes through the write-ahead log: set wal.dir (--wal-dir) too"))
	}
	if (f.TLS.CertFile == "") != (f.TLS.KeyFile == "") {
		add("tls", errors.New("cert_file and key_file go together"))
	}
	for _, p := range []struct{ path, file string }{
		{"token_file", f.TokenFile},
		{"tls.ca_file", f.TLS.CAFile},
		{"tls.cert_file", f.TLS.CertFile},
		{"tls.key_file", f.TLS.KeyFile},
	} {
		if p.file != "" {
			if _, err := os.Stat(p.file); err != nil {
				add(p.path, err)
			}
		}
	}
	if f.Timeout < time.Second {
		add("timeout", fmt.Errorf("%s: want at least 1s", f.Timeout))
	}
	if f.MaxBackoff < time.Second {
		add("max_backoff", fmt.Errorf("%s: want at least 1s", f.MaxBackoff))
	}
	if f.Compression != "gzip" && f.Compression != "none" {
		add("compression", fmt.Errorf("%q: want gzip or none", f.Compression))
	}
	return errs
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: want http:// or https://", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	return nil
}

func checkAddr(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q: want host:port or :port: %w", s, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: bad port %q", s, port)
	}
	return nil
}

// ParseLevel parses a log level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q: want debug, info, warn or error", s)
	}
	return l, nil
}

// Token returns the InfluxDB token: the content of token_file (surrounding space trimmed),
// else $FLEETWATT_INFLUX_TOKEN, else $INFLUX_TOKEN, else "" (no authentication). getenv is
// os.Getenv outside tests.
func (i Influx) Token(getenv func(string) string) (string, error) {
	if i.TokenFile != "" {
		b, err := os.ReadFile(i.TokenFile)
		if err != nil {
			return "", fmt.Errorf("read influx.token_file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if t := getenv(EnvToken); t != "" {
		return t, nil
	}
	return getenv(EnvInfluxToken), nil
}
