package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/collect"
	"github.com/fleetwatt/fleetwatt/agent/internal/config"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/registry"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
)

// doctorWindow is how long doctor measures for its live reading.
const doctorWindow = time.Second

// doctor prints what the agent finds on this host: identity, power sources with a live
// reading, the sources it did not find and why, and CPU utilization.
func doctor(ctx context.Context, cfg config.Config, w io.Writer) error {
	fs := sysfs.New(cfg.Root)
	host, err := detectHost(ctx, fs, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "host         %s\n", host.Name)
	fmt.Fprintf(w, "arch         %s\n", host.Arch)
	fmt.Fprintf(w, "cpu          %s (%s), %d socket(s), %d cores, %d logical CPUs\n",
		host.CPUModel, host.CPUVendor, host.Sockets, host.Cores, host.LogicalCPUs)
	if host.SysVendor != "" || host.Product != "" {
		fmt.Fprintf(w, "system       %s %s\n", host.SysVendor, host.Product)
	}
	if host.Virtual {
		fmt.Fprintln(w, "virtual      yes: the CPU reports a hypervisor; a VM has no power sensors of its own")
	}

	sources, missing := registry.Open(fs)
	coll := collect.New(fs, sources, collect.Options{}, slog.New(slog.DiscardHandler))
	coll.Collect(ctx)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(doctorWindow):
	}
	s := coll.Collect(ctx)

	fmt.Fprintf(w, "\npower sources (live reading over %s):\n", doctorWindow)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if len(s.Power) == 0 {
		fmt.Fprintln(tw, "  none found")
	}
	for _, d := range s.Power {
		r := d.Reading
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%.1f W\n", r.Source, r.ID, r.Scope, r.Method(), d.Watts())
	}
	tw.Flush()
	if len(missing) > 0 {
		fmt.Fprintln(w, "\nnot available:")
		for _, m := range missing {
			fmt.Fprintf(w, "  %s: %v\n", m.Source, m.Err)
		}
	}
	if s.CPU != nil {
		fmt.Fprintf(w, "\ncpu utilization %.1f%% over %s\n", 100*s.CPU.Utilization(), doctorWindow)
	}
	return nil
}
