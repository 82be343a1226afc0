package export

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// TLSOptions say how the agent verifies the collector over https:// and, for mutual TLS,
// which certificate it presents. The zero value verifies the collector against the system
// roots (or OTEL_EXPORTER_OTLP_CERTIFICATE, which the SDK reads only when no option is set).
type TLSOptions struct {
	// CAFile is a PEM file of the CAs that sign the collector's certificate; it replaces the
	// system roots.
	CAFile string
	// CertFile and KeyFile are the agent's client certificate and key (PEM), for a collector
	// that requires client certificates; both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any collector certificate: the connection is encrypted but
	// anyone in the path can impersonate the collector. Only when set explicitly, for tests.
	InsecureSkipVerify bool
}

// set reports whether any option is made.
func (o TLSOptions) set() bool { return o != TLSOptions{} }

// clientConfig loads the files into a client TLS configuration.
func (o TLSOptions) clientConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify} //nolint:gosec // G402: only when the operator sets insecure_skip_verify
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca file %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("tls: cert file and key file go together: set both or neither")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load client certificate %s and key %s: %w", o.CertFile, o.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// readToken reads a bearer token from a file: surrounding whitespace (the trailing newline
// an editor or echo leaves) is dropped. Errors never contain the token.
func readToken(path string) (string, error) {
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

// loopback reports whether host names this machine, where plaintext cannot be sniffed
// on a network.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
