//go:build linux && nvml_dlopen

package nvml

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ebitengine/purego"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
)

// libraryBuiltIn is true: this build loads libnvidia-ml.so.1 itself.
const libraryBuiltIn = true

// nvmlReturn_t values used here (nvml.h).
const (
	nvmlSuccess              = 0
	nvmlErrorNotSupported    = 3
	nvmlErrorDriverNotLoaded = 9
	nvmlErrorLibNotFound     = 12
)

// Buffer sizes nvml.h guarantees to be large enough (NVML_DEVICE_NAME_V2_BUFFER_SIZE,
// NVML_DEVICE_UUID_V2_BUFFER_SIZE).
const (
	nameBufferSize = 96
	uuidBufferSize = 96
)

// lib holds the NVML functions the agent calls, with the C signatures of nvml.h. nvmlReturn_t
// is a C enum, 32 bits on every Linux ABI; nvmlDevice_t is an opaque pointer, kept as uintptr
// because Go never dereferences it.
type lib struct {
	handle uintptr

	initV2        func() uint32                                    // nvmlReturn_t nvmlInit_v2(void)
	shutdown      func() uint32                                    // nvmlReturn_t nvmlShutdown(void)
	countV2       func(count *uint32) uint32                       // nvmlDeviceGetCount_v2(unsigned int *deviceCount)
	handleV2      func(index uint32, device *uintptr) uint32       // nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
	name          func(device uintptr, buf *byte, n uint32) uint32 // nvmlDeviceGetName(nvmlDevice_t, char *name, unsigned int length)
	uuid          func(device uintptr, buf *byte, n uint32) uint32 // nvmlDeviceGetUUID(nvmlDevice_t, char *uuid, unsigned int length)
	totalEnergy   func(device uintptr, mJ *uint64) uint32          // nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t, unsigned long long *energy), mJ
	powerUsage    func(device uintptr, mW *uint32) uint32          // nvmlDeviceGetPowerUsage(nvmlDevice_t, unsigned int *power), mW
	enforcedLimit func(device uintptr, mW *uint32) uint32          // nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t, unsigned int *limit), mW
	errorString   func(ret uint32) string                          // const char *nvmlErrorString(nvmlReturn_t)
}

// gpu is one device NVML found.
type gpu struct {
	index   int
	handle  uintptr
	uuid    string
	name    string
	counter bool // energy counter (Volta and newer); power otherwise
}

type libBackend struct {
	l    *lib
	path string
	gpus []gpu
}

// openLibrary loads NVML from path, initialises it and finds the GPUs.
func openLibrary(path string) (backend, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, errors.Join(errNoLibrary, err))
	}
	l := &lib{handle: h}
	if err := l.bind(); err != nil {
		_ = purego.Dlclose(h)
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if ret := l.initV2(); ret != nvmlSuccess {
		err := l.err("nvmlInit_v2", ret)
		if ret == nvmlErrorDriverNotLoaded || ret == nvmlErrorLibNotFound {
			err = fmt.Errorf("%w: %w", sensor.ErrNotFound, err)
		}
		_ = purego.Dlclose(h)
		return nil, err
	}
	b := &libBackend{l: l, path: path}
	if err := b.discover(); err != nil {
		_ = b.close()
		return nil, err
	}
	return b, nil
}

// bind looks up every symbol first, so that an old library missing one is an error and not
// the panic purego.RegisterLibFunc would raise.
func (l *lib) bind() error {
	fns := []struct {
		name string
		fptr any
	}{
		{"nvmlInit_v2", &l.initV2},
		{"nvmlShutdown", &l.shutdown},
		{"nvmlDeviceGetCount_v2", &l.countV2},
		{"nvmlDeviceGetHandleByIndex_v2", &l.handleV2},
		{"nvmlDeviceGetName", &l.name},
		{"nvmlDeviceGetUUID", &l.uuid},
		{"nvmlDeviceGetTotalEnergyConsumption", &l.totalEnergy},
		{"nvmlDeviceGetPowerUsage", &l.powerUsage},
		{"nvmlDeviceGetEnforcedPowerLimit", &l.enforcedLimit},
		{"nvmlErrorString", &l.errorString},
	}
	for _, f := range fns {
		sym, err := purego.Dlsym(l.handle, f.name)
		if err != nil {
			return fmt.Errorf("find %s: %w", f.name, err)
		}
		purego.RegisterFunc(f.fptr, sym)
	}
	return nil
}

