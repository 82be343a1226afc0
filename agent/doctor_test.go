package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/internal/fixture"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// binDir holds the agents the tests build; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fleetwatt-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// agentBinaries builds the agent once per architecture.
var agentBinaries sync.Map // GOARCH → func() (string, error)

func agentBinary(t *testing.T, goarch string) string {
	t.Helper()
	f, _ := agentBinaries.LoadOrStore(goarch, sync.OnceValues(func() (string, error) {
		out := filepath.Join(binDir, "fleetwatt-agent-"+goarch)
		cmd := exec.Command("go", "build", "-o", out, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build for %s: %w\n%s", goarch, err, b)
		}
		return out, nil
	}))
	bin, err := f.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// qemu names Debian's qemu-user-static emulator for each GOARCH.
var qemu = map[string]string{"arm64": "qemu-aarch64-static", "amd64": "qemu-x86_64-static"}

// command runs the agent built for goarch: natively on a host of that architecture, under
// qemu-user elsewhere, so an arm64 agent really runs in the tests of an amd64 machine.
func command(t *testing.T, goarch string, args ...string) *exec.Cmd {
	t.Helper()
	bin := agentBinary(t, goarch)
	if goarch == runtime.GOARCH {
		return exec.Command(bin, args...)
	}
	emu, err := exec.LookPath(qemu[goarch])
	if err != nil {
		msg := fmt.Sprintf("%s not found: run `make deps` (installs qemu-user-static) to run the %s agent", qemu[goarch], goarch)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return exec.Command(emu, append([]string{bin}, args...)...)
}

// TestDoctorGolden runs `doctor --format json` on every fixture machine with the agent built
// for that machine's architecture (the arm64 agent under qemu-user on an amd64 host) and
// compares the output with testdata/doctor/<machine>.json; `go test -update` rewrites them.
func TestDoctorGolden(t *testing.T) {
	t.Parallel()
	for _, m := range fixture.Machines {
		t.Run(m, func(t *testing.T) {
			t.Parallel()
			cmd := command(t, fixture.Arch(m), "doctor", "--root", m, "--format", "json", "--window", "100ms")
			// Relative to the fixtures' directory, paths in the output are the same on every
			// machine; PATH is empty so that no ipmitool or nvidia-smi of the test host leaks in.
			cmd.Dir = fixture.Dir(t)
			cmd.Env = []string{"PATH=", "HOME=" + t.TempDir()}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("doctor on %s: %v\n%s", m, err, stderr.String())
			}
			golden := filepath.Join("testdata", "doctor", m+".json")
			if *update {
				if err := os.WriteFile(golden, stdout.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run `go test ./agent -run TestDoctorGolden -update` to create it)", err)
			}
			if diff := cmp.Diff(string(want), stdout.String()); diff != "" {
				t.Errorf("doctor --format json on %s (-want +got):\n%s", m, diff)
			}
		})
	}
}
