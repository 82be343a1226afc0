// Package ipmi reads a server's wall power (W) from its BMC with the DCMI "Get Power Reading"
// command, by running ipmitool ("ipmitool dcmi power reading") or FreeIPMI
// ("ipmi-dcmi --get-system-power-statistics") against the in-band device /dev/ipmi0.
//
// DCMI reports integer watts measured by the BMC at the power supplies' input, so the
// reading's scope is wall. On many ARM servers (Ampere Altra on GIGABYTE or ASRock Rack
// boards) it is the only wall-level number, which is why it matters for comparing ARM and
// x86 like for like.
//
// The reading is the BMC's instantaneous value, not its average. The average's window
// ("Sampling period", "Statistics reporting time period") is the time since the BMC last
// reset its statistics on many BMCs: outputs from real machines show 1131466 s (13 days) and
// 2685198000 ms (31 days), so the average says nothing about the agent's interval; where
// the window is short (1–5 s), the min/max/average are often inconsistent with each other
// (a 1 s window with a 2 W minimum and a 468 W maximum on a 214 W server). The instantaneous
// value is what every BMC refreshes, about once a second.
package ipmi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// DefaultTimeout bounds one run of ipmitool or ipmi-dcmi when Options.Timeout is 0. In-band
// DCMI answers in well under a second; a BMC that is rebooting makes the tools retry for
// several seconds before they give up.
const DefaultTimeout = 5 * time.Second

// Options configures Open.
type Options struct {
	// Command is the tool to run: a name looked up on PATH or a path. A base name starting
	// with "ipmi-dcmi" is FreeIPMI's tool, anything else is taken for ipmitool. "" looks up
	// ipmitool, then ipmi-dcmi.
	Command string
	// DevDir is the directory that holds the IPMI device node (ipmi0, ipmi/0 or
	// ipmidev/0); "" means /dev. The tools themselves always open /dev: DevDir only moves
	// the check Open makes before running them (tests point it at a temporary directory).
	DevDir string
	// Timeout bounds one run of the tool; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Reader reads the BMC's DCMI power reading. It holds no mutable state, so Read may be
// called from several goroutines (each call runs the tool once).
type Reader struct {
	path    string // the tool's resolved path
	kind    tool
	device  string // the device node Open found
	timeout time.Duration
}

var (
	_ sensor.Source    = (*Reader)(nil)
	_ sensor.Describer = (*Reader)(nil)
)

type tool int

const (
	ipmitool tool = iota
	freeipmi
)

func (t tool) args() []string {
	if t == freeipmi {
		return []string{"--get-system-power-statistics"}
	}
	return []string{"dcmi", "power", "reading"}
}

func (t tool) String() string {
	if t == freeipmi {
		return "ipmi-dcmi"
	}
	return "ipmitool"
}

// Errors the tools' output is classified into, besides fs.ErrPermission. They are
// unexported: callers branch on sensor.ErrNotFound, which Open wraps them with.
var (
	errNoDevice    = errors.New("no IPMI device")
	errNoDCMI      = errors.New("the BMC does not support DCMI power readings")
	errDeactivated = errors.New("the BMC's power measurement is deactivated")
)

// Open finds the BMC's device node and the tool to talk to it, and takes one reading to
// check that both work. It returns an error wrapping sensor.ErrNotFound, with the reason,
// when the host has no BMC device, neither tool is installed, or the BMC has no DCMI power
// reading (or has it deactivated); and one wrapping fs.ErrPermission, with the fix, when
// the agent may not open the device.
func Open(ctx context.Context, opts Options) (*Reader, error) {
	dir := opts.DevDir
	if dir == "" {
		dir = "/dev"
	}
	device, err := findDevice(dir)
	if err != nil {
		return nil, err
	}
	path, kind, err := findTool(opts.Command)
	if err != nil {
		return nil, err
	}
	r := &Reader{path: path, kind: kind, device: device, timeout: opts.Timeout}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if _, err := r.Read(ctx); err != nil {
		switch {
		case errors.Is(err, errNoDevice), errors.Is(err, errNoDCMI), errors.Is(err, errDeactivated):
			return nil, fmt.Errorf("%w: %w", sensor.ErrNotFound, err)
		}
		return nil, err
	}
	return r, nil
}

// Name is semconv.SourceIPMI.
func (r *Reader) Name() string { return semconv.SourceIPMI }

// Info describes the source for doctor.
func (r *Reader) Info() sensor.Info {
	return sensor.Info{
		Detail: strings.Join(append([]string{r.path}, r.kind.args()...), " "),
		// BMCs sample the power supplies about once a second.
		Cadence: time.Second,
		Needs:   "root or read-write access to " + r.device,
	}
}

// Read runs the tool once and returns the BMC's instantaneous wall power (W).
func (r *Reader) Read(ctx context.Context) ([]sensor.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, stderr, err := r.run(ctx)
	if err != nil {
		return nil, err
	}
	var p powerReading
	if r.kind == freeipmi {
		p, err = parseFreeipmi(bytes.NewReader(out))
	} else {
		p, err = parseIpmitool(bytes.NewReader(out))
	}
	if err != nil {
		// Some tool versions exit 0 after printing a DCMI error.
		if class := r.classify(stderr); class != nil {
			return nil, fmt.Errorf("run %s: %w: %s", r.kind, class, firstLines(stderr, 3))
		}
		return nil, fmt.Errorf("parse %s output: %w", r.kind, err)
	}
	if !p.active {
		return nil, fmt.Errorf("%s: %w: the numbers it returns are not measurements "+
			"(enable power monitoring in the BMC's settings)", r.kind, errDeactivated)
	}
	if p.currentW == 0 {
		// The host is running (the agent runs on it), so 0 W is a BMC without a reading,
		// not a measurement.
		return nil, fmt.Errorf("%s: the BMC reports 0 W: no power reading", r.kind)
	}
	return []sensor.Reading{{
		ID:     "dcmi",
		Name:   "DCMI power reading",
		Source: semconv.SourceIPMI,
		Scope:  semconv.ScopeWall,
		PowerW: p.currentW,
	}}, nil
}

// maxOutput bounds what is kept of the tool's output: a DCMI reading is under 1 KiB.
const maxOutput = 64 << 10

// run runs the tool and returns its standard output and error, or an error classified
// from what the tool printed when it failed.
func (r *Reader) run(ctx context.Context) (stdout []byte, stderr string, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.path, r.kind.args()...)
	outBuf := &limitedBuffer{max: maxOutput}
	errBuf := &limitedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = outBuf, errBuf
	// The C locale keeps FreeIPMI's and ipmitool's messages in the English we match.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// A child of the tool that keeps the pipes open must not make Read hang past its
	// timeout.
	cmd.WaitDelay = time.Second
	runErr := cmd.Run()
	name := r.kind.String()
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return nil, "", fmt.Errorf("run %s: timed out after %s: %w", name, r.timeout, ctxErr)
		}
		return nil, "", fmt.Errorf("run %s: %w", name, ctxErr)
	}
	if runErr != nil {
		msg := strings.TrimSpace(errBuf.String())
		if msg == "" {
			msg = strings.TrimSpace(outBuf.String())
		}
		if class := r.classify(errBuf.String() + "\n" + outBuf.String()); class != nil {
			return nil, "", fmt.Errorf("run %s: %w: %s", name, class, firstLines(msg, 3))
		}
		return nil, "", fmt.Errorf("run %s: %w: %s", name, runErr, firstLines(msg, 3))
	}
	return outBuf.Bytes(), errBuf.String(), nil
}

