package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/collect"
	"github.com/fleetwatt/fleetwatt/agent/internal/config"
	"github.com/fleetwatt/fleetwatt/agent/internal/identity"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/registry"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
)

// report is what `doctor` finds on a host. Its JSON form is a documented contract
// (docs/agent.md) checked by golden tests for every fixture machine.
type report struct {
	Host    hostReport      `json:"host"`
	Window  string          `json:"window"`
	Sources []sourceReport  `json:"sources"`
	Missing []missingReport `json:"missing"`
	// Primary says which readings stand for the host in comparisons.
	Primary *primaryReport `json:"primary"`
	CPU     *cpuReport     `json:"cpu"`
}

type hostReport struct {
	Name        string  `json:"name"`
	Arch        string  `json:"arch"`
	CPUVendor   string  `json:"cpu_vendor"`
	CPUModel    string  `json:"cpu_model"`
	CPUCore     string  `json:"cpu_core,omitempty"`
	CPUFamily   string  `json:"cpu_family,omitempty"`
	CPUModelID  string  `json:"cpu_model_id,omitempty"`
	Sockets     int     `json:"sockets"`
	Cores       int     `json:"cores"`
	LogicalCPUs int     `json:"logical_cpus"`
	Threads     int     `json:"threads_per_core"`
	NominalHz   float64 `json:"nominal_hz,omitempty"`
	SysVendor   string  `json:"sys_vendor,omitempty"`
	Product     string  `json:"product,omitempty"`
	Virtual     bool    `json:"virtual"`
}

type sourceReport struct {
	Source   string          `json:"source"`
	Detail   string          `json:"detail,omitempty"`
	CadenceS float64         `json:"cadence_s,omitempty"`
	Needs    string          `json:"needs,omitempty"`
	Readings []readingReport `json:"readings"`
}

type readingReport struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Scope   string  `json:"scope"`
	Method  string  `json:"method"`
	Kind    string  `json:"kind"` // energy-counter or power
	Watts   float64 `json:"watts"`
	Primary bool    `json:"primary"`
}

type missingReport struct {
	Source string `json:"source"`
	Reason string `json:"reason"`
}

type primaryReport struct {
	Scope  string  `json:"scope"`
	Source string  `json:"source"`
	Watts  float64 `json:"watts"`
}

type cpuReport struct {
	Utilization *float64 `json:"utilization"`  // null when no CPU time passed in the window
	FrequencyHz *float64 `json:"frequency_hz"` // mean current frequency; null without cpufreq
	IdleStates  []string `json:"idle_states"`  // cpuidle states; empty without cpuidle
}

// doctor measures for window and writes what it found on this host in format.
func doctor(ctx context.Context, cfg config.Config, format string, window time.Duration, w io.Writer) error {
	r, err := examine(ctx, cfg, window)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return writeText(w, r)
}

// examine opens every source, takes two readings window apart and reports.
func examine(ctx context.Context, cfg config.Config, window time.Duration) (report, error) {
	fs := sysfs.New(cfg.Root)
	host, err := detectHost(ctx, fs, cfg)
	if err != nil {
		return report{}, err
	}
	sources, missing := openSources(ctx, fs, host, cfg)
	defer registry.Close(sources)
	discard := slog.New(slog.DiscardHandler)
	freq, idle := cpuReaders(discard, fs)
	defer closeCPUReaders(freq, idle)
	coll := collect.New(fs, sources, collect.Options{Bounds: bounds(host), Freq: freq, Idle: idle}, discard)
	coll.Collect(ctx)
	select {
	case <-ctx.Done():
		return report{}, ctx.Err()
	case <-time.After(window):
	}
	s := coll.Collect(ctx)

	r := report{Host: newHostReport(host), Window: window.String(), Sources: []sourceReport{}, Missing: []missingReport{}}
	for _, src := range sources {
		sr := sourceReport{Source: src.Name(), Readings: []readingReport{}}
		if d, ok := src.(sensor.Describer); ok {
			info := d.Info()
			sr.Detail, sr.CadenceS, sr.Needs = info.Detail, info.Cadence.Seconds(), info.Needs
		}
		for _, d := range s.Power {
			if d.Reading.Source != src.Name() {
				continue
			}
			kind := "power"
			if d.Reading.Counter {
				kind = "energy-counter"
			}
			sr.Readings = append(sr.Readings, readingReport{
				ID: d.Reading.ID, Name: d.Reading.Name, Scope: string(d.Reading.Scope), Method: d.Reading.Method(),
				Kind: kind, Watts: round(d.Watts()), Primary: s.Primary.Is(d.Reading),
			})
		}
		r.Sources = append(r.Sources, sr)
	}
	for _, m := range missing {
		r.Missing = append(r.Missing, missingReport{Source: m.Source, Reason: m.Err.Error()})
	}
	if s.Primary.Source != "" {
		p := &primaryReport{Scope: string(s.Primary.Scope), Source: s.Primary.Source}
		for _, d := range s.Power {
			if s.Primary.Is(d.Reading) {
				p.Watts += d.Watts()
			}
		}
		p.Watts = round(p.Watts)
		r.Primary = p
	}
	r.CPU = &cpuReport{IdleStates: []string{}}
	if s.CPU != nil && s.CPU.All.Total() > 0 {
		u := math.Round(s.CPU.Utilization()*1e4) / 1e4
		r.CPU.Utilization = &u
	}
	if s.Freq != nil {
		f := math.Round(s.Freq.MeanHz)
		r.CPU.FrequencyHz = &f
	}
	for _, st := range s.Idle {
		r.CPU.IdleStates = append(r.CPU.IdleStates, st.State)
	}
	return r, nil
}

