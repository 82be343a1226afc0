package rapl

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

// TestPermissionDenied proves the EACCES path that every non-root agent meets since Linux
// 5.10. Root reads a file whatever its mode, and CI runs the tests as root, so the checks run
// as the user nobody (fixture.AsNobody) on a tree whose energy_uj files are mode 0000.
func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	fixture.AsNobody(t, buildPermissionDenied, checkPermissionDenied)
}

// buildPermissionDenied lays out two powercap trees in dir: all/, where no energy_uj may be
// read, and some/, where package-1's may not.
func buildPermissionDenied(t *testing.T, dir string) {
	t.Helper()
	all := newPowercap(t, filepath.Join(dir, "all"))
	all.zone("intel-rapl/intel-rapl:0", "package-0", "100\n", true)
	all.zone("intel-rapl/intel-rapl:0/intel-rapl:0:0", "dram", "20\n", true)
	some := newPowercap(t, filepath.Join(dir, "some"))
	some.zone("intel-rapl/intel-rapl:0", "package-0", "100\n", true)
	some.zone("intel-rapl/intel-rapl:1", "package-1", "200\n", true)
	for _, rel := range []string{
		"all/sys/devices/virtual/powercap/intel-rapl/intel-rapl:0/energy_uj",
		"all/sys/devices/virtual/powercap/intel-rapl/intel-rapl:0/intel-rapl:0:0/energy_uj",
		"some/sys/devices/virtual/powercap/intel-rapl/intel-rapl:1/energy_uj",
	} {
		if err := os.Chmod(filepath.Join(dir, rel), 0); err != nil {
			t.Fatal(err)
		}
	}
}

func checkPermissionDenied(t *testing.T, dir string) {
	t.Helper()
	t.Run("no counter readable", func(t *testing.T) {
		r, err := Open(sysfs.New(filepath.Join(dir, "all")))
		if !errors.Is(err, fs.ErrPermission) || r != nil {
			t.Fatalf("Open = %v, %v; want an error wrapping fs.ErrPermission", r, err)
		}
		for _, fix := range []string{"root", "CVE-2020-8694", "deploy/udev/"} {
			if !strings.Contains(err.Error(), fix) {
				t.Errorf("Open error %q does not mention %q", err, fix)
			}
		}
	})
	t.Run("one counter readable", func(t *testing.T) {
		r, err := Open(sysfs.New(filepath.Join(dir, "some")))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		got, err := r.Read(t.Context())
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "package-1") {
			t.Errorf("Read error = %v, want one wrapping fs.ErrPermission for package-1", err)
		}
		want := []sensor.Reading{counter("package-0", "package-0", semconv.ScopeCPUPackage, 100, intelMax)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Read (-want +got):\n%s", diff)
		}
	})
}
