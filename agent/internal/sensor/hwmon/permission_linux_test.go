package hwmon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// TestPermissionDenied proves the EACCES path that a non-root agent meets on kernels that
// restrict power sensors to root (Ampere's). Root reads a file whatever its mode, and CI runs
// the tests as root, so the checks run as the user nobody (fixture.AsNobody) on a tree whose
// power files are mode 0000.
func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	fixture.AsNobody(t, buildPermissionDenied, checkPermissionDenied)
}

// buildPermissionDenied lays out two xgene-hwmon trees in dir: all/, where no power file may
// be read, and some/, where power2_input (IO power) may not.
func buildPermissionDenied(t *testing.T, dir string) {
	t.Helper()
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
