// Package sysfs reads the small text files of /sys and /proc under a filesystem root, so that
// the agent can read another root (/host in a container) and the tests can read fixture trees
// of real machines.
package sysfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// maxFileSize bounds what ReadFile reads: sysfs attributes are at most a page.
const maxFileSize = 64 << 10

// FS is a filesystem root holding sys/ and proc/.
type FS struct {
	root string
}

// New returns the FS rooted at root ("/" for the running host).
func New(root string) FS {
	if root == "" {
		root = "/"
	}
	return FS{root: filepath.Clean(root)}
}

// Root is the filesystem root.
func (f FS) Root() string { return f.root }

// Path joins elem below the root: Path("sys/class/powercap") is "/sys/class/powercap" when the
// root is "/".
func (f FS) Path(elem ...string) string {
	return filepath.Join(append([]string{f.root}, elem...)...)
}

// ReadFile reads a whole small file with a single read where the file allows it. Some drivers
// answer a second read of an attribute with EAGAIN or recompute the value, so attributes are
// read once into a buffer, as node_exporter does.
func ReadFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxFileSize))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// ReadString reads a file and trims surrounding white space.
func ReadString(path string) (string, error) {
	b, err := ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// ErrEmpty is returned for an attribute file that holds nothing, which some drivers show
// while a sensor is not ready.
var ErrEmpty = errors.New("empty file")

// ReadUint reads a file holding one unsigned decimal integer.
func ReadUint(path string) (uint64, error) {
	s, err := ReadString(path)
	if err != nil {
		return 0, err
	}
	if s == "" {
		return 0, fmt.Errorf("read %s: %w", path, ErrEmpty)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, nil
}

// ReadInt reads a file holding one signed decimal integer.
func ReadInt(path string) (int64, error) {
	s, err := ReadString(path)
	if err != nil {
		return 0, err
	}
	if s == "" {
		return 0, fmt.Errorf("read %s: %w", path, ErrEmpty)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, nil
}

// ErrSyntax is returned for an attribute that is not one unsigned decimal number.
var ErrSyntax = errors.New("not a decimal number")

// ReadUintBuf reads the unsigned decimal number in the attribute at path into buf and parses
// it with ParseUint, for readers that read thousands of attributes per reading (one per CPU,
// or per idle state of each CPU). It uses the system calls directly: os.Open allocates a File
// per call, which on a host with 512 CPUs would be thousands of allocations per reading; this
// allocates only the path's C string. An attribute that fills buf is an error: size buf one
// byte larger than the longest attribute expected (32 bytes hold 20 digits and a newline).
// Errors of the system calls are *fs.PathError, so IsOffline and errors.Is(err,
// fs.ErrPermission) see through them.
func ReadUintBuf(path string, buf []byte) (uint64, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var n int
	for {
		n, err = syscall.Read(fd, buf)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return 0, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if n >= len(buf) {
		return 0, fmt.Errorf("parse %s: longer than %d bytes", path, len(buf)-1)
	}
	v, err := ParseUint(buf[:n])
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, nil
}

// ParseUint parses one unsigned decimal number followed by optional white space (the newline
// sysfs ends every attribute with). It returns ErrEmpty for nothing but white space,
// ErrSyntax for anything else that is not digits, and strconv.ErrRange for a number of more
// than 64 bits. It works on bytes so a reading allocates nothing.
func ParseUint(b []byte) (uint64, error) {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return 0, ErrEmpty
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, ErrSyntax
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, strconv.ErrRange
		}
		v = v*10 + d
	}
	return v, nil
}

// IsOffline reports whether err is what reading an attribute of a CPU that went offline
// gives: its directory is gone (ENOENT) or its driver answers ENODEV.
func IsOffline(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV)
}

// OnlineCPUs lists the numbers N of the sys/devices/system/cpu/cpuN directories below the
// root of fsys, ascending, leaving out the CPUs whose online file says 0. cpu0 often has no
// online file: it cannot go offline. The error of a missing directory wraps fs.ErrNotExist.
func OnlineCPUs(fsys FS) ([]int, error) {
	dir := fsys.Path("sys", "devices", "system", "cpu")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var cpus []int
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), "cpu")
		if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
			continue // cpufreq, cpuidle, online, ...
		}
		cpu, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if s, err := ReadString(dir + "/" + e.Name() + "/online"); err == nil && s == "0" {
			continue
		}
		cpus = append(cpus, cpu)
	}
	slices.Sort(cpus)
	return cpus, nil
}