func newHostReport(h identity.Host) hostReport {
	return hostReport{
		Name: h.Name, Arch: h.Arch, CPUVendor: h.CPUVendor, CPUModel: h.CPUModel, CPUCore: h.CPUCore,
		CPUFamily: h.CPUFamily, CPUModelID: h.CPUModelID, Sockets: h.Sockets, Cores: h.Cores,
		LogicalCPUs: h.LogicalCPUs, Threads: h.ThreadsPerCore, NominalHz: h.NominalHz,
		SysVendor: h.SysVendor, Product: h.Product, Virtual: h.Virtual,
	}
}

// round keeps watts to 0.1 W: more digits than a sensor's accuracy only add noise.
func round(w float64) float64 { return math.Round(w*10) / 10 }

func writeText(w io.Writer, r report) error {
	h := r.Host
	fmt.Fprintf(w, "host         %s\n", h.Name)
	fmt.Fprintf(w, "arch         %s\n", h.Arch)
	model := h.CPUModel
	if h.CPUCore != "" && h.CPUCore != h.CPUModel {
		model += " [" + h.CPUCore + "]"
	}
	fmt.Fprintf(w, "cpu          %s (%s), %d socket(s), %d cores, %d logical CPUs",
		model, h.CPUVendor, h.Sockets, h.Cores, h.LogicalCPUs)
	if h.NominalHz > 0 {
		fmt.Fprintf(w, ", %.2f GHz nominal", h.NominalHz/1e9)
	}
	fmt.Fprintln(w)
	if h.SysVendor != "" || h.Product != "" {
		fmt.Fprintf(w, "system       %s\n", strings.TrimSpace(h.SysVendor+" "+h.Product))
	}
	if h.Virtual {
		fmt.Fprintln(w, "virtual      yes: the CPU reports a hypervisor; a VM has no power sensors of its own")
	}

	fmt.Fprintf(w, "\npower sources (live reading over %s):\n", r.Window)
	if len(r.Sources) == 0 {
		fmt.Fprintln(w, "  none found")
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, s := range r.Sources {
		// A line without tabs ends a column block: each source's readings align by themselves.
		fmt.Fprintf(tw, "  %s: %s\n", s.Source, describe(s))
		for _, rd := range s.Readings {
			mark := ""
			if rd.Primary {
				mark = "  ← primary"
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%.1f W%s\n", rd.ID, rd.Scope, rd.Method, rd.Watts, mark)
		}
	}
	tw.Flush()
	if r.Primary != nil {
		fmt.Fprintf(w, "\nprimary      %s from %s: %.1f W (what comparisons use for this host)\n",
			r.Primary.Scope, r.Primary.Source, r.Primary.Watts)
	}
	if len(r.Missing) > 0 {
		fmt.Fprintln(w, "\nnot available:")
		for _, m := range r.Missing {
			fmt.Fprintf(w, "  %s: %s\n", m.Source, m.Reason)
		}
	}
	if c := r.CPU; c != nil {
		fmt.Fprintln(w)
		if c.Utilization != nil {
			fmt.Fprintf(w, "cpu utilization %.1f%% over %s\n", 100**c.Utilization, r.Window)
		}
		if c.FrequencyHz != nil {
			fmt.Fprintf(w, "cpu frequency   %.2f GHz (mean of the logical CPUs)\n", *c.FrequencyHz/1e9)
		} else {
			fmt.Fprintln(w, "cpu frequency   not available (no cpufreq: VMs and some cloud instances have none)")
		}
		if len(c.IdleStates) > 0 {
			fmt.Fprintf(w, "idle states     %s\n", strings.Join(c.IdleStates, ", "))
		}
	}
	return nil
}

func describe(s sourceReport) string {
	var parts []string
	if s.Detail != "" {
		parts = append(parts, s.Detail)
	}
	if s.CadenceS > 0 {
		parts = append(parts, "updates every "+time.Duration(s.CadenceS*float64(time.Second)).String())
	}
	if s.Needs != "" {
		parts = append(parts, "needs "+s.Needs)
	}
	return strings.Join(parts, "; ")
}
