// Package nvml reads the power (W) and energy (µJ) of NVIDIA GPUs, through the NVIDIA
// Management Library without cgo, or through nvidia-smi where the library cannot be loaded.
//
// Two ways in, because of how the agent is built. libnvidia-ml.so.1 is a glibc shared
// library, and loading it from Go without cgo takes github.com/ebitengine/purego, which makes
// the binary dynamically linked (an ELF interpreter and libdl.so.2 as a dependency) even with
// CGO_ENABLED=0. The agent ships as a static binary that runs in scratch images and under
// qemu-user, so the library path is compiled in only with the build tag nvml_dlopen. Every
// build can exec nvidia-smi, which the driver package installs next to the library and which
// reads the same NVML counters.
//
// With the library, GPUs that have it (Volta and newer) give nvmlDeviceGetTotalEnergyConsumption,
// a counter in mJ since the driver was loaded, read as an energy counter; the others give
// nvmlDeviceGetPowerUsage in mW. nvidia-smi gives power only (power.draw), in W.
//
// A GPU's reading is identified by its UUID, not its index: the index follows PCI enumeration
// and changes when a board is added, removed or fails, and a series that silently moved to
// another board would turn two boards' counters into one bogus delta.
package nvml

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// DefaultLibrary is the NVML library's soname, what the driver installs and what the NVIDIA
// container toolkit mounts into containers.
const DefaultLibrary = "libnvidia-ml.so.1"

// DefaultSMICommand is the name of nvidia-smi, looked up on PATH.
const DefaultSMICommand = "nvidia-smi"

// limitMargin widens a GPU's enforced power limit into a plausibility bound. The limit caps
// the board's power averaged over about a second, and the agent's intervals are longer, so an
// honest reading stays near or below it; 1.5× leaves room for the ±5 W or ±5 % accuracy NVIDIA
// states and for a limit raised between readings, and still rejects the readings wrong by
// orders of magnitude that the bound exists to catch.
const limitMargin = 1.5

// Options configure where NVML is found.
type Options struct {
	// Library is the NVML library to load; "" means DefaultLibrary, found by the dynamic
	// loader. It is used only by agents built with the nvml_dlopen tag.
	Library string
	// SMICommand is nvidia-smi's path or name; "" means DefaultSMICommand on PATH.
	SMICommand string
}

// backend is one way of reading the GPUs.
type backend interface {
	read(ctx context.Context) ([]sensor.Reading, error)
	close() error
	info() sensor.Info
}

// Reader reads every NVIDIA GPU of the host. Read may be called from several goroutines;
// Close must not be called before the last Read has returned.
type Reader struct {
	mu     sync.RWMutex
	b      backend
	closed bool
}

var (
	_ sensor.Source    = (*Reader)(nil)
	_ sensor.Describer = (*Reader)(nil)
)

// Open finds the GPUs through the NVML library where the agent was built to load it, else
// through nvidia-smi. It returns an error wrapping sensor.ErrNotFound when the host has
// neither (no NVIDIA driver) or when the driver finds no GPU.
func Open(opts Options) (*Reader, error) {
	lib := opts.Library
	if lib == "" {
		lib = DefaultLibrary
	}
	smi := opts.SMICommand
	if smi == "" {
		smi = DefaultSMICommand
	}

	var libErr error
	if libraryBuiltIn {
		b, err := openLibrary(lib)
		if err == nil {
			return &Reader{b: b}, nil
		}
		libErr = err
	}
	b, smiErr := openSMI(smi)
	if smiErr == nil {
		return &Reader{b: b}, nil
	}

	switch {
	case !libraryBuiltIn && errors.Is(smiErr, errNoSMI):
		return nil, fmt.Errorf("%w: no NVIDIA driver: no %s (this agent reads NVML through nvidia-smi; "+
			"one built with -tags nvml_dlopen loads %s itself)", sensor.ErrNotFound, smi, lib)
	case errors.Is(libErr, errNoLibrary) && errors.Is(smiErr, errNoSMI):
		return nil, fmt.Errorf("%w: no NVIDIA driver: %s not found and no %s", sensor.ErrNotFound, lib, smi)
	case libErr == nil || errors.Is(libErr, errNoLibrary):
		return nil, smiErr
	case errors.Is(smiErr, errNoSMI):
		return nil, libErr
	default:
		return nil, errors.Join(libErr, smiErr)
	}
}

// errNoLibrary and errNoSMI mean the library or the command does not exist on the host.
var (
	errNoLibrary = errors.New("library not found")
	errNoSMI     = errors.New("command not found")
)

// Name is semconv.SourceNVML, whichever way the GPUs are read: nvidia-smi is NVML's own
// command-line front end.
func (r *Reader) Name() string { return semconv.SourceNVML }

// Info describes how the GPUs are read and which ones.
func (r *Reader) Info() sensor.Info {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.b.info()
}

// Read takes one reading of every GPU: an energy counter (µJ) where the GPU has one, else its
// power (W). A GPU that fails does not hide the others.
func (r *Reader) Read(ctx context.Context) ([]sensor.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return nil, errors.New("read gpus: reader is closed")
	}
	return r.b.read(ctx)
}

// Close releases NVML (nvmlShutdown). Reads after Close fail.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.b.close()
}

// reading builds a GPU's reading with the labels every backend shares.
func reading(index int, uuid, name string, limitW float64) sensor.Reading {
	id := uuid
	if id == "" {
		id = fmt.Sprintf("gpu-%d", index)
	}
	var maxW float64
	if limitW > 0 {
		maxW = limitW * limitMargin
	}
	return sensor.Reading{
		ID:     id,
		Name:   strings.TrimSpace(name),
		Source: semconv.SourceNVML,
		Scope:  semconv.ScopeGPU,
		MaxW:   maxW,
	}
}
