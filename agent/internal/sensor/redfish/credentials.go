package redfish

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ReadCredentials reads a BMC credentials file: one line "user:password". The line is
// split at its first colon, so the password may contain colons (Basic authentication
// forbids them in the user name for the same reason); only the line ending is stripped,
// so leading and trailing spaces belong to the password. Empty lines and lines starting
// with "#" are ignored.
//
// The file must not be readable or writable by other users (mode 0600 or 0640, owned by
// the agent's user or group): a BMC password gives power control of the server.
func ReadCredentials(path string) (user, password string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("read credentials: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", "", fmt.Errorf("read credentials: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return "", "", fmt.Errorf("read credentials %s: mode %04o lets every user of this host "+
			"read the BMC password: chmod o-rwx %s", path, perm, path)
	}
	user, password, err = parseCredentials(f)
	if err != nil {
		return "", "", fmt.Errorf("read credentials %s: %w", path, err)
	}
	return user, password, nil
}

var errCredentials = errors.New(`want one line "user:password"`)

// maxCredentials bounds the credentials file.
const maxCredentials = 64 << 10

func parseCredentials(r io.Reader) (user, password string, err error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxCredentials))
	found := false
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if found {
			return "", "", fmt.Errorf("more than one credentials line: %w", errCredentials)
		}
		var ok bool
		user, password, ok = strings.Cut(line, ":")
		if !ok || user == "" {
			return "", "", fmt.Errorf("no user before a colon: %w", errCredentials)
		}
		found = true
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("scan: %w", err)
	}
	if !found {
		return "", "", fmt.Errorf("no credentials line: %w", errCredentials)
	}
	return user, password, nil
}