// classify recognises the tools' messages for the failures that have their own branch.
func (r *Reader) classify(out string) error {
	err := classify(out)
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: %s", err, permissionFix(r.device))
	}
	return err
}

func classify(out string) error {
	s := strings.ToLower(out)
	switch {
	case strings.Contains(s, "permission denied"):
		// ipmitool: "Could not open device at /dev/ipmi0 or ...: Permission denied";
		// FreeIPMI: "ipmi_ctx_open_inband: permission denied".
		return fs.ErrPermission
	case strings.Contains(s, "could not open device"),
		strings.Contains(s, "could not find inband device"):
		return errNoDevice
	case strings.Contains(s, "dcmi request failed"),
		strings.Contains(s, "a valid dcmi command was not returned"),
		strings.Contains(s, "invalid or unsupported"),
		strings.Contains(s, "get_power_reading: bad completion code"),
		strings.Contains(s, "invalid command"):
		// ipmitool: "DCMI request failed because: Invalid command (c1)";
		// FreeIPMI: "ipmi_cmd_dcmi_get_power_reading: command invalid or unsupported".
		return errNoDCMI
	}
	return nil
}

func permissionFix(device string) string {
	return fmt.Sprintf("DCMI needs read-write access to %s: run the agent as root or give "+
		"its group access to %s (a udev rule: KERNEL==\"ipmi*\", GROUP=\"<agent group>\", "+
		"MODE=\"0660\")", device, device)
}

// deviceNames are where the Linux ipmi_devintf driver's first device appears, in the order
// ipmitool tries them.
var deviceNames = []string{"ipmi0", "ipmi/0", "ipmidev/0"}

// findDevice returns the first IPMI device node under dir. It checks that the agent may
// open it, since that is the failure with a known fix.
func findDevice(dir string) (string, error) {
	for _, name := range deviceNames {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrPermission) {
			return "", fmt.Errorf("%w: %s", err, permissionFix(path))
		}
		if err == nil {
			f.Close()
		}
		// Other open errors (a node whose driver is gone) are left to the tool to report.
		return path, nil
	}
	paths := make([]string, len(deviceNames))
	for i, name := range deviceNames {
		paths[i] = filepath.Join(dir, name)
	}
	return "", fmt.Errorf("%w: no %s: this host has no BMC (a VM, a desktop), or the "+
		"ipmi_si and ipmi_devintf kernel modules are not loaded",
		sensor.ErrNotFound, strings.Join(paths, ", "))
}

// findTool resolves command, or looks for ipmitool and then ipmi-dcmi when it is empty.
func findTool(command string) (string, tool, error) {
	if command != "" {
		path, err := exec.LookPath(command)
		if err != nil {
			return "", 0, fmt.Errorf("find %s: %w", command, err)
		}
		if strings.HasPrefix(filepath.Base(path), "ipmi-dcmi") {
			return path, freeipmi, nil
		}
		return path, ipmitool, nil
	}
	if path, err := exec.LookPath("ipmitool"); err == nil {
		return path, ipmitool, nil
	}
	if path, err := exec.LookPath("ipmi-dcmi"); err == nil {
		return path, freeipmi, nil
	}
	return "", 0, fmt.Errorf("%w: neither ipmitool nor ipmi-dcmi (FreeIPMI) is on PATH: "+
		"install the ipmitool or freeipmi-tools package", sensor.ErrNotFound)
}

// limitedBuffer keeps the first max bytes written to it and discards the rest, so a tool
// gone wrong cannot make the agent hold its whole output.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// firstLines returns the first n non-empty lines of s, joined by "; ".
func firstLines(s string, n int) string {
	var lines []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
			if len(lines) == n {
				break
			}
		}
	}
	if len(lines) == 0 {
		return "no output"
	}
	return strings.Join(lines, "; ")
}
