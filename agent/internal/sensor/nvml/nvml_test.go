package nvml

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetwatt/fleetwatt/internal/fixture"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// fakeSMI writes an executable nvidia-smi into a new directory that records its arguments in
// args and prints testdata/<answer> (nothing when answer is ""), then exits with code.
func fakeSMI(t *testing.T, answer string, code int) (path, args string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "nvidia-smi")
	args = filepath.Join(dir, "args")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" > '%s'\n", args)
	if answer != "" {
		abs, err := filepath.Abs(filepath.Join("testdata", answer))
		if err != nil {
			t.Fatal(err)
		}
		script += fmt.Sprintf("cat '%s'\n", abs)
	}
	script += fmt.Sprintf("exit %d\n", code)
	fixture.Executable(t, path, script)
	return path, args
}

// noLibrary is a library path that does not exist, so that the tests never load a real
// NVML even in a build with the nvml_dlopen tag on a GPU host.
func noLibrary(t *testing.T) string { return filepath.Join(t.TempDir(), "libnvidia-ml.so.1") }

func TestOpenNoDriver(t *testing.T) {
	t.Parallel()
	_, err := Open(Options{Library: noLibrary(t), SMICommand: filepath.Join(t.TempDir(), "nvidia-smi")})
	if !errors.Is(err, sensor.ErrNotFound) {
		t.Fatalf("Open = %v, want an error wrapping sensor.ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "no NVIDIA driver") {
		t.Errorf("error %q does not say there is no NVIDIA driver", err)
	}
}

func TestOpenSMIFailures(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		answer   string
		code     int
		notFound bool
	}{
		{"driver not loaded", "", smiExitDriverNotLoaded, true},
		{"nvml library missing", "", smiExitNoLibrary, true},
		{"no gpu listed", "", 0, true},
		{"no gpu reports power", "", 0, true},
		{"permission", "", 4, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			smi, _ := fakeSMI(t, c.answer, c.code)
			if c.name == "no gpu reports power" {
				fixture.Executable(t, smi, "#!/bin/sh\necho '0, GPU-x, Tesla K80, [N/A], [N/A]'\n")
			}
			_, err := Open(Options{Library: noLibrary(t), SMICommand: smi})
			if err == nil {
				t.Fatal("Open = nil error")
			}
			if got := errors.Is(err, sensor.ErrNotFound); got != c.notFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, got, c.notFound)
			}
		})
	}
}

func TestReadSMI(t *testing.T) {
	t.Parallel()
	gpu := func(uuid, name string, w, limit float64) sensor.Reading {
		return sensor.Reading{
			ID: uuid, Name: name, Source: semconv.SourceNVML, Scope: semconv.ScopeGPU,
			PowerW: w, MaxW: limit * limitMargin,
		}
	}
	for _, c := range []struct {
		answer string
		want   []sensor.Reading
	}{
		{"l4.csv", []sensor.Reading{gpu("GPU-7c3e9a15-4d2b-f860-1e7a-c9b3d5f2a047", "NVIDIA L4", 16.34, 72)}},
		{"a100-2x.csv", []sensor.Reading{
			gpu("GPU-9d4e2b7a-1c83-6f05-e2a9-4b7c0d3e8f51", "NVIDIA A100-SXM4-40GB", 54.76, 400),
			gpu("GPU-2a7f5c0e-8d46-b913-7c2e-f05a9b1d6e38", "NVIDIA A100-SXM4-40GB", 312.08, 400),
		}},
		{"h100-8x.csv", []sensor.Reading{
			gpu("GPU-3f1c5a8e-9b2d-4e7a-8c61-2d0f9e4b7a13", "NVIDIA H100 80GB HBM3", 71.23, 700),
			gpu("GPU-a9e04c27-5d13-4b8f-9f2e-6c7b1d08e355", "NVIDIA H100 80GB HBM3", 69.87, 700),
			gpu("GPU-5b2d8f91-0c4e-4a63-b7d5-e18a2f6c9d04", "NVIDIA H100 80GB HBM3", 412.55, 700),
			gpu("GPU-c7e61a30-8f2b-4d59-a014-73b9e5d2c8f6", "NVIDIA H100 80GB HBM3", 688.91, 700),
			gpu("GPU-1d9f3b6c-4a27-4e8d-9c50-b2e7f1a6d039", "NVIDIA H100 80GB HBM3", 70.02, 700),
			gpu("GPU-e4a7c2d9-6b15-4f03-8e9a-0d5c3b7f2a61", "NVIDIA H100 80GB HBM3", 72.40, 700),
			gpu("GPU-08b5e3f7-2c9d-4a1e-b6f4-9a3d7c0e5b82", "NVIDIA H100 80GB HBM3", 68.15, 700),
			gpu("GPU-6f2a9d4b-7e30-4c85-a1d7-5b8e0f3c9a26", "NVIDIA H100 80GB HBM3", 70.66, 700),
		}},
		// The boards without a power reading are left out, quietly: Info names them once.
		{"unsupported.csv", []sensor.Reading{gpu("GPU-8e5b2d9f-1a67-4c30-b8e2-7d4f0a9c6b53", "NVIDIA A100-SXM4-40GB", 61.45, 0)}},
	} {
		t.Run(c.answer, func(t *testing.T) {
			t.Parallel()
			smi, args := fakeSMI(t, c.answer, 0)
			r, err := Open(Options{Library: noLibrary(t), SMICommand: smi})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := r.Close(); err != nil {
					t.Error(err)
				}
			})
			got, err := r.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
			b, err := os.ReadFile(args)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := strings.TrimSpace(string(b)), strings.Join(smiArgs(), " "); got != want {
				t.Errorf("nvidia-smi ran with %q, want %q", got, want)
			}
			if r.Name() != semconv.SourceNVML {
				t.Errorf("Name() = %q", r.Name())
			}
			if info := r.Info(); !strings.Contains(info.Detail, smi) || !strings.Contains(info.Detail, c.want[0].ID) {
				t.Errorf("Info().Detail = %q: want the command and the GPUs", info.Detail)
			}
		})
	}
}

