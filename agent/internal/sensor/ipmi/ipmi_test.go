package ipmi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want powerReading
	}{
		{"ipmitool-dell-idrac9.txt", powerReading{
			currentW: 245, minW: 196, maxW: 412, avgW: 238, period: time.Second, active: true,
		}},
		{"ipmitool-hpe-ilo5.txt", powerReading{
			currentW: 312, minW: 288, maxW: 355, avgW: 309, period: time.Second, active: true,
		}},
		{"ipmitool-supermicro-x11.txt", powerReading{
			currentW: 214, minW: 2, maxW: 468, avgW: 184, period: 1131466 * time.Second, active: true,
		}},
		{"ipmitool-gigabyte-ampere-altra.txt", powerReading{
			currentW: 195, minW: 188, maxW: 1940, avgW: 194, period: 5 * time.Second, active: true,
		}},
		{"ipmitool-openbmc-deactivated.txt", powerReading{
			currentW: 319, minW: 319, maxW: 319, avgW: 319, active: false,
		}},
		{"freeipmi-supermicro-x12.txt", powerReading{
			currentW: 332, minW: 68, maxW: 504, avgW: 348, period: 2685198000 * time.Millisecond, active: true,
		}},
		{"freeipmi-lenovo-xcc.txt", powerReading{
			currentW: 287, minW: 201, maxW: 455, avgW: 290, period: time.Second, active: true,
		}},
		{"freeipmi-not-available.txt", powerReading{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			parse := parseIpmitool
			if strings.HasPrefix(tt.file, "freeipmi") {
				parse = parseFreeipmi
			}
			got, err := parse(f)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(powerReading{})); diff != "" {
				t.Errorf("parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		freeipmi bool
		in       string
		want     error // nil: any error
	}{
		{"empty", false, "", errNoReading},
		{"no state", false, "    Instantaneous power reading:    245 Watts\n", errNoState},
		{"bad watts", false, "Instantaneous power reading: lots Watts\nPower reading state is: activated\n", nil},
		{"negative watts", false, "Instantaneous power reading: -5 Watts\nPower reading state is: activated\n", nil},
		{"kW", false, "Instantaneous power reading: 2 kW\nPower reading state is: activated\n", nil},
		{"odd state", false, "Instantaneous power reading: 2 Watts\nPower reading state is: maybe\n", nil},
		{"freeipmi empty", true, "\n", errNoReading},
		{"freeipmi odd state", true, "Current Power : 2 Watts\nPower Measurement : Sleeping\n", nil},
		{"ipmitool output to freeipmi", true, mustRead(t, "ipmitool-dell-idrac9.txt"), errNoReading},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			parse := parseIpmitool
			if tt.freeipmi {
				parse = parseFreeipmi
			}
			_, err := parse(strings.NewReader(tt.in))
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("parse: got error %v, want %v", err, tt.want)
			}
		})
	}
}

// Statistics fields the Reader does not use must not lose the reading when a BMC fills
// them with nonsense.
func TestParseOddStatistics(t *testing.T) {
	t.Parallel()
	in := "Instantaneous power reading: 245 Watts\nMaximum during sampling period: 70000 Watts\n" +
		"Sampling period: 1 fortnight\nPower reading state is: activated\n"
	got, err := parseIpmitool(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := powerReading{currentW: 245, active: true}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(powerReading{})); diff != "" {
		t.Errorf("parse (-want +got):\n%s", diff)
	}
}

func FuzzParseIpmitool(f *testing.F) {
	seed(f, "ipmitool-*.txt")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := parseIpmitool(strings.NewReader(in))
		if err == nil && (p.currentW < 0 || p.currentW > 65535) {
			t.Errorf("parse %q: %v W out of DCMI's range", in, p.currentW)
		}
	})
}

func FuzzParseFreeipmi(f *testing.F) {
	seed(f, "freeipmi-*.txt")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := parseFreeipmi(strings.NewReader(in))
		if err == nil && (p.currentW < 0 || p.currentW > 65535) {
			t.Errorf("parse %q: %v W out of DCMI's range", in, p.currentW)
		}
	})
}

func seed(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds %s: %v", pattern, err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
}

