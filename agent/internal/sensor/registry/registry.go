// Package registry lists the power sources the agent knows and opens them. The list is
// explicit, with no init() registration, so that adding a source is one package under
// agent/internal/sensor and one line in known.
package registry

import (
	"errors"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/hwmon"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/rapl"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// known is every source the agent can read, in the order they are opened and reported.
var known = []struct {
	name string
	open func(sysfs.FS) (sensor.Source, error)
}{
	{semconv.SourceRAPL, source(rapl.Open)},
	{semconv.SourceHwmon, source(hwmon.Open)},
}

// Missing is a source that was not found or cannot be read, with the reason and the fix.
type Missing struct {
	// Source is the source's name (semconv.SourceRAPL, ...).
	Source string
	// Err says why: it wraps sensor.ErrNotFound for a source the host does not have, and
	// fs.ErrPermission for one the agent may not read.
	Err error
}

// Open opens every known source under fs; sources that are absent or unreadable are returned
// in missing.
func Open(fs sysfs.FS) (sources []sensor.Source, missing []Missing) {
	for _, k := range known {
		s, err := k.open(fs)
		if err != nil {
			missing = append(missing, Missing{Source: k.name, Err: err})
			continue
		}
		sources = append(sources, s)
	}
	return sources, missing
}

// source adapts a package's Open to the table. It returns a nil Source, not a Source holding
// a nil *Reader, when Open fails: the latter is not == nil and would be read.
func source[T any, P interface {
	*T
	sensor.Source
}](open func(sysfs.FS) (P, error)) func(sysfs.FS) (sensor.Source, error) {
	return func(fs sysfs.FS) (sensor.Source, error) {
		p, err := open(fs)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, errors.New("open returned neither a reader nor an error")
		}
		return p, nil
	}
}
