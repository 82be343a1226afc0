package receive

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLS configures transport security for both receivers (and, through ServerConfig, any other
// listener of the collector). The zero value means plaintext.
type TLS struct {
	CertFile string // server certificate chain, PEM
	KeyFile  string // its private key, PEM
	// ClientCAFile, when set, makes every client present a certificate signed by one of the
	// CAs in this PEM file (mutual TLS); connections without one fail the handshake.
	ClientCAFile string
}

// Enabled reports whether any TLS setting is made.
func (c TLS) Enabled() bool { return c != TLS{} }

// ServerConfig loads the certificate, key and client CAs; it returns nil when c is not
// Enabled. The certificate is read once: rotating it takes a restart.
func (c TLS) ServerConfig() (*tls.Config, error) {
	if !c.Enabled() {
		return nil, nil
	}
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, errors.New("tls: cert_file and key_file are both required")
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read client CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: client CA file %s holds no PEM certificate", c.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
