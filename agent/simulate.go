package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/fleetwatt/fleetwatt/agent/internal/config"
	"github.com/fleetwatt/fleetwatt/agent/internal/export"
	"github.com/fleetwatt/fleetwatt/agent/internal/simulate"
)

const simulateUsage = `fleetwatt-agent simulate runs a fleet of virtual hosts with known power curves and load
through the agent's own collection and OTLP export path: the demo, a load generator for a
collector, and the ground truth of the accuracy tests. Every reading is labelled
fleetwatt.power.source=simulator, so it is never mistaken for a real host.

Usage:
  fleetwatt-agent simulate [flags]                    live: every --interval (default 10s),
                                                      all hosts, timestamps now, until Ctrl-C
  fleetwatt-agent simulate --backfill 168h [flags]    send the past week (ending now) as fast
                                                      as the collector takes it, with a progress
                                                      bar; --interval defaults to 5m here
  fleetwatt-agent simulate --print-fleet              print the default fleet's YAML, to edit

The fleet (--fleet, default: 6 regions × an x86 and an ARM pool, 10 hosts each) is YAML,
documented in docs/simulate.md. In it, cores means logical CPUs (what /proc/stat counts and
clouds sell as vCPUs: an x86 core with SMT is two), and work is ops per busy logical-CPU
second: ops per joule is the architecture-neutral measure, since it needs no agreement on
what a core is. The same --seed and fleet give the same hosts and readings.

A failed export is retried with backoff and never dropped: the collector acknowledges only
what it has stored. Ctrl-C stops cleanly and prints what was sent. The standard
OTEL_EXPORTER_OTLP_* variables (endpoint, headers, certificates, compression) are honoured.

Flags:
`

// simulateOptions are the simulate subcommand's flags.
type simulateOptions struct {
	opts       simulate.Options
	log        config.Log
	printFleet bool
}

// simulateMain runs `fleetwatt-agent simulate args` and returns the exit code.
func simulateMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	so, err := parseSimulate(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "fleetwatt-agent simulate: %v\n", err)
		return 2
	}
	if so.printFleet {
		_, _ = stdout.Write(simulate.DefaultYAML())
		return 0
	}
	log := newLogger(so.log, stderr)
	if err := simulate.Run(ctx, so.opts, log); err != nil {
		log.Error("fleetwatt-agent simulate failed", "err", err)
		return 1
	}
	return 0
}

// parseSimulate parses the simulate subcommand's flags and loads the fleet.
func parseSimulate(args []string, stderr io.Writer) (simulateOptions, error) {
	fs := flag.NewFlagSet("fleetwatt-agent simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, simulateUsage)
		fs.PrintDefaults()
	}
	def := config.Default()
	var (
		so       = simulateOptions{log: def.Log}
		fleet    = fs.String("fleet", "", "fleet spec `file` (YAML, docs/simulate.md); default: the built-in six-region fleet (see --print-fleet)")
		backfill = fs.Duration("backfill", 0, "send the past `duration` ending now (e.g. 168h for a week) as fast as the collector takes it, then exit; without it, run live")
		interval = fs.Duration("interval", 0, "time between a host's readings (default 10s live, 5m with --backfill)")
		endpoint = fs.String("endpoint", "", "collector's OTLP `URL`, e.g. http://collector:4317 (default: OTEL_EXPORTER_OTLP_ENDPOINT, else localhost)")
		protocol = fs.String("protocol", def.Protocol, "OTLP protocol: grpc or http/protobuf")
		conc     = fs.Int("concurrency", simulate.DefaultConcurrency, "exporters sending at once, each with its own connection (one export is one host's interval)")
		seed     = fs.Uint64("seed", 1, "random seed: the same seed and fleet give the same hosts and readings")
	)
	fs.StringVar(&so.log.Level, "log-level", def.Log.Level, "log level: debug, info, warn, error")
	fs.StringVar(&so.log.Format, "log-format", def.Log.Format, "log format: text or json")
	fs.BoolVar(&so.printFleet, "print-fleet", false, "print the default fleet's YAML and exit")
	if err := fs.Parse(args); err != nil {
		return so, err
	}
	if fs.NArg() > 0 {
		return so, fmt.Errorf("unexpected arguments %q (flags come as --name value)", fs.Args())
	}
	if so.printFleet {
		return so, nil
	}
	switch so.log.Level {
	case "debug", "info", "warn", "error":
	default:
		return so, fmt.Errorf("--log-level %q: want debug, info, warn or error", so.log.Level)
	}
	if so.log.Format != "text" && so.log.Format != "json" {
		return so, fmt.Errorf("--log-format %q: want text or json", so.log.Format)
	}
	if *protocol != export.ProtocolGRPC && *protocol != export.ProtocolHTTP {
		return so, fmt.Errorf("--protocol %q: want grpc or http/protobuf", *protocol)
	}
	if *backfill < 0 || *interval < 0 {
		return so, errors.New("--backfill and --interval must be positive durations such as 168h and 5m")
	}

	spec, err := simulate.Default()
	if *fleet != "" {
		spec, err = simulate.LoadFile(*fleet)
	}
	if err != nil {
		return so, err
	}
	so.opts = simulate.Options{
		Spec:        spec,
		Seed:        *seed,
		Backfill:    *backfill,
		Interval:    *interval,
		Export:      export.Options{Endpoint: *endpoint, Protocol: *protocol},
		Concurrency: *conc,
		Version:     version,
		Progress:    stderr,
	}
	return so, nil
}
