// Command fleetwatt-agent reads a host's power sensors and CPU counters and sends them to a
// fleetwatt collector (or any OpenTelemetry backend) over OTLP.
//
// Usage:
//
//	fleetwatt-agent [flags]          collect and send, until SIGINT or SIGTERM
//	fleetwatt-agent doctor [flags]   show what this host offers: identity, power sources, CPU
//	fleetwatt-agent simulate [flags] run a simulated fleet through the same export path
//	fleetwatt-agent version          print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/config"
)

// version is stamped by the build: -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `fleetwatt-agent reads this host's power (RAPL, hwmon power meters) and CPU time and
sends them over OTLP to a fleetwatt collector or any OpenTelemetry backend.

Usage:
  fleetwatt-agent [flags]            collect and send every --interval until SIGINT/SIGTERM
  fleetwatt-agent doctor [flags]     show this host's identity, power sources (and why any are
                                     missing) and a live reading; --format json, --window 1s
  fleetwatt-agent simulate [flags]   run a simulated multi-region fleet (virtual hosts with known
                                     power curves) through the same export path, live or as a
                                     --backfill of a past range; see simulate --help
  fleetwatt-agent version            print the version

Configuration comes from defaults, then --config FILE (YAML, see agent.example.yaml), then
FLEETWATT_* environment variables (FLEETWATT_ENDPOINT, FLEETWATT_REGION, ...), then flags.
The standard OTEL_EXPORTER_OTLP_* variables (endpoint, protocol, headers, certificates,
timeout, compression) are honoured.

Flags:
`

func main() {
	os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
}

// mainErr runs the command line args and returns the exit code.
func mainErr(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "fleetwatt-agent", version)
		return 0
	case "help":
		args = []string{"-h"}
	case "simulate":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return simulateMain(ctx, args, stdout, stderr)
	case "run", "doctor":
	default:
		fmt.Fprintf(stderr, "fleetwatt-agent: unknown command %q (want run, doctor, simulate or version; see --help)\n", cmd)
		return 2
	}

	cfg, opts, err := parse(cmd, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "fleetwatt-agent: %v\n", err)
		return 2
	}
	log := newLogger(cfg.Log, stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cmd == "doctor" {
		err = doctor(ctx, cfg, opts.format, opts.window, stdout)
	} else {
		err = run(ctx, cfg, log)
	}
	if err != nil {
		log.Error("fleetwatt-agent failed", "err", err)
		return 1
	}
	return 0
}

// doctorOptions are the flags only doctor has.
type doctorOptions struct {
	format string
	window time.Duration
}

// parse builds the configuration from the defaults, the file, the environment and the flags.
func parse(cmd string, args []string, stderr io.Writer) (config.Config, doctorOptions, error) {
	fs := flag.NewFlagSet("fleetwatt-agent "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	def := config.Default()
	var (
		path        = fs.String("config", "", "YAML configuration `file`")
		root        = fs.String("root", def.Root, "filesystem root holding sys/ and proc/ (/host in a container)")
		endpoint    = fs.String("endpoint", "", "collector's OTLP `URL`, e.g. http://collector:4317 (default: OTEL_EXPORTER_OTLP_ENDPOINT, else localhost)")
		protocol    = fs.String("protocol", def.Protocol, "OTLP protocol: grpc or http/protobuf")
		interval    = def.Interval
		temporality = fs.String("temporality", def.Temporality, "counters as delta (increments) or cumulative (totals)")
		region      = fs.String("region", "", "region of this host (cloud.region), e.g. cn-hangzhou")
		zone        = fs.String("zone", "", "availability zone of this host (cloud.availability_zone)")
		datacenter  = fs.String("datacenter", "", "data center of this host")
		hostName    = fs.String("host-name", "", "host name to report (default: the host's own)")
		perCPU      = fs.Bool("per-cpu", def.PerCPU, "also send CPU time per logical CPU")
		tlsCA       = fs.String("tls-ca", "", "CA `file` (PEM) verifying an https:// collector's certificate (default: the system's roots)")
		tokenFile   = fs.String("token-file", "", "`file` holding the bearer token the collector requires")
		spoolDir    = fs.String("spool-dir", def.Spool.Dir, "`directory` keeping batches on disk while the collector is unreachable, replayed in order when it returns (default: none, memory only)")
		logLevel    = fs.String("log-level", def.Log.Level, "log level: debug, info, warn, error")
		logFormat   = fs.String("log-format", def.Log.Format, "log format: text or json")
		metrics     = fs.String("metrics-listen", def.MetricsListen, "`address` (host:port) serving the agent's own counters on /metrics, Prometheus text format (default: none)")
	)
	fs.Var(&interval, "interval", "time between collections")
	opts := doctorOptions{format: "text", window: time.Second}
	if cmd == "doctor" {
		fs.StringVar(&opts.format, "format", opts.format, "doctor output: text or json")
		fs.DurationVar(&opts.window, "window", opts.window, "doctor's live reading: time between its two readings")
	}
	if err := fs.Parse(args); err != nil {
		return def, opts, err
	}
	if fs.NArg() > 0 {
		return def, opts, fmt.Errorf("unexpected arguments %q (flags come as --name value)", fs.Args())
	}
	if opts.format != "text" && opts.format != "json" {
		return def, opts, fmt.Errorf("--format %q: want text or json", opts.format)
	}

	cfg, err := config.Load(*path)
	if err != nil {
		return cfg, opts, err
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return cfg, opts, err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "root":
			cfg.Root = *root
		case "endpoint":
			cfg.Endpoint = *endpoint
		case "protocol":
			cfg.Protocol = *protocol
		case "interval":
			cfg.Interval = interval
		case "temporality":
			cfg.Temporality = *temporality
		case "region":
			cfg.Region = *region
		case "zone":
			cfg.Zone = *zone
		case "datacenter":
			cfg.Datacenter = *datacenter
		case "host-name":
			cfg.HostName = *hostName
		case "per-cpu":
			cfg.PerCPU = *perCPU
		case "spool-dir":
			cfg.Spool.Dir = *spoolDir
		case "tls-ca":
			cfg.TLS.CAFile = *tlsCA
		case "token-file":
			cfg.TokenFile = *tokenFile
		case "log-level":
			cfg.Log.Level = *logLevel
		case "log-format":
			cfg.Log.Format = *logFormat
		case "metrics-listen":
			cfg.MetricsListen = *metrics
		}
	})
	if err := cfg.Validate(); err != nil {
		return cfg, opts, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, opts, nil
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
