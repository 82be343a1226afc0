package nvml

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
)

// smiArgs asks for fields every driver since the R3xx series knows. Newer fields
// (power.draw.average, power.draw.instant) would make older nvidia-smi reject the whole
// query, and the energy counter is not a --query-gpu field at all, so this path gives power
// only. power.draw is a 1 s average on Ampere and newer and an instantaneous value before;
// both are far shorter than the agent's interval, so readings carry no averaging window.
func smiArgs() []string {
	return []string{
		"--query-gpu=index,uuid,name,power.draw,enforced.power.limit",
		"--format=csv,noheader,nounits",
	}
}

// smiTimeout bounds nvidia-smi at Open. Without persistence mode the driver initialises
// every GPU on each run, which takes seconds on an 8-GPU server.
const smiTimeout = 30 * time.Second

// nvidia-smi exit codes that mean there is no usable driver (nvidia-smi(1), RETURN VALUE).
const (
	smiExitDriverNotLoaded = 9
	smiExitNoLibrary       = 12
)

// smiGPU is one line of nvidia-smi's answer.
type smiGPU struct {
	Index int
	UUID  string
	Name  string
	// PowerW is power.draw in W; HasPower is false when nvidia-smi shows [N/A] or
	// [Not Supported] (a GPU without power management, or one that failed).
	PowerW   float64
	HasPower bool
	// LimitW is enforced.power.limit in W; 0 when unknown.
	LimitW float64
}

type smiBackend struct {
	path string
	gpus string // what Open found, for doctor
}

// openSMI finds nvidia-smi and checks that it reports at least one GPU with power.
func openSMI(cmd string) (*smiBackend, error) {
	path, err := exec.LookPath(cmd)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", cmd, errors.Join(errNoSMI, err))
	}
	b := &smiBackend{path: path}
	ctx, cancel := context.WithTimeout(context.Background(), smiTimeout)
	defer cancel()
	gpus, err := b.query(ctx)
	if len(gpus) == 0 {
		if err == nil {
			err = fmt.Errorf("%w: %s lists no GPU", sensor.ErrNotFound, path)
		}
		return nil, err
	}
	var (
		names []string
		power bool
	)
	for _, g := range gpus {
		power = power || g.HasPower
		s := fmt.Sprintf("%d %s %s", g.Index, g.Name, g.UUID)
		if !g.HasPower {
			s += " (no power reading)"
		}
		names = append(names, s)
	}
	if !power {
		return nil, fmt.Errorf("%w: no GPU that %s lists reports power.draw: %s",
			sensor.ErrNotFound, path, strings.Join(names, "; "))
	}
	b.gpus = strings.Join(names, "; ")
	return b, nil
}

// query runs nvidia-smi and parses what it printed. A failing nvidia-smi can still print the
// GPUs it could read (one board fallen off the bus), so both are returned.
func (b *smiBackend) query(ctx context.Context) ([]smiGPU, error) {
	cmd := exec.CommandContext(ctx, b.path, smiArgs()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	gpus, parseErr := parseSMI(bytes.NewReader(out))
	if runErr != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = firstLine(out)
		}
		runErr = fmt.Errorf("run %s: %w: %s", b.path, runErr, msg)
		var exitErr *exec.ExitError
		if errors.As(runErr, &exitErr) && len(gpus) == 0 {
			switch {
			case exitErr.ExitCode() == smiExitDriverNotLoaded, exitErr.ExitCode() == smiExitNoLibrary,
				strings.Contains(string(out)+msg, "No devices were found"):
				runErr = fmt.Errorf("%w: %w", sensor.ErrNotFound, runErr)
			}
		}
		return gpus, runErr
	}
	if parseErr != nil {
		parseErr = fmt.Errorf("parse %s output: %w", b.path, parseErr)
	}
	return gpus, parseErr
}

func (b *smiBackend) read(ctx context.Context) ([]sensor.Reading, error) {
	gpus, err := b.query(ctx)
	readings := make([]sensor.Reading, 0, len(gpus))
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, g := range gpus {
		if !g.HasPower {
			continue // said once, by Info; not an error every interval
		}
		r := reading(g.Index, g.UUID, g.Name, g.LimitW)
		r.PowerW = g.PowerW
		readings = append(readings, r)
	}
	return readings, errors.Join(errs...)
}

func (b *smiBackend) close() error { return nil }

func (b *smiBackend) info() sensor.Info {
	return sensor.Info{
		Detail: fmt.Sprintf("%s %s (power only): %s", b.path, strings.Join(smiArgs(), " "), b.gpus),
		// NVML refreshes board power every 20 to 100 ms depending on the GPU; power.draw
		// averages over 1 s on Ampere and newer.
		Cadence: time.Second,
	}
}

// parseSMI parses the output of nvidia-smi --query-gpu=index,uuid,name,power.draw,
// enforced.power.limit --format=csv,noheader,nounits: one line per GPU, fields separated by
// ", ", values without units, and "[N/A]" or "[Not Supported]" where a value is missing. The
// name is taken as everything between the uuid and the last two fields, so a product name with
// a comma still parses. Lines that do not parse are reported, and the others kept.
func parseSMI(r io.Reader) ([]smiGPU, error) {
	var (
		gpus []smiGPU
		errs []error
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		g, err := parseSMILine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d %q: %w", n, clip(line), err))
			continue
		}
		gpus = append(gpus, g)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return gpus, errors.Join(errs...)
}

func parseSMILine(line string) (smiGPU, error) {
	raw := strings.Split(line, ",")
	if len(raw) < 5 {
		return smiGPU{}, fmt.Errorf("%d fields, want 5", len(raw))
	}
	f := make([]string, len(raw))
	for i := range raw {
		f[i] = strings.TrimSpace(raw[i])
	}
	var g smiGPU
	idx, err := strconv.Atoi(f[0])
	if err != nil || idx < 0 || idx > 1<<16 {
		return smiGPU{}, fmt.Errorf("index %q: not a GPU index", f[0])
	}
	g.Index = idx
	if !missing(f[1]) {
		g.UUID = f[1]
	}
	g.Name = strings.TrimSpace(strings.Join(raw[2:len(raw)-2], ","))
	if missing(g.Name) {
		g.Name = ""
	}
	if g.PowerW, g.HasPower, err = watts(f[len(f)-2]); err != nil {
		return smiGPU{}, fmt.Errorf("power.draw: %w", err)
	}
	if g.LimitW, _, err = watts(f[len(f)-1]); err != nil {
		return smiGPU{}, fmt.Errorf("enforced.power.limit: %w", err)
	}
	return g, nil
}

// missing reports a value nvidia-smi could not give: "[N/A]", "[Not Supported]", "[Unknown
// Error]", "[Insufficient Permissions]", "[GPU requires reset]", or plain "N/A".
func missing(s string) bool {
	return s == "" || s == "N/A" || (strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"))
}

// watts parses a value in W, with or without the unit nvidia-smi adds without nounits.
func watts(s string) (w float64, ok bool, err error) {
	if missing(s) {
		return 0, false, nil
	}
	s = strings.TrimSpace(strings.TrimSuffix(s, " W"))
	w, err = strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%q: not a number of watts", s)
	}
	if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
		return 0, false, fmt.Errorf("%q: not a power", s)
	}
	return w, true, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return clip(s)
}

func clip(s string) string {
	const maxLen = 120
	if len(s) > maxLen {
		return s[:maxLen] + "…"
	}
	return s
}
