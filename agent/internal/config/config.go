// Package config holds the agent's configuration: defaults, then a YAML file, then environment
// variables, then command-line flags, each overriding the one before.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the agent's configuration. The YAML keys are the field tags.
type Config struct {
	// Root is the filesystem root holding sys/ and proc/: "/" on a host, "/host" in a
	// container that mounts the host's.
	Root string `yaml:"root"`
	// Endpoint is the collector's OTLP URL. Empty: OTEL_EXPORTER_OTLP_[METRICS_]ENDPOINT,
	// else localhost.
	Endpoint string `yaml:"endpoint"`
	// Protocol is "grpc" or "http/protobuf".
	Protocol string `yaml:"protocol"`
	// Interval between collections.
	Interval Duration `yaml:"interval"`
	// Temporality of the counters sent: "delta" or "cumulative".
	Temporality string `yaml:"temporality"`
	// Region, Zone and Datacenter place the host (cloud.region, cloud.availability_zone).
	Region     string `yaml:"region"`
	Zone       string `yaml:"zone"`
	Datacenter string `yaml:"datacenter"`
	// HostName overrides the host's name.
	HostName string `yaml:"host_name"`
	// PerCPU adds CPU time per logical CPU (one series per CPU) to the host totals.
	PerCPU bool `yaml:"per_cpu"`
	// QueueBytes bounds the data kept in memory while the collector is unreachable.
	QueueBytes int64 `yaml:"queue_bytes"`
	// Spool keeps batches on disk while the collector is unreachable.
	Spool Spool `yaml:"spool"`
	// TLS says how to verify an https:// collector and which client certificate to show.
	TLS TLS `yaml:"tls"`
	// TokenFile holds the bearer token sent to the collector (docs/security.md).
	TokenFile string `yaml:"token_file"`
	// Sources configures the power sources.
	Sources Sources `yaml:"sources"`
	// Log configures the agent's own log.
	Log Log `yaml:"log"`
	// MetricsListen is the address ("127.0.0.1:9464") of the agent's own /metrics, in the
	// Prometheus text format; "" serves none.
	MetricsListen string `yaml:"metrics_listen"`
}

// TLS configures the connection to an https:// collector. Its certificate is verified against
// the system's roots, or CAFile; InsecureSkipVerify turns verification off (tests only).
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Spool configures the disk spool: batches the collector does not take are kept in Dir,
// survive a restart of the agent, and are sent, oldest first, when it answers again.
type Spool struct {
	// Dir is the spool's directory, created if missing (mode 0700); "" keeps unsent data in
	// memory only (QueueBytes), lost when the agent stops.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the spool's disk use; beyond it the oldest batches are dropped and
	// counted.
	MaxBytes int64 `yaml:"max_bytes"`
}

// DefaultSpoolBytes is the default bound of the spool: a day of one host at 10 s with room
// to spare. A batch of the 2-socket Intel fixture (RAPL packages, DRAM, psys, the ACPI meter,
// CPU time, frequency and idle states, host totals) is 5.3 KiB of OTLP, 8 KiB on disk; a day
// is 8,640 batches, 68 MiB. 128 MiB holds about 45 h of such a host; per_cpu multiplies a
// batch by 3 (16 CPUs) to 10 (80 CPUs), so raise it with per_cpu on large hosts.
// export's TestSpoolDefaultHoldsADay keeps this honest.
const DefaultSpoolBytes = 128 << 20

// Sources configures the power sources. Every source the host has is read unless disabled;
// the BMC over Redfish only when a URL is given, the model only when nothing is measured.
type Sources struct {
	// Disable lists sources not to read: rapl, hwmon, acpi, ipmi, redfish, nvml, model.
	Disable []string `yaml:"disable"`
	IPMI    IPMI     `yaml:"ipmi"`
	Redfish Redfish  `yaml:"redfish"`
	Model   Model    `yaml:"model"`
}