func mustRead(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fake is a fake ipmitool or ipmi-dcmi: a shell script that records its arguments, prints
// testdata files on stdout and stderr and exits with a code. The Reader runs it through its
// real exec path.
type fake struct {
	name   string // "ipmitool" or "ipmi-dcmi"
	stdout string // testdata file, "" for none
	stderr string // testdata file, "" for none
	code   int
	sleep  bool // sleep instead of answering
}

// install writes the fake into a new directory and returns its path and the file its
// arguments are written to.
func (fk fake) install(t *testing.T) (path, argsFile string) {
	t.Helper()
	return fk.installIn(t, t.TempDir())
}

// installIn writes the fake, a copy of its testdata files and its arguments file into dir,
// all of them readable (the arguments file writable) by every user, so that the fake works
// for fixture.AsNobody too.
func (fk fake) installIn(t *testing.T, dir string) (path, argsFile string) {
	t.Helper()
	path = filepath.Join(dir, fk.name)
	argsFile = filepath.Join(dir, "args")
	if err := os.WriteFile(argsFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(argsFile, 0o666); err != nil { // WriteFile's mode is subject to the umask
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\necho \"$@\" > '%s'\n", argsFile)
	if fk.sleep {
		b.WriteString("exec /bin/sleep 30\n")
	}
	for i, out := range []struct{ file, redirect string }{{fk.stdout, ""}, {fk.stderr, " >&2"}} {
		if out.file == "" {
			continue
		}
		data := mustRead(t, out.file)
		copied := filepath.Join(dir, fmt.Sprintf("out%d", i))
		if err := os.WriteFile(copied, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "/bin/cat '%s'%s\n", copied, out.redirect)
	}
	fmt.Fprintf(&b, "exit %d\n", fk.code)
	fixture.Executable(t, path, b.String())
	return path, argsFile
}

// devDir makes a directory holding a stand-in for the IPMI device node at name.
func devDir(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	devNode(t, dir, name, 0o600)
	return dir
}

// devNode makes a stand-in for the IPMI device node at name below dir, of mode perm, in
// directories of mode 0755.
func devNode(t *testing.T, dir, name string, perm os.FileMode) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fake     fake
		device   string
		wantW    float64
		wantArgs string
	}{
		{"ipmitool iDRAC 9", fake{name: "ipmitool", stdout: "ipmitool-dell-idrac9.txt"}, "ipmi0", 245, "dcmi power reading"},
		{"ipmitool iLO 5", fake{name: "ipmitool", stdout: "ipmitool-hpe-ilo5.txt"}, "ipmi0", 312, "dcmi power reading"},
		{"ipmitool Supermicro X11", fake{name: "ipmitool", stdout: "ipmitool-supermicro-x11.txt"}, "ipmi/0", 214, "dcmi power reading"},
		{"ipmitool GIGABYTE Ampere Altra", fake{name: "ipmitool", stdout: "ipmitool-gigabyte-ampere-altra.txt"}, "ipmidev/0", 195, "dcmi power reading"},
		{"freeipmi Supermicro X12", fake{name: "ipmi-dcmi", stdout: "freeipmi-supermicro-x12.txt"}, "ipmi0", 332, "--get-system-power-statistics"},
		{"freeipmi Lenovo XCC", fake{name: "ipmi-dcmi", stdout: "freeipmi-lenovo-xcc.txt"}, "ipmi0", 287, "--get-system-power-statistics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd, argsFile := tt.fake.install(t)
			dev := devDir(t, tt.device)
			r, err := Open(t.Context(), Options{Command: cmd, DevDir: dev})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got, err := r.Read(t.Context())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			want := []sensor.Reading{{
				ID: "dcmi", Name: "DCMI power reading", Source: semconv.SourceIPMI,
				Scope: semconv.ScopeWall, PowerW: tt.wantW,
			}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
			args, err := os.ReadFile(argsFile)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(args)); got != tt.wantArgs {
				t.Errorf("tool ran with %q, want %q", got, tt.wantArgs)
			}
			if r.Name() != semconv.SourceIPMI {
				t.Errorf("Name() = %q", r.Name())
			}
			info := r.Info()
			wantInfo := sensor.Info{
				Detail:  cmd + " " + tt.wantArgs,
				Cadence: time.Second,
				Needs:   "root or read-write access to " + filepath.Join(dev, tt.device),
			}
			if diff := cmp.Diff(wantInfo, info); diff != "" {
				t.Errorf("Info (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		fake         fake
		noDevice     bool
		wantNotFound bool
		wantPerm     bool
		wantMsg      []string
	}{
		{
			name: "no device", fake: fake{name: "ipmitool", stdout: "ipmitool-dell-idrac9.txt"},
			noDevice: true, wantNotFound: true,
			wantMsg: []string{"ipmi0", "ipmi_si", "no BMC"},
		},
		{
			name: "ipmitool without DCMI", fake: fake{name: "ipmitool", stderr: "ipmitool-no-dcmi.stderr", code: 1},
			wantNotFound: true, wantMsg: []string{"DCMI request failed because: Invalid command (c1)"},
		},
		{
			name: "freeipmi without DCMI", fake: fake{name: "ipmi-dcmi", stderr: "freeipmi-no-dcmi.stderr", code: 1},
			wantNotFound: true, wantMsg: []string{"command invalid or unsupported"},
		},
		{
			name: "ipmitool deactivated", fake: fake{name: "ipmitool", stdout: "ipmitool-openbmc-deactivated.txt"},
			wantNotFound: true, wantMsg: []string{"deactivated"},
		},
		{
			name: "freeipmi not available", fake: fake{name: "ipmi-dcmi", stdout: "freeipmi-not-available.txt"},
			wantNotFound: true, wantMsg: []string{"deactivated"},
		},
		{
			name: "ipmitool permission denied", fake: fake{name: "ipmitool", stderr: "ipmitool-permission.stderr", code: 1},
			wantPerm: true, wantMsg: []string{"run the agent as root", "ipmi0"},
		},
		{
			name: "freeipmi permission denied", fake: fake{name: "ipmi-dcmi", stderr: "freeipmi-permission.stderr", code: 1},
			wantPerm: true, wantMsg: []string{"run the agent as root"},
		},
		{
			name: "ipmitool finds no device", fake: fake{name: "ipmitool", stderr: "ipmitool-no-device.stderr", code: 1},
			wantNotFound: true, wantMsg: []string{"Could not open device"},
		},
		{
			name: "DCMI error with exit status 0", fake: fake{name: "ipmitool", stderr: "ipmitool-no-dcmi.stderr"},
			wantNotFound: true, wantMsg: []string{"DCMI request failed"},
		},
		{
			name: "unknown failure", fake: fake{name: "ipmitool", code: 3},
			wantMsg: []string{"exit status 3", "no output"},
		},
		{
			name: "FreeIPMI's output from ipmitool", fake: fake{name: "ipmitool", stdout: "freeipmi-lenovo-xcc.txt"},
			wantMsg: []string{"parse ipmitool output"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd, _ := tt.fake.install(t)
			dev := t.TempDir()
			if !tt.noDevice {
				dev = devDir(t, "ipmi0")
			}
			r, err := Open(t.Context(), Options{Command: cmd, DevDir: dev})
			if err == nil {
				t.Fatalf("Open = %v, want an error", r)
			}
			if got := errors.Is(err, sensor.ErrNotFound); got != tt.wantNotFound {
				t.Errorf("Open: %v; errors.Is(err, sensor.ErrNotFound) = %t, want %t", err, got, tt.wantNotFound)
			}
			if got := errors.Is(err, fs.ErrPermission); got != tt.wantPerm {
				t.Errorf("Open: %v; errors.Is(err, fs.ErrPermission) = %t, want %t", err, got, tt.wantPerm)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Open: %v; want it to mention %q", err, s)
				}
			}
		})
	}
}

// A BMC that stops measuring after Open makes Read fail, saying why, rather than report
// numbers that are not measurements.
func TestReadDeactivated(t *testing.T) {
	t.Parallel()
	cmd, _ := fake{name: "ipmitool", stdout: "ipmitool-openbmc-deactivated.txt"}.install(t)
	r := &Reader{path: cmd, kind: ipmitool, device: "/dev/ipmi0", timeout: DefaultTimeout}
	_, err := r.Read(t.Context())
	if !errors.Is(err, errDeactivated) || !strings.Contains(err.Error(), "deactivated") {
		t.Errorf("Read: %v, want the deactivated error", err)
	}
}

// TestOpenDevicePermission proves the error, with the fix, of an agent that may not open
// the BMC's device node (mode 0600 root:root on most distributions). Root opens any file, and
// CI runs the tests as root, so the checks run as the user nobody (fixture.AsNobody).
func TestOpenDevicePermission(t *testing.T) {
	t.Parallel()
	for _, perm := range []os.FileMode{0o400, 0} {
		t.Run(fmt.Sprintf("mode %04o", perm), func(t *testing.T) {
			t.Parallel()
			fixture.AsNobody(t, func(t *testing.T, dir string) {
				fake{name: "ipmitool", stdout: "ipmitool-dell-idrac9.txt"}.installIn(t, dir)
				devNode(t, filepath.Join(dir, "dev"), "ipmi0", perm)
			}, func(t *testing.T, dir string) {
				_, err := Open(t.Context(), Options{Command: filepath.Join(dir, "ipmitool"), DevDir: filepath.Join(dir, "dev")})
				if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "run the agent as root") {
					t.Errorf("Open: %v, want a permission error with the fix", err)
				}
			})
		})
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	cmd, _ := fake{name: "ipmitool", sleep: true}.install(t)
	r := &Reader{path: cmd, kind: ipmitool, device: "/dev/ipmi0", timeout: 100 * time.Millisecond}
	start := time.Now()
	_, err := r.Read(t.Context())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 100ms") {
		t.Errorf("Read: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Read took %s after a 100ms timeout", d)
	}
}

func TestReadCanceled(t *testing.T) {
	t.Parallel()
	cmd, _ := fake{name: "ipmitool", stdout: "ipmitool-dell-idrac9.txt"}.install(t)
	r := &Reader{path: cmd, kind: ipmitool, device: "/dev/ipmi0", timeout: DefaultTimeout}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Read: %v, want context.Canceled", err)
	}
}

