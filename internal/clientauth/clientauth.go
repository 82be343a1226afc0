// Package clientauth holds what a client of a fleetwatt endpoint needs to prove and check
// identities: the TLS configuration from PEM files, the bearer token from a file, and whether
// a host is this machine (where a token may travel without TLS). The agent uses it towards
// its collector, a regional collector towards the central one.
package clientauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// TLSConfig returns a client TLS configuration (TLS 1.2 or later): with caFile, servers are
// verified against its certificates instead of the system roots; with certFile and keyFile
// (both or neither), the client presents that certificate (mutual TLS).
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca file %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("tls: cert file and key file go together: set both or neither")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load client certificate %s and key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// ReadToken reads a bearer token from a file: surrounding whitespace (the trailing newline
// an editor or echo leaves) is dropped. Errors never contain the token.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	for _, c := range []byte(tok) {
		// RFC 6750's b64token is printable ASCII; anything else cannot be a header value.
		if c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("token file %s: the token holds a space, control or non-ASCII character", path)
		}
	}
	return tok, nil
}

// Loopback reports whether host names this machine, where plaintext cannot be sniffed on a
// network.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