// IPMI configures the BMC's DCMI power reading through ipmitool or freeipmi.
type IPMI struct {
	// Command is the tool to run: "" looks up ipmitool, then ipmi-dcmi.
	Command string   `yaml:"command"`
	Timeout Duration `yaml:"timeout"`
}

// Redfish configures the BMC over HTTPS.
type Redfish struct {
	// URL is the BMC's base URL, "https://10.0.0.5"; empty leaves Redfish off.
	URL string `yaml:"url"`
	// CredentialsFile holds "username:password" on one line; it must not be readable by
	// others.
	CredentialsFile string `yaml:"credentials_file"`
	// CAFile verifies the BMC's certificate; Insecure skips verification (a last resort).
	CAFile   string   `yaml:"ca_file"`
	Insecure bool     `yaml:"insecure"`
	Timeout  Duration `yaml:"timeout"`
}

// Model configures the estimate used when nothing measures the host's power.
type Model struct {
	// IdleW and PeakW override the shipped table for this host's CPU (both > 0), W.
	IdleW float64 `yaml:"idle_w"`
	PeakW float64 `yaml:"peak_w"`
	// Curve is the shape between idle and peak: linear or teads.
	Curve string `yaml:"curve"`
}

// SourceNames are the sources Disable may name.
var SourceNames = []string{"rapl", "hwmon", "acpi", "ipmi", "redfish", "nvml", "model"}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Default returns the defaults.
func Default() Config {
	return Config{
		Root:        "/",
		Protocol:    "grpc",
		Interval:    Duration(10 * time.Second),
		Temporality: "delta",
		QueueBytes:  64 << 20,
		Spool:       Spool{MaxBytes: DefaultSpoolBytes},
		Sources: Sources{
			IPMI:    IPMI{Timeout: Duration(5 * time.Second)},
			Redfish: Redfish{Timeout: Duration(5 * time.Second)},
			Model:   Model{Curve: "linear"},
		},
		Log: Log{Level: "info", Format: "text"},
	}
}

// Duration is a time.Duration written as "15s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses "15s", "1m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 10s or 1m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as "15s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// Set parses a flag value.
func (d *Duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 10s or 1m", s)
	}
	*d = Duration(v)
	return nil
}

// Load reads the YAML file at path over the defaults. Unknown keys are errors.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// ApplyEnv applies environment variables: FLEETWATT_<KEY> for every key (FLEETWATT_ENDPOINT,
// FLEETWATT_REGION, ...), and the standard OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL and
// OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE when the FLEETWATT_ ones are unset.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	str := func(dst *string, keys ...string) {
		for _, k := range keys {
			if v := getenv(k); v != "" {
				*dst = v
				return
			}
		}
	}
	str(&c.Root, "FLEETWATT_ROOT")
	str(&c.Endpoint, "FLEETWATT_ENDPOINT")
	str(&c.Protocol, "FLEETWATT_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	var pref string
	str(&pref, "FLEETWATT_TEMPORALITY", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE")
	if pref != "" {
		// "lowmemory" asks for delta counters, which is what it means for our instruments.
		c.Temporality = strings.Replace(strings.ToLower(pref), "lowmemory", "delta", 1)
	}
	str(&c.Region, "FLEETWATT_REGION")
	str(&c.Zone, "FLEETWATT_ZONE")
	str(&c.Datacenter, "FLEETWATT_DATACENTER")
	str(&c.HostName, "FLEETWATT_HOST_NAME")
	str(&c.Spool.Dir, "FLEETWATT_SPOOL_DIR")
	str(&c.TokenFile, "FLEETWATT_TOKEN_FILE")
	str(&c.TLS.CAFile, "FLEETWATT_TLS_CA_FILE")
	str(&c.Log.Level, "FLEETWATT_LOG_LEVEL")
	str(&c.Log.Format, "FLEETWATT_LOG_FORMAT")
	str(&c.MetricsListen, "FLEETWATT_METRICS_LISTEN")
	var errs []error
	if v := getenv("FLEETWATT_INTERVAL"); v != "" {
		if err := c.Interval.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("FLEETWATT_INTERVAL: %w", err))
		}
	}
	if v := getenv("FLEETWATT_PER_CPU"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("FLEETWATT_PER_CPU: %q is not true or false", v))
		}
		c.PerCPU = b
	}
	if v := getenv("FLEETWATT_QUEUE_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("FLEETWATT_QUEUE_BYTES: %q is not a number of bytes", v))
		}
		c.QueueBytes = n
	}
	if v := getenv("FLEETWATT_SPOOL_MAX_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("FLEETWATT_SPOOL_MAX_BYTES: %q is not a number of bytes", v))
		}
		c.Spool.MaxBytes = n
	}
	return errors.Join(errs...)
}