// With no Command, Open looks up ipmitool and then ipmi-dcmi on PATH. t.Setenv rules out
// t.Parallel here.
func TestLookup(t *testing.T) {
	t.Run("ipmitool first", func(t *testing.T) {
		a, _ := fake{name: "ipmitool", stdout: "ipmitool-dell-idrac9.txt"}.install(t)
		b, _ := fake{name: "ipmi-dcmi", stdout: "freeipmi-lenovo-xcc.txt"}.install(t)
		t.Setenv("PATH", filepath.Dir(b)+string(os.PathListSeparator)+filepath.Dir(a))
		r, err := Open(t.Context(), Options{DevDir: devDir(t, "ipmi0")})
		if err != nil {
			t.Fatal(err)
		}
		if r.path != a || r.kind != ipmitool {
			t.Errorf("Open chose %s (%s), want %s", r.path, r.kind, a)
		}
	})
	t.Run("freeipmi", func(t *testing.T) {
		b, _ := fake{name: "ipmi-dcmi", stdout: "freeipmi-lenovo-xcc.txt"}.install(t)
		t.Setenv("PATH", filepath.Dir(b))
		r, err := Open(t.Context(), Options{DevDir: devDir(t, "ipmi0")})
		if err != nil {
			t.Fatal(err)
		}
		if r.path != b || r.kind != freeipmi {
			t.Errorf("Open chose %s (%s), want %s", r.path, r.kind, b)
		}
	})
	t.Run("neither", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		_, err := Open(t.Context(), Options{DevDir: devDir(t, "ipmi0")})
		if !errors.Is(err, sensor.ErrNotFound) || !strings.Contains(err.Error(), "neither ipmitool nor ipmi-dcmi") {
			t.Errorf("Open: %v, want ErrNotFound naming both tools", err)
		}
	})
	t.Run("configured command missing", func(t *testing.T) {
		_, err := Open(t.Context(), Options{Command: filepath.Join(t.TempDir(), "ipmitool"), DevDir: devDir(t, "ipmi0")})
		if err == nil || errors.Is(err, sensor.ErrNotFound) {
			t.Errorf("Open: %v, want a configuration error, not ErrNotFound", err)
		}
	})
}