// TestReadSMIFailing: nvidia-smi that starts failing after Open (a board fell off the bus)
// gives an error, with the GPUs it still printed.
func TestReadSMIFailing(t *testing.T) {
	t.Parallel()
	smi, _ := fakeSMI(t, "a100-2x.csv", 0)
	r, err := Open(Options{Library: noLibrary(t), SMICommand: smi})
	if err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho '0, GPU-9d4e2b7a-1c83-6f05-e2a9-4b7c0d3e8f51, NVIDIA A100-SXM4-40GB, 54.76, 400.00'\n" +
		"echo 'Unable to determine the device handle for GPU0000:41:00.0: Unknown Error'\nexit 15\n"
	fixture.Executable(t, smi, script)
	got, err := r.Read(context.Background())
	if err == nil {
		t.Error("Read = nil error")
	}
	if len(got) != 1 || got[0].PowerW != 54.76 {
		t.Errorf("Read = %+v, want the GPU that was printed", got)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := r.Read(context.Background()); err == nil {
		t.Error("Read after Close = nil error")
	}
}

func TestParseSMI(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		in      string
		want    []smiGPU
		wantErr bool
	}{
		{name: "empty"},
		{
			name: "one gpu",
			in:   "0, GPU-1, NVIDIA L4, 16.34, 72.00\n",
			want: []smiGPU{{Index: 0, UUID: "GPU-1", Name: "NVIDIA L4", PowerW: 16.34, HasPower: true, LimitW: 72}},
		},
		{
			name: "no trailing newline, CRLF, blank lines",
			in:   "\r\n0, GPU-1, NVIDIA L4, 16.34, 72.00\r\n\r\n1, GPU-2, NVIDIA L4, 20, 72",
			want: []smiGPU{
				{Index: 0, UUID: "GPU-1", Name: "NVIDIA L4", PowerW: 16.34, HasPower: true, LimitW: 72},
				{Index: 1, UUID: "GPU-2", Name: "NVIDIA L4", PowerW: 20, HasPower: true, LimitW: 72},
			},
		},
		{
			name: "missing values",
			in:   "0, [N/A], Tesla K80, [N/A], [N/A]\n1, GPU-2, [Unknown Error], [Not Supported], 400.00\n2, GPU-3, X, N/A, [Insufficient Permissions]\n",
			want: []smiGPU{
				{Index: 0, Name: "Tesla K80"},
				{Index: 1, UUID: "GPU-2", LimitW: 400},
				{Index: 2, UUID: "GPU-3", Name: "X"},
			},
		},
		{
			name: "units left in",
			in:   "0, GPU-1, NVIDIA A100-SXM4-40GB, 61.45 W, 400.00 W\n",
			want: []smiGPU{{Index: 0, UUID: "GPU-1", Name: "NVIDIA A100-SXM4-40GB", PowerW: 61.45, HasPower: true, LimitW: 400}},
		},
		{
			name: "a comma in the name",
			in:   "3, GPU-1, Board, rev 2, 10.5, 75\n",
			want: []smiGPU{{Index: 3, UUID: "GPU-1", Name: "Board, rev 2", PowerW: 10.5, HasPower: true, LimitW: 75}},
		},
		{
			name:    "an error line among gpus",
			in:      "0, GPU-1, NVIDIA L4, 16.34, 72.00\nUnable to determine the device handle for GPU0000:41:00.0: Unknown Error\n",
			want:    []smiGPU{{Index: 0, UUID: "GPU-1", Name: "NVIDIA L4", PowerW: 16.34, HasPower: true, LimitW: 72}},
			wantErr: true,
		},
		{name: "header line", in: "index, uuid, name, power.draw [W], enforced.power.limit [W]\n", wantErr: true},
		{name: "too few fields", in: "0, GPU-1, NVIDIA L4, 16.34\n", wantErr: true},
		{name: "negative index", in: "-1, GPU-1, NVIDIA L4, 16.34, 72\n", wantErr: true},
		{name: "negative power", in: "0, GPU-1, NVIDIA L4, -16.34, 72\n", wantErr: true},
		{name: "NaN power", in: "0, GPU-1, NVIDIA L4, NaN, 72\n", wantErr: true},
		{name: "infinite limit", in: "0, GPU-1, NVIDIA L4, 16, +Inf\n", wantErr: true},
		{name: "word for power", in: "0, GPU-1, NVIDIA L4, lots, 72\n", wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseSMI(strings.NewReader(c.in))
			if (err != nil) != c.wantErr {
				t.Errorf("parseSMI error = %v, want error %v", err, c.wantErr)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("parseSMI (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseSMI(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.csv"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("0, GPU-1, Board, rev 2, 10.5 W, 75 W\r\n")
	f.Add("Unable to determine the device handle for GPU0000:41:00.0: Unknown Error\n")
	f.Fuzz(func(t *testing.T, s string) {
		gpus, _ := parseSMI(strings.NewReader(s))
		for _, g := range gpus {
			if g.Index < 0 || g.PowerW < 0 || g.LimitW < 0 || g.PowerW != g.PowerW || g.LimitW != g.LimitW {
				t.Fatalf("parsed an impossible GPU %+v", g)
			}
			if !g.HasPower && g.PowerW != 0 {
				t.Fatalf("power without HasPower: %+v", g)
			}
		}
	})
}
