package sysfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/internal/fixture"
)

func TestParseUint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr error
	}{
		{"kHz", "2000001\n", 2000001, nil},
		{"zero", "0\n", 0, nil},
		{"no newline", "42", 42, nil},
		{"trailing blanks", "1500000 \t\n", 1500000, nil},
		{"leading zeros", "0007\n", 7, nil},
		{"max", "18446744073709551615\n", 1<<64 - 1, nil},
		{"2^64", "18446744073709551616\n", 0, strconv.ErrRange},
		{"40 nines", strings.Repeat("9", 40), 0, strconv.ErrRange},
		{"empty", "", 0, ErrEmpty},
		{"newline only", "\n", 0, ErrEmpty},
		{"blanks only", " \t\n", 0, ErrEmpty},
		{"leading blank", " 5\n", 0, ErrSyntax},
		{"negative", "-1\n", 0, ErrSyntax},
		{"plus", "+1\n", 0, ErrSyntax},
		{"word", "<unknown>\n", 0, ErrSyntax},
		{"two numbers", "1 2\n", 0, ErrSyntax},
		{"carriage return", "1\r\n", 0, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseUint([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr != nil) != (err != nil) {
				t.Fatalf("ParseUint(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseUint(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseUint(f *testing.F) {
	// Seeds: the attributes Attr reads on real machines (cpufreq's kHz, cpuidle's
	// usage count and µs).
	for _, m := range []string{"intel-xeon-2s", "amd-epyc", "ampere-altra"} {
		cpu1 := filepath.Join(fixture.Root(f, m), "sys", "devices", "system", "cpu", "cpu1")
		for _, rel := range []string{"cpufreq/scaling_cur_freq", "cpuidle/state1/usage", "cpuidle/state1/time"} {
			b, err := os.ReadFile(filepath.Join(cpu1, rel))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("18446744073709551615\n"))
	f.Add([]byte("18446744073709551616\n"))
	f.Add([]byte("<unknown>\n"))
	f.Add([]byte("-1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseUint(b)
		trimmed := strings.TrimRight(string(b), " \t\n")
		if err != nil {
			// What ParseUint refuses, strconv refuses too (it knows no blanks either).
			if _, serr := strconv.ParseUint(trimmed, 10, 64); serr == nil {
				t.Fatalf("ParseUint(%q): %v, but strconv.ParseUint accepts %q", b, err, trimmed)
			}
			return
		}
		digits := strings.TrimLeft(trimmed, "0")
		if digits == "" {
			digits = "0"
		}
		if strconv.FormatUint(v, 10) != digits {
			t.Fatalf("ParseUint(%q) = %d", b, v)
		}
	})
}

func TestAttrReadUint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name    string
		path    string
		want    uint64
		wantErr error // nil with wantMsg: an error of no sentinel
		wantMsg string
		offline bool
	}{
		{name: "number", path: write("ok", "3199998\n"), want: 3199998},
		{name: "fills the buffer less one", path: write("max", "18446744073709551615\n"), want: 1<<64 - 1},
		{name: "empty", path: write("empty", ""), wantErr: ErrEmpty, wantMsg: "parse " + dir},
		{name: "not a number", path: write("nan", "not a number\n"), wantErr: ErrSyntax},
		{name: "overflow", path: write("big", "18446744073709551616\n"), wantErr: strconv.ErrRange},
		{name: "too long", path: write("long", strings.Repeat("9", 40)+"\n"), wantMsg: "longer than 31 bytes"},
		{name: "gone", path: filepath.Join(dir, "gone"), wantErr: fs.ErrNotExist, wantMsg: "open " + dir, offline: true},
		{name: "directory", path: dir, wantErr: syscall.EISDIR, wantMsg: "read " + dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf [32]byte
			a := NewAttr(tt.path)
			t.Cleanup(func() { _ = a.Close() })
			got, err := a.ReadUint(buf[:])
			if tt.wantErr == nil && tt.wantMsg == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ReadUint = %d, %v; want %d", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadUint = %d, want an error", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("ReadUint error = %v, want one wrapping %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("ReadUint error %q does not say %q and name %s", err, tt.wantMsg, tt.path)
			}
			if IsOffline(err) != tt.offline {
				t.Errorf("IsOffline(%v) = %t, want %t", err, !tt.offline, tt.offline)
			}
		})
	}
}

// TestAttrKeepsTheFileOpen: readings after the first see what the file holds then through
// the file opened at the first; a failed read closes it, and the next reading opens the path
// again, as when a CPU goes offline and comes back.
func TestAttrKeepsTheFileOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "usage")
	write := func(data string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := NewAttr(path)
	t.Cleanup(func() { _ = a.Close() })
	var buf [32]byte
	read := func(want uint64) {
		t.Helper()
		if got, err := a.ReadUint(buf[:]); err != nil || got != want {
			t.Fatalf("ReadUint = %d, %v; want %d", got, err, want)
		}
	}

	// Missing at first (an offline CPU): an error, and found once it is there.
	if _, err := a.ReadUint(buf[:]); !IsOffline(err) {
		t.Fatalf("ReadUint of a missing file: %v, want an offline error", err)
	}
	write("100\n")
	read(100)
	// Written in place, as the kernel's show() would answer: the open file sees it.
	write("12345678\n")
	read(12345678)
	write("7\n")
	read(7)

	// A new file renamed over the path goes unseen while the file stays open...
	tmp := filepath.Join(dir, "new")
	if err := os.WriteFile(tmp, []byte("42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	read(7)
	// ...and is read once a Close makes the next reading open the path again.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	read(42)

	// A read that fails closes the file: here the path becomes a directory (EISDIR), then a
	// file again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ReadUint(buf[:]); !errors.Is(err, syscall.EISDIR) {
		t.Fatalf("ReadUint of a directory: %v, want EISDIR", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	write("9\n")
	read(9)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestIsOffline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "open", Path: "/sys/x", Err: syscall.ENOENT}, true},
		{&fs.PathError{Op: "read", Path: "/sys/x", Err: syscall.ENODEV}, true},
		{fmt.Errorf("read cpuidle: %w", &fs.PathError{Op: "open", Path: "/sys/x", Err: syscall.ENOENT}), true},
		{&fs.PathError{Op: "open", Path: "/sys/x", Err: syscall.EACCES}, false},
		{&fs.PathError{Op: "read", Path: "/sys/x", Err: syscall.EBUSY}, false},
		{ErrEmpty, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := IsOffline(tt.err); got != tt.want {
			t.Errorf("IsOffline(%v) = %t, want %t", tt.err, got, tt.want)
		}
	}
}

func TestOnlineCPUs(t *testing.T) {
	t.Parallel()
	t.Run("fixtures", func(t *testing.T) {
		t.Parallel()
		for machine, n := range map[string]int{"intel-xeon-2s": 16, "amd-epyc": 8, "ampere-altra": 80} {
			got, err := OnlineCPUs(New(fixture.Root(t, machine)))
			if err != nil {
				t.Fatalf("%s: %v", machine, err)
			}
			want := make([]int, n)
			for i := range want {
				want[i] = i
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("OnlineCPUs(%s) (-want +got):\n%s", machine, diff)
			}
		}
	})
	t.Run("edge cases", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		const cpu = "sys/devices/system/cpu/"
		for rel, data := range map[string]string{
			cpu + "online":                    "0-1,3,10\n",
			cpu + "cpu0/topology/core_id":     "0\n", // no online file: cpu0 cannot go offline
			cpu + "cpu1/online":               "1\n",
			cpu + "cpu2/online":               "0\n", // offline
			cpu + "cpu3/online":               "1\n",
			cpu + "cpu10/online":              "1\n", // sorts as a number, after cpu3
			cpu + "cpufreq/boost":             "1\n",
			cpu + "cpuidle/current_driver":    "intel_idle\n",
			cpu + "cpu/.keep":                 "",
			cpu + "cpu1x/.keep":               "",
			cpu + "cpu99999999999999999999/x": "", // overflows an int
		} {
			path := filepath.Join(root, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := OnlineCPUs(New(root))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int{0, 1, 3, 10}, got); diff != "" {
			t.Errorf("OnlineCPUs (-want +got):\n%s", diff)
		}
	})
	t.Run("no sys", func(t *testing.T) {
		t.Parallel()
		_, err := OnlineCPUs(New(t.TempDir()))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("OnlineCPUs error = %v, want one wrapping fs.ErrNotExist", err)
		}
	})
}

func TestReadUint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		data    string
		want    uint64
		wantErr error
	}{
		{"number", "123456\n", 123456, nil},
		{"surrounding space", " 7 \n", 7, nil},
		{"empty", "", 0, ErrEmpty},
		{"newline only", "\n", 0, ErrEmpty},
		{"not a number", "abc\n", 0, strconv.ErrSyntax},
		{"overflow", "18446744073709551616\n", 0, strconv.ErrRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(path, []byte(tt.data), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadUint(path)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr != nil) != (err != nil) {
				t.Fatalf("ReadUint error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ReadUint = %d, want %d", got, tt.want)
			}
		})
	}
}

// BenchmarkAttrReadUint reads one attribute kept open: one pread, no allocation.
func BenchmarkAttrReadUint(b *testing.B) {
	path := filepath.Join(b.TempDir(), "scaling_cur_freq")
	if err := os.WriteFile(path, []byte("3199998\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	a := NewAttr(path)
	defer a.Close()
	var buf [32]byte
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.ReadUint(buf[:]); err != nil {
			b.Fatal(err)
		}
	}
}
