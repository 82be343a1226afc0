package hwmon

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// nobodyEnv carries the tree to a copy of the test binary that runs as nobody.
const nobodyEnv = "FLEETWATT_HWMON_TEST_NOBODY_DIR"

// TestPermissionDenied proves the EACCES path that a non-root agent meets on kernels that
// restrict power sensors to root (Ampere's). Root reads a file whatever its mode, and CI runs
// the tests as root, so as root the test runs itself again as the user nobody on a tree whose
// power files are mode 0000.
func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	if dir := os.Getenv(nobodyEnv); dir != "" {
		checkPermissionDenied(t, dir)
		return
	}
	dir := unprivilegedTempDir(t)
	attrs := map[string]string{
		"name":         "apm_xgene\n",
		"power1_input": "16280000\n", "power1_label": "CPU power\n",
		"power2_input": "31900000\n", "power2_label": "IO power\n",
	}
	newTree(t, filepath.Join(dir, "all")).chip("hwmon0", xgene, attrs, nil)
	newTree(t, filepath.Join(dir, "some")).chip("hwmon0", xgene, attrs, nil)
	for _, rel := range []string{
		"all/sys/devices/" + xgene + "/hwmon/hwmon0/power1_input",
		"all/sys/devices/" + xgene + "/hwmon/hwmon0/power2_input",
		"some/sys/devices/" + xgene + "/hwmon/hwmon0/power2_input",
	} {
		if err := os.Chmod(filepath.Join(dir, rel), 0); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() != 0 {
		checkPermissionDenied(t, dir)
		return
	}
	runAsNobody(t, dir)
}

func checkPermissionDenied(t *testing.T, dir string) {
	t.Helper()
	t.Run("no channel readable", func(t *testing.T) {
		r, err := Open(sysfs.New(filepath.Join(dir, "all")))
		if !errors.Is(err, fs.ErrPermission) || r != nil {
			t.Fatalf("Open = %v, %v; want an error wrapping fs.ErrPermission", r, err)
		}
		for _, fix := range []string{"root", "deploy/udev/"} {
			if !strings.Contains(err.Error(), fix) {
				t.Errorf("Open error %q does not mention %q", err, fix)
			}
		}
	})
	t.Run("one channel readable", func(t *testing.T) {
		r, err := Open(sysfs.New(filepath.Join(dir, "some")))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		got, err := r.Read(t.Context())
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "io-0") {
			t.Errorf("Read error = %v, want one wrapping fs.ErrPermission for io-0", err)
		}
		want := []sensor.Reading{power("cpu-0", "CPU power", semconv.ScopeCPUPackage, 16.28)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Read (-want +got):\n%s", diff)
		}
	})
}

// unprivilegedTempDir returns a temporary directory that nobody may traverse: t.TempDir()
// is inside a directory of mode 0700.
func unprivilegedTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fleetwatt-hwmon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runAsNobody runs the current test again in a copy of the test binary as uid and gid 65534,
// with dir in nobodyEnv. The binary is copied into dir because the go command builds it in a
// directory that only its owner may enter.
func runAsNobody(t *testing.T, dir string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "hwmon.test")
	if err := copyFile(exe, bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), nobodyEnv+"="+dir)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("test as nobody: %v\n%s", err, out)
	}
	// A child that matched no test would pass too; make sure it ran the checks.
	if !strings.Contains(string(out), "--- PASS: "+t.Name()+"/one_channel_readable") {
		t.Fatalf("test as nobody did not run the checks:\n%s", out)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
