package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/fleetwatt/fleetwatt/agent/internal/collect"
	"github.com/fleetwatt/fleetwatt/agent/internal/config"
	"github.com/fleetwatt/fleetwatt/agent/internal/energy"
	"github.com/fleetwatt/fleetwatt/agent/internal/export"
	"github.com/fleetwatt/fleetwatt/agent/internal/identity"
	"github.com/fleetwatt/fleetwatt/agent/internal/selfmon"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpufreq"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpuidle"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/ipmi"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/model"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/redfish"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/registry"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
)

// shutdownTimeout bounds the final flush to the collector.
const shutdownTimeout = 15 * time.Second

// selfEvery is how often the agent's own counters go with its data.
const selfEvery = time.Minute

// run collects and sends every cfg.Interval until ctx ends, then sends what is left.
func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	tuneRuntime(os.Getenv)
	fs := sysfs.New(cfg.Root)
	host, err := detectHost(ctx, fs, cfg)
	if err != nil {
		return err
	}
	log.Info("fleetwatt-agent starting", "version", version, "host", host.Name, "arch", host.Arch,
		"cpu_model", host.CPUModel, "sockets", host.Sockets, "logical_cpus", host.LogicalCPUs,
		"region", cfg.Region, "root", cfg.Root, "interval", cfg.Interval.String())

	sources, missing := openSources(ctx, fs, host, cfg)
	defer func() {
		if err := registry.Close(sources); err != nil {
			log.Warn("closing power sources", "err", err)
		}
	}()
	logSources(log, host, sources, missing)
	freq, idle := cpuReaders(log, fs)
	defer closeCPUReaders(freq, idle)

	exp, err := export.NewExporter(ctx, export.Options{
		Endpoint: cfg.Endpoint, Protocol: cfg.Protocol, TokenFile: cfg.TokenFile,
		TLS: export.TLSOptions{
			CAFile: cfg.TLS.CAFile, CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile,
			InsecureSkipVerify: cfg.TLS.InsecureSkipVerify,
		},
	})
	if err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	temporality := metricdata.DeltaTemporality
	if cfg.Temporality == "cumulative" {
		temporality = metricdata.CumulativeTemporality
	}
	builder := export.NewBuilder(newResource(host, cfg), version, temporality)
	exportLog := log.With("component", "export")
	var spool *export.Spool
	if cfg.Spool.Dir != "" {
		if spool, err = export.OpenSpool(cfg.Spool.Dir, cfg.Spool.MaxBytes, exportLog); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	sender := export.NewSpoolingSender(exp, cfg.QueueBytes, spool, exportLog)
	coll := collect.New(fs, sources, collect.Options{
		PerCPU: cfg.PerCPU, Bounds: bounds(host), Freq: freq, Idle: idle,
	}, log.With("component", "collect"))

	if cfg.MetricsListen != "" {
		mlog := log.With("component", "metrics")
		ms := selfmon.NewServer(cfg.MetricsListen, selfmon.Sources{Sender: sender, Collector: coll, Version: version}, mlog)
		if err := ms.Start(ctx); err != nil {
			return err
		}
		// Deferred: it stops after the sender's final flush, whose counters stay scrapeable
		// until then.
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
			defer cancel()
			if err := ms.Shutdown(sctx); err != nil {
				mlog.Warn("metrics endpoint", "err", err)
			}
		}()
	}

	sendCtx, stopSending := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { sender.Run(sendCtx) })

	started, selfSent := time.Now(), time.Time{}
	coll.Collect(ctx) // the baseline: counters are only meaningful as differences
	ticker := time.NewTicker(time.Duration(cfg.Interval))
	defer ticker.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-ticker.C:
			s := coll.Collect(ctx)
			rm := builder.Build(s)
			if rm != nil && s.At.Sub(selfSent) >= selfEvery {
				// The agent's own counters travel with its data once a minute, so a drop shows
				// in InfluxDB too.
				rm.ScopeMetrics[0].Metrics = append(rm.ScopeMetrics[0].Metrics,
					selfmon.Metrics(selfmon.Sources{Sender: sender, Collector: coll, Version: version}, started, s.At)...)
				selfSent = s.At
			}
			sender.Enqueue(rm)
		}
	}

	// The interval since the last tick is measured too, then everything queued is sent (or,
	// with a spool and no collector, kept on disk for the next start).
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	sender.Enqueue(builder.Build(coll.Collect(shutdownCtx)))
	stopSending()
	wg.Wait()
	err = sender.Shutdown(shutdownCtx)
	st := sender.Stats()
	log.Info("fleetwatt-agent stopped", "sent_batches", st.Sent, "failed_exports", st.Failed,
		"dropped_batches", st.Dropped+st.Spool.Dropped, "dropped_points", st.DroppedPoints+st.Spool.DroppedPoints,
		"spooled_batches", st.Spool.Batches, "corrupt_spool_files", st.Spool.Corrupt, "read_errors", coll.ReadErrors)
	return err
}

