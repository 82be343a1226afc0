package cpustat

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// machines are the fixture trees with a proc/stat.
var machines = []string{"intel-xeon-2s", "amd-epyc", "ampere-altra"}

// approx compares seconds computed from ticks by different sums.
var approx = cmpopts.EquateApprox(0, 1e-9)

func TestReadFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		machine string
		cpus    int
		all     Times // the "cpu" line / 100
		cpu0    Times // the "cpu0" line / 100
	}{
		{
			machine: "intel-xeon-2s",
			cpus:    16,
			all: Times{
				User: 966512.46, Nice: 1535.19, System: 111532.96, Idle: 40376087.30,
				IOWait: 5912.83, IRQ: 2270.36, SoftIRQ: 8119.50,
			},
			cpu0: Times{
				User: 57758.19, Nice: 141.35, System: 3012.77, Idle: 2530579.68,
				IOWait: 371.36, SoftIRQ: 134.79,
			},
		},
		{
			// KVM host: guest time (3802964 ticks) is inside user and must not be added again.
			machine: "amd-epyc",
			cpus:    8,
			all: Times{
				User: 399065.88, Nice: 802.66, System: 58218.97, Idle: 20269974.35,
				IOWait: 1872.74, IRQ: 1580.10, SoftIRQ: 4478.99,
			},
			cpu0: Times{
				User: 57783.78, Nice: 76.11, System: 4798.24, Idle: 2528213.16,
				IOWait: 318.02, SoftIRQ: 808.14,
			},
		},
		{
			machine: "ampere-altra",
			cpus:    80,
			all: Times{
				User: 4588920.32, Nice: 7143.36, System: 584647.26, Idle: 202102722.68,
				IOWait: 25697.21, IRQ: 12506.73, SoftIRQ: 38244.91,
			},
			cpu0: Times{
				User: 59001.06, Nice: 30.34, System: 8048.86, Idle: 2523852.56,
				IOWait: 469.21, SoftIRQ: 596.28,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.machine, func(t *testing.T) {
			t.Parallel()
			got, err := Read(sysfs.New(fixture.Root(t, tt.machine)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.all, got.All, approx); diff != "" {
				t.Errorf("All (-want +got):\n%s", diff)
			}
			if len(got.CPUs) != tt.cpus {
				t.Fatalf("got %d CPUs, want %d", len(got.CPUs), tt.cpus)
			}
			if diff := cmp.Diff(CPU{Number: 0, Times: tt.cpu0}, got.CPUs[0], approx); diff != "" {
				t.Errorf("CPUs[0] (-want +got):\n%s", diff)
			}
			// The kernel's aggregate line is the sum of the per-CPU lines, and each CPU's
			// modes add up to the same uptime: the fixture is self-consistent.
			var sum Times
			for i, c := range got.CPUs {
				if c.Number != i {
					t.Errorf("CPUs[%d].Number = %d", i, c.Number)
				}
				sum = sum.add(c.Times)
			}
			if diff := cmp.Diff(got.All, sum, cmpopts.EquateApprox(1e-12, 0)); diff != "" {
				t.Errorf("sum of CPUs != All (-all +sum):\n%s", diff)
			}
		})
	}
}

// add is the inverse of Sub, for checking sums.
func (t Times) add(u Times) Times {
	return Times{
		t.User + u.User, t.Nice + u.Nice, t.System + u.System, t.Idle + u.Idle,
		t.IOWait + u.IOWait, t.IRQ + u.IRQ, t.SoftIRQ + u.SoftIRQ, t.Steal + u.Steal,
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    Stat
		wantErr string // substring; "" means no error
	}{
		{
			name: "linux 2.4, four columns",
			in:   "cpu  400 0 100 500\ncpu0 200 0 50 250\ncpu1 200 0 50 250\npage 1 2\n",
			want: Stat{
				All: Times{User: 4, System: 1, Idle: 5},
				CPUs: []CPU{
					{Number: 0, Times: Times{User: 2, System: 0.5, Idle: 2.5}},
					{Number: 1, Times: Times{User: 2, System: 0.5, Idle: 2.5}},
				},
			},
		},
		{
			name: "linux 2.6.0, seven columns",
			in:   "cpu 1 2 3 4 5 6 7\ncpu0 1 2 3 4 5 6 7\nintr 0\n",
			want: Stat{
				All:  Times{User: .01, Nice: .02, System: .03, Idle: .04, IOWait: .05, IRQ: .06, SoftIRQ: .07},
				CPUs: []CPU{{Times: Times{User: .01, Nice: .02, System: .03, Idle: .04, IOWait: .05, IRQ: .06, SoftIRQ: .07}}},
			},
		},
		{
			name: "steal in a VM, guest ignored, columns of a future kernel ignored",
			in:   "cpu  100 0 100 700 0 0 0 100 90 0 55 66\ncpu0 100 0 100 700 0 0 0 100 90 0 55 66\n",
			want: Stat{
				All:  Times{User: 1, System: 1, Idle: 7, Steal: 1},
				CPUs: []CPU{{Times: Times{User: 1, System: 1, Idle: 7, Steal: 1}}},
			},
		},
		{
			name: "offline CPUs leave gaps, no newline at the end",
			in:   "cpu 2 0 0 2\ncpu0 1 0 0 1\ncpu3 1 0 0 1",
			want: Stat{
				All: Times{User: .02, Idle: .02},
				CPUs: []CPU{
					{Number: 0, Times: Times{User: .01, Idle: .01}},
					{Number: 3, Times: Times{User: .01, Idle: .01}},
				},
			},
		},
		{
			name: "tabs and a huge intr line after the cpu lines",
			in:   "cpu\t1 1 1 1\ncpu0\t1 1 1 1\nintr " + strings.Repeat("123456 ", 20000) + "\n",
			want: Stat{
				All:  Times{User: .01, Nice: .01, System: .01, Idle: .01},
				CPUs: []CPU{{Times: Times{User: .01, Nice: .01, System: .01, Idle: .01}}},
			},
		},
		{
			name: "largest counter",
			in:   "cpu 18446744073709551615 0 0 0\n",
			want: Stat{All: Times{User: 18446744073709551615 / 100.0}, CPUs: []CPU{}},
		},
		{name: "empty", in: "", wantErr: `no aggregate "cpu" line`},
		{name: "no cpu line first", in: "intr 1 2 3\ncpu 1 2 3 4\n", wantErr: `line 1 "intr 1 2 3": no aggregate`},
		{name: "per-CPU line first", in: "cpu0 1 2 3 4\n", wantErr: `line 1 "cpu0 1 2 3 4": no aggregate`},
		{name: "cpufreq is not cpu", in: "cpufreq 1 2 3 4\n", wantErr: "line 1"},
		{name: "three columns", in: "cpu 1 2 3 4\ncpu0 1 2 3\n", wantErr: `line 2 "cpu0 1 2 3": 3 columns, want at least 4`},
		{name: "not a number", in: "cpu 1 2 x 4\n", wantErr: `line 1 "cpu 1 2 x 4": column 3: not a decimal number`},
		{name: "negative", in: "cpu 1 -2 3 4\n", wantErr: "column 2: not a decimal number"},
		{name: "overflow", in: "cpu 18446744073709551616 0 0 0\n", wantErr: "column 1: value out of range"},
		{name: "second aggregate", in: "cpu 1 1 1 1\ncpu 1 1 1 1\n", wantErr: "line 2"},
		{name: "cpu number too big", in: "cpu 1 1 1 1\ncpu99999999999999999999 1 1 1 1\n", wantErr: "cpu number out of range"},
		{name: "overlong cpu line", in: "cpu 1 1 1 1\ncpu0" + strings.Repeat(" 1", 3000) + "\n", wantErr: "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, approx); diff != "" {
				t.Errorf("Parse() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadMissing(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	_, err := Read(sysfs.New(root))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(root, "proc", "stat")) {
		t.Fatalf("Read() error = %v, want ErrNotExist naming the file", err)
	}
}

func TestReadMalformedNamesFile(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	path := filepath.Join(root, "proc", "stat")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("cpu 1 2 3 4\ncpu0 1 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Read(sysfs.New(root))
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("Read() error = %v, want one naming %s and line 2", err, path)
	}
}

func TestTimes(t *testing.T) {
	t.Parallel()
	a := Times{User: 10, Nice: 1, System: 4, Idle: 80, IOWait: 2, IRQ: 0.5, SoftIRQ: 1.5, Steal: 1}
	b := Times{User: 4, Nice: 1, System: 2, Idle: 40, IOWait: 1, IRQ: 0.25, SoftIRQ: 0.75, Steal: 0}

	if got, want := a.Busy(), 18.0; got != want {
		t.Errorf("Busy() = %v, want %v", got, want)
	}
	if got, want := a.Total(), 100.0; got != want {
		t.Errorf("Total() = %v, want %v", got, want)
	}
	wantSub := Times{User: 6, Nice: 0, System: 2, Idle: 40, IOWait: 1, IRQ: 0.25, SoftIRQ: 0.75, Steal: 1}
	if diff := cmp.Diff(wantSub, a.Sub(b)); diff != "" {
		t.Errorf("Sub() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([7]float64{10, 1, 4, 80, 2, 2, 1}, a.Modes()); diff != "" {
		t.Errorf("Modes() (-want +got):\n%s", diff)
	}
}

// TestModesFollowSemconv keeps Modes in step with the mode vocabulary the collector reads:
// the same order, and busy exactly where semconv says so.
func TestModesFollowSemconv(t *testing.T) {
	t.Parallel()
	x := Times{User: 1, Nice: 2, System: 4, Idle: 8, IOWait: 16, IRQ: 32, SoftIRQ: 64, Steal: 128}
	modes := x.Modes()
	if len(semconv.CPUModes) != len(modes) {
		t.Fatalf("semconv.CPUModes has %d modes, Modes() %d", len(semconv.CPUModes), len(modes))
	}
	want := map[string]float64{
		semconv.ModeUser: 1, semconv.ModeNice: 2, semconv.ModeSystem: 4, semconv.ModeIdle: 8,
		semconv.ModeIOWait: 16, semconv.ModeInterrupt: 96, semconv.ModeSteal: 128,
	}
	var busy, total float64
	for i, mode := range semconv.CPUModes {
		if modes[i] != want[mode] {
			t.Errorf("Modes()[%d] (%s) = %v, want %v", i, mode, modes[i], want[mode])
		}
		if semconv.Busy(mode) {
			busy += modes[i]
		}
		total += modes[i]
	}
	if busy != x.Busy() || total != x.Total() {
		t.Errorf("busy, total over modes = %v, %v; Busy(), Total() = %v, %v", busy, total, x.Busy(), x.Total())
	}
}

func FuzzParse(f *testing.F) {
	for _, m := range machines {
		b, err := os.ReadFile(filepath.Join(fixture.Root(f, m), "proc", "stat"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("cpu 1 2 3 4\ncpu0 1 2 3 4"))
	f.Add([]byte("cpu  1 2 3 4 5 6 7 8 9 10 11\ncpu7 0 0 0 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(strings.NewReader(string(b)))
		if err != nil {
			if len(s.CPUs) != 0 || s.All != (Times{}) {
				t.Fatalf("Parse() returned data with error %v", err)
			}
			return
		}
		for _, x := range append([]CPU{{Number: -1, Times: s.All}}, s.CPUs...) {
			for i, v := range x.Modes() {
				if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("cpu %d mode %d = %v", x.Number, i, v)
				}
			}
			if x.Busy() > x.Total() {
				t.Fatalf("cpu %d: Busy() %v > Total() %v", x.Number, x.Busy(), x.Total())
			}
		}
	})
}

func BenchmarkRead(b *testing.B) {
	for _, m := range []string{"intel-xeon-2s", "ampere-altra"} {
		b.Run(m, func(b *testing.B) {
			fsys := sysfs.New(fixture.Root(b, m))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Read(fsys); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