// Validate returns every problem, each prefixed by its YAML key.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.Root == "" {
		add("root", "must not be empty (use / for this host)")
	} else if st, err := os.Stat(c.Root); err != nil || !st.IsDir() {
		add("root", "%q is not a directory", c.Root)
	}
	if c.Protocol != "grpc" && c.Protocol != "http/protobuf" {
		add("protocol", "%q: want grpc or http/protobuf", c.Protocol)
	}
	if time.Duration(c.Interval) < 100*time.Millisecond {
		add("interval", "%s is too short: at least 100ms (10s is the usual)", c.Interval)
	}
	if c.Temporality != "delta" && c.Temporality != "cumulative" {
		add("temporality", "%q: want delta or cumulative", c.Temporality)
	}
	if c.QueueBytes < 1<<20 {
		add("queue_bytes", "%d is below 1 MiB", c.QueueBytes)
	}
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil {
			add("metrics_listen", "%q: want host:port (%v)", c.MetricsListen, err)
		} else if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
			add("metrics_listen", "%q: port %q is not a port number", c.MetricsListen, port)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls", "cert_file and key_file go together")
	}
	for _, f := range []struct{ key, path string }{
		{"tls.ca_file", c.TLS.CAFile},
		{"tls.cert_file", c.TLS.CertFile},
		{"tls.key_file", c.TLS.KeyFile},
		{"token_file", c.TokenFile},
	} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				add(f.key, "%v", err)
			}
		}
	}
	if c.Spool.Dir != "" {
		if !filepath.IsAbs(c.Spool.Dir) {
			add("spool.dir", "%q is not an absolute path", c.Spool.Dir)
		}
		if c.Spool.MaxBytes < 1<<20 {
			add("spool.max_bytes", "%d is below 1 MiB", c.Spool.MaxBytes)
		}
	}
	for _, name := range c.Sources.Disable {
		if !slices.Contains(SourceNames, name) {
			add("sources.disable", "%q is not a source: want one of %s", name, strings.Join(SourceNames, ", "))
		}
	}
	if c.Sources.Redfish.URL != "" {
		if u, err := url.Parse(c.Sources.Redfish.URL); err != nil || u.Scheme != "https" || u.Host == "" {
			add("sources.redfish.url", "%q: want https://host (BMCs serve Redfish over HTTPS)", c.Sources.Redfish.URL)
		}
		if c.Sources.Redfish.CredentialsFile == "" {
			add("sources.redfish.credentials_file", "required with sources.redfish.url")
		}
	}
	if m := c.Sources.Model; (m.IdleW > 0) != (m.PeakW > 0) || m.IdleW < 0 || m.PeakW < 0 || (m.PeakW > 0 && m.PeakW < m.IdleW) {
		add("sources.model", "idle_w and peak_w go together, with 0 <= idle_w <= peak_w (got %v and %v)", m.IdleW, m.PeakW)
	}
	if c := c.Sources.Model.Curve; c != "linear" && c != "teads" {
		add("sources.model.curve", "%q: want linear or teads", c)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add("log.format", "%q: want text or json", c.Log.Format)
	}
	return errors.Join(errs...)
}
