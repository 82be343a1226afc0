package export

import (
	"crypto/tls"

	"github.com/fleetwatt/fleetwatt/internal/clientauth"
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
	cfg, err := clientauth.TLSConfig(o.CAFile, o.CertFile, o.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg.InsecureSkipVerify = o.InsecureSkipVerify //nolint:gosec // G402: only when the operator sets insecure_skip_verify
	return cfg, nil
}