// tuneRuntime sizes the Go runtime for a daemon that works about a millisecond per
// interval, unless the environment's GOMAXPROCS or GOGC says otherwise (docs/performance.md
// has the measurements):
//   - One P. With one per CPU, every hand-off between the agent's goroutines (the cycle, the
//     sender, the gRPC transport's reader and writer) wakes another thread: on a 2-CPU host
//     one P takes about 15 % less CPU per cycle, and on a 64-CPU host (GOMAXPROCS=64) a P per
//     CPU costs 45 % more CPU and 2 MB more memory than one.
//   - GOGC 50. The heap's smallest goal scales with GOGC: 2 MB instead of 4 MB, for a live
//     heap under 1 MB. A collection then comes every 15 or so cycles and costs under 1 ms.
func tuneRuntime(getenv func(string) string) {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}

// detectHost identifies the host and applies the configured name.
func detectHost(ctx context.Context, fs sysfs.FS, cfg config.Config) (identity.Host, error) {
	host, err := identity.Detect(ctx, fs)
	if err != nil {
		return host, fmt.Errorf("identify host under %s: %w", fs.Root(), err)
	}
	if cfg.HostName != "" {
		host.Name = cfg.HostName
	}
	return host, nil
}

// openSources opens the power sources the configuration allows.
func openSources(ctx context.Context, fs sysfs.FS, host identity.Host, cfg config.Config) ([]sensor.Source, []registry.Missing) {
	src := cfg.Sources
	return registry.Open(ctx, registry.Env{
		FS:      fs,
		Host:    host,
		Disable: src.Disable,
		IPMI:    ipmi.Options{Command: src.IPMI.Command, Timeout: time.Duration(src.IPMI.Timeout)},
		Redfish: redfish.Options{
			URL: src.Redfish.URL, CredentialsFile: src.Redfish.CredentialsFile, CAFile: src.Redfish.CAFile,
			Insecure: src.Redfish.Insecure, Timeout: time.Duration(src.Redfish.Timeout),
		},
		Model: model.Options{IdleW: src.Model.IdleW, PeakW: src.Model.PeakW, Curve: src.Model.Curve},
	})
}

// cpuReaders opens the CPU frequency and idle-state readers; a host without them (a VM, a
// Graviton instance) simply goes without, said once.
func cpuReaders(log *slog.Logger, fs sysfs.FS) (*cpufreq.Reader, *cpuidle.Reader) {
	freq, err := cpufreq.Open(fs)
	if err != nil {
		log.Info("no CPU frequency", "reason", err)
	}
	idle, err := cpuidle.Open(fs)
	if err != nil {
		log.Info("no CPU idle states", "reason", err)
	}
	return freq, idle
}

// closeCPUReaders closes the files cpuReaders keeps open.
func closeCPUReaders(freq *cpufreq.Reader, idle *cpuidle.Reader) {
	// Read-only files: a failing close loses nothing.
	if freq != nil {
		_ = freq.Close()
	}
	if idle != nil {
		_ = idle.Close()
	}
}

// bounds are the plausibility bounds of this host's readings, tighter when the shipped table
// knows its CPU.
func bounds(host identity.Host) energy.Bounds {
	h := energy.Host{Sockets: host.Sockets}
	if p, ok := model.Lookup(host); ok {
		h.TDPPerSocketW, h.PeakW = p.TDPPerSocketW, p.PeakW
	}
	return energy.DefaultBounds(h)
}

// newResource describes the host with OpenTelemetry resource attributes.
func newResource(host identity.Host, cfg config.Config) *resource.Resource {
	return export.NewResource(host, export.Place{Region: cfg.Region, Zone: cfg.Zone, Datacenter: cfg.Datacenter},
		version, time.Duration(cfg.Interval))
}

// logSources says once, at start, which power sources were found and which were not, and why.
func logSources(log *slog.Logger, host identity.Host, sources []sensor.Source, missing []registry.Missing) {
	for _, s := range sources {
		log.Info("power source found", "source", s.Name())
	}
	for _, m := range missing {
		level := slog.LevelInfo
		if !errors.Is(m.Err, sensor.ErrNotFound) && !errors.Is(m.Err, registry.ErrDisabled) {
			level = slog.LevelWarn // present but unreadable: the operator can fix it
		}
		log.Log(context.Background(), level, "power source not available", "source", m.Source, "reason", m.Err)
	}
	if len(sources) == 0 {
		why := "no RAPL zone or hwmon power meter is readable"
		if host.Virtual {
			why = "this host is a virtual machine (its CPU reports a hypervisor), and VMs expose no power sensors"
		}
		log.Warn("no power source on this host: sending CPU time only, no power readings",
			"reason", why, "details", "fleetwatt-agent doctor")
	}
}
