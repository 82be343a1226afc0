// Package sysfs reads the small text files of /sys and /proc under a filesystem root, so that
// the agent can read another root (/host in a container) and the tests can read fixture trees
// of real machines.
package sysfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
