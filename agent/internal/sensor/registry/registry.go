// Package registry lists the power sources the agent knows and opens them. The list is
// explicit, with no init() registration, so that adding a source is one package under
// agent/internal/sensor and one line in known.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/fleetwatt/fleetwatt/agent/internal/identity"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/acpi"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/hwmon"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/ipmi"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/model"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/nvml"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/rapl"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/redfish"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// Env is what the sources are opened with.
type Env struct {
	// FS is the filesystem root holding sys/, proc/ and dev/.
	FS sysfs.FS
	// Host is the host's identity (the model estimate needs its CPU).
	Host identity.Host
	// Disable names sources not to open.
	Disable []string
	IPMI    ipmi.Options
	Redfish redfish.Options
	NVML    nvml.Options
	Model   model.Options
}

// known is every measuring source, in the order they are opened and reported. The model
// estimate is not among them: it is opened only when none of these measures the host.
var known = []struct {
	name string
	open func(context.Context, Env) (sensor.Source, error)
}{
	{semconv.SourceRAPL, func(_ context.Context, e Env) (sensor.Source, error) { return source(rapl.Open(e.FS)) }},
	{semconv.SourceHwmon, func(_ context.Context, e Env) (sensor.Source, error) { return source(hwmon.Open(e.FS)) }},
	{semconv.SourceACPI, func(_ context.Context, e Env) (sensor.Source, error) { return source(acpi.Open(e.FS)) }},
	{semconv.SourceIPMI, func(ctx context.Context, e Env) (sensor.Source, error) {
		o := e.IPMI
		if o.DevDir == "" {
			o.DevDir = e.FS.Path("dev")
		}
		return source(ipmi.Open(ctx, o))
	}},
	{semconv.SourceRedfish, func(ctx context.Context, e Env) (sensor.Source, error) {
		if e.Redfish.URL == "" {
			return nil, fmt.Errorf("%w: not configured (set sources.redfish.url and credentials_file to read the BMC)", sensor.ErrNotFound)
		}
		return source(redfish.Open(ctx, e.Redfish))
	}},
	{semconv.SourceNVML, func(_ context.Context, e Env) (sensor.Source, error) { return source(nvml.Open(e.NVML)) }},
}

// hostScopes are the scopes whose readings measure a host as a whole or its CPUs: with one of
// them, a model estimate adds nothing. A GPU alone does not measure the host.
var hostScopes = []semconv.Scope{
	semconv.ScopeWall, semconv.ScopeNodeDC, semconv.ScopePlatform, semconv.ScopeCPUPackage,
}

// Missing is a source that was not found or cannot be read, with the reason and the fix.
type Missing struct {
	// Source is the source's name (semconv.SourceRAPL, ...).
	Source string
	// Err says why: it wraps sensor.ErrNotFound for a source the host does not have, and
	// fs.ErrPermission for one the agent may not read.
	Err error
}

// ErrDisabled marks a source the configuration turned off.
var ErrDisabled = errors.New("disabled in the configuration (sources.disable)")

// Open opens every known source; sources that are absent, unreadable or disabled are returned
// in missing. When none measures the host (a VM, a cloud instance), the model estimate is
// opened instead. Sources that hold resources implement io.Closer; Close closes them.
func Open(ctx context.Context, env Env) (sources []sensor.Source, missing []Missing) {
	for _, k := range known {
		if slices.Contains(env.Disable, k.name) {
			missing = append(missing, Missing{Source: k.name, Err: ErrDisabled})
			continue
		}
		s, err := k.open(ctx, env)
		if err != nil {
			missing = append(missing, Missing{Source: k.name, Err: err})
			continue
		}
		sources = append(sources, s)
	}
	switch {
	case slices.Contains(env.Disable, semconv.SourceModel):
		missing = append(missing, Missing{Source: semconv.SourceModel, Err: ErrDisabled})
	case measuresHost(ctx, sources):
		// Measured beats estimated: the model would only repeat what is known better.
	default:
		s, err := source(model.Open(env.FS, env.Host, env.Model))
		if err != nil {
			missing = append(missing, Missing{Source: semconv.SourceModel, Err: err})
		} else {
			sources = append(sources, s)
		}
	}
	return sources, missing
}

// measuresHost reports whether a source reads a host-level or CPU-level scope.
func measuresHost(ctx context.Context, sources []sensor.Source) bool {
	for _, s := range sources {
		if s.Name() == semconv.SourceNVML {
			continue
		}
		readings, _ := s.Read(ctx)
		for _, r := range readings {
			if slices.Contains(hostScopes, r.Scope) {
				return true
			}
		}
	}
	return false
}

// Close closes the sources that hold resources (a loaded NVML library).
func Close(sources []sensor.Source) error {
	var errs []error
	for _, s := range sources {
		if c, ok := s.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", s.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// source adapts a package's Open result to the table. It returns a nil Source, not a Source
// holding a nil *Reader, when Open fails: the latter is not == nil and would be read.
func source[T any, P interface {
	*T
	sensor.Source
}](p P, err error) (sensor.Source, error) {
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errors.New("open returned neither a reader nor an error")
	}
	return p, nil
}