// err names the failed call and NVML's own message.
func (l *lib) err(call string, ret uint32) error {
	return fmt.Errorf("%s: %s (nvml error %d)", call, l.errorString(ret), ret)
}

func (b *libBackend) discover() error {
	var n uint32
	if ret := b.l.countV2(&n); ret != nvmlSuccess {
		return b.l.err("nvmlDeviceGetCount_v2", ret)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s finds no GPU", sensor.ErrNotFound, b.path)
	}
	var errs []error
	for i := range n {
		g := gpu{index: int(i)}
		if ret := b.l.handleV2(i, &g.handle); ret != nvmlSuccess {
			errs = append(errs, fmt.Errorf("gpu %d: %w", i, b.l.err("nvmlDeviceGetHandleByIndex_v2", ret)))
			continue
		}
		g.name = b.l.str(b.l.name, g.handle, nameBufferSize)
		g.uuid = b.l.str(b.l.uuid, g.handle, uuidBufferSize)
		var mJ uint64
		var mW uint32
		switch {
		case b.l.totalEnergy(g.handle, &mJ) == nvmlSuccess:
			g.counter = true
		case b.l.powerUsage(g.handle, &mW) == nvmlSuccess:
		default:
			errs = append(errs, fmt.Errorf("gpu %d %s: neither energy nor power is supported", i, g.uuid))
			continue
		}
		b.gpus = append(b.gpus, g)
	}
	if len(b.gpus) == 0 {
		return fmt.Errorf("%w: no GPU with power or energy: %w", sensor.ErrNotFound, errors.Join(errs...))
	}
	return nil
}

// str calls one of NVML's string getters into a buffer of the size nvml.h prescribes.
func (l *lib) str(fn func(uintptr, *byte, uint32) uint32, device uintptr, size int) string {
	buf := make([]byte, size)
	if fn(device, &buf[0], uint32(size)) != nvmlSuccess {
		return ""
	}
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	return strings.TrimSpace(string(buf))
}

func (b *libBackend) read(ctx context.Context) ([]sensor.Reading, error) {
	readings := make([]sensor.Reading, 0, len(b.gpus))
	var errs []error
	for _, g := range b.gpus {
		var limitMW uint32
		if b.l.enforcedLimit(g.handle, &limitMW) != nvmlSuccess {
			limitMW = 0 // no bound rather than no reading
		}
		r := reading(g.index, g.uuid, g.name, float64(limitMW)/1000)
		if g.counter {
			var mJ uint64
			if ret := b.l.totalEnergy(g.handle, &mJ); ret != nvmlSuccess {
				errs = append(errs, fmt.Errorf("read gpu %s: %w", r.ID, b.l.err("nvmlDeviceGetTotalEnergyConsumption", ret)))
				continue
			}
			// mJ since the driver was loaded, in 64 bits: it never wraps, and a driver
			// reload shows as a counter going back, which the energy meter treats as a reset.
			r.Counter, r.EnergyUJ = true, mJ*1000
		} else {
			var mW uint32
			if ret := b.l.powerUsage(g.handle, &mW); ret != nvmlSuccess {
				errs = append(errs, fmt.Errorf("read gpu %s: %w", r.ID, b.l.err("nvmlDeviceGetPowerUsage", ret)))
				continue
			}
			r.PowerW = float64(mW) / 1000
		}
		readings = append(readings, r)
	}
	return readings, errors.Join(errs...)
}

func (b *libBackend) close() error {
	var err error
	if ret := b.l.shutdown(); ret != nvmlSuccess {
		err = b.l.err("nvmlShutdown", ret)
	}
	return errors.Join(err, purego.Dlclose(b.l.handle))
}

func (b *libBackend) info() sensor.Info {
	var gs []string
	for _, g := range b.gpus {
		kind := "power"
		if g.counter {
			kind = "energy counter"
		}
		gs = append(gs, fmt.Sprintf("%d %s %s (%s)", g.index, g.name, g.uuid, kind))
	}
	return sensor.Info{
		Detail: fmt.Sprintf("%s: %s", b.path, strings.Join(gs, "; ")),
		// NVML refreshes board power every 20 to 100 ms depending on the GPU.
		Cadence: 100 * time.Millisecond,
	}
}
