package export

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
	"github.com/fleetwatt/fleetwatt/internal/tlstest"
)

// The agent cannot import the collector's receiver (both are internal to their binary), so
// these tests run NewExporter's real SDK exporters against a TLS OTLP endpoint built here
// with the same server settings; collector/internal/receive tests the receiver's side.

const testToken = "agent-token-5d1f0c9e"

// tlsEndpoint is an OTLP endpoint over TLS, gRPC and HTTP, that wants "Bearer <want>" when
// want is set and records the authorization values it saw.
type tlsEndpoint struct {
	collectormetrics.UnimplementedMetricsServiceServer
	want string

	mu       sync.Mutex
	accepted int
	seen     []string
}

func (e *tlsEndpoint) check(header string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, header)
	if e.want != "" && header != "Bearer "+e.want {
		return false
	}
	e.accepted++
	return true
}

func (e *tlsEndpoint) counts() (accepted int, seen []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.accepted, append([]string(nil), e.seen...)
}

func (e *tlsEndpoint) Export(ctx context.Context, _ *collectormetrics.ExportMetricsServiceRequest) (*collectormetrics.ExportMetricsServiceResponse, error) {
	var h string
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		h = v[0]
	}
	if !e.check(h) {
		return nil, status.Error(codes.Unauthenticated, "unknown bearer token")
	}
	return &collectormetrics.ExportMetricsServiceResponse{}, nil
}

// serverTLS is the collector's TLS setting: its certificate, and with clientCA, mTLS.
func serverTLS(t *testing.T, ca *tlstest.CA, clientCA *tlstest.CA) *tls.Config {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "collector").Cert}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		cfg.ClientCAs = clientCA.Pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

// start serves e over TLS for protocol and returns the endpoint's https:// URL.
func (e *tlsEndpoint) start(t *testing.T, protocol string, cfg *tls.Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if protocol == ProtocolGRPC {
		srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
		collectormetrics.RegisterMetricsServiceServer(srv, e)
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(srv.Stop)
		return "https://" + l.Addr().String()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var m collectormetrics.ExportMetricsServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &m)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !e.check(req.Header.Get("Authorization")) {
			http.Error(w, "unknown bearer token", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	})
	srv := &http.Server{Handler: mux, TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + l.Addr().String()
}

// send exports one sample through NewExporter(opts) and shuts the exporter down.
func send(t *testing.T, opts Options) error {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	ctx := t.Context()
	exp, err := NewExporter(ctx, opts)
	if err != nil {
		t.Fatalf("NewExporter: %v", err)
	}
	defer func() { _ = exp.Shutdown(context.WithoutCancel(ctx)) }()
	res := resource.NewSchemaless(attribute.String(semconv.AttrHostName, "h1"), attribute.String(semconv.AttrCloudRegion, "cn-beijing"))
	return exp.Export(ctx, NewBuilder(res, "test", metricdata.DeltaTemporality).Build(sample()))
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTLSAndToken: over https the exporter verifies the collector against CAFile (an
// unknown CA fails with the x509 reason), presents a client certificate where the collector
// requires one, and sends the token file's token as a Bearer authorization.
func TestTLSAndToken(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "fleetwatt")
	agents := tlstest.NewCA(t, "fleetwatt-agents")
	stranger := tlstest.NewCA(t, "stranger")
	client := agents.Client(t, "agent-1")
	token := writeFile(t, "token", testToken+"\n") // the newline an editor leaves is dropped
	wrong := writeFile(t, "wrong", "not-"+testToken)
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			tests := []struct {
				name string
				mtls bool
				opts Options
				// err is a substring of the error, "" for success. Under TLS 1.3 the server
				// checks the client certificate after the client's side of the handshake, so
				// the client's error for a missing one varies: "*" is any error.
				err string
			}{
				{name: "ca_file", opts: Options{TLS: TLSOptions{CAFile: ca.CertFile}, TokenFile: token}},
				{name: "unknown_ca", opts: Options{TLS: TLSOptions{CAFile: stranger.CertFile}, TokenFile: token}, err: "certificate signed by unknown authority"},
				{name: "system_roots", opts: Options{TokenFile: token}, err: "certificate signed by unknown authority"},
				{name: "insecure_skip_verify", opts: Options{TLS: TLSOptions{InsecureSkipVerify: true}, TokenFile: token}},
				{name: "no_token", opts: Options{TLS: TLSOptions{CAFile: ca.CertFile}}, err: "nauthenticated"},
				{name: "wrong_token", opts: Options{TLS: TLSOptions{CAFile: ca.CertFile}, TokenFile: wrong}, err: "nauthenticated"},
				{name: "mtls_no_cert", mtls: true, opts: Options{TLS: TLSOptions{CAFile: ca.CertFile}, TokenFile: token}, err: "*"},
				{name: "mtls_cert", mtls: true, opts: Options{TLS: TLSOptions{CAFile: ca.CertFile, CertFile: client.CertFile, KeyFile: client.KeyFile}, TokenFile: token}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					e := &tlsEndpoint{want: testToken}
					var clientCA *tlstest.CA
					if tt.mtls {
						clientCA = agents
					}
					tt.opts.Endpoint = e.start(t, proto, serverTLS(t, ca, clientCA))
					tt.opts.Protocol = proto
					err := send(t, tt.opts)
					accepted, seen := e.counts()
					if tt.err == "" {
						if err != nil {
							t.Fatal(err)
						}
						if accepted != 1 || len(seen) != 1 || seen[0] != "Bearer "+testToken {
							t.Errorf("endpoint accepted %d, saw authorization %q", accepted, seen)
						}
						return
					}
					if err == nil || tt.err != "*" && !strings.Contains(strings.ReplaceAll(err.Error(), "401 Unauthorized", "Unauthenticated"), tt.err) {
						t.Fatalf("error %v, want %q", err, tt.err)
					}
					if accepted != 0 {
						t.Errorf("endpoint accepted %d exports", accepted)
					}
				})
			}
		})
	}
}

// TestStandardVariables: with no TLS option and no token file, the SDK's own
// OTEL_EXPORTER_OTLP_CERTIFICATE and OTEL_EXPORTER_OTLP_HEADERS still apply.
func TestStandardVariables(t *testing.T) {
	ca := tlstest.NewCA(t, "fleetwatt")
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.CertFile)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20"+testToken)
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		e := &tlsEndpoint{want: testToken}
		endpoint := e.start(t, proto, serverTLS(t, ca, nil))
		if err := send(t, Options{Endpoint: endpoint, Protocol: proto}); err != nil {
			t.Errorf("%s: %v", proto, err)
		}
	}
}

func TestSecurityOptionErrors(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "fleetwatt")
	c := ca.Client(t, "agent")
	token := writeFile(t, "token", testToken)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"tls_over_http", Options{Endpoint: "http://collector:4317", TLS: TLSOptions{CAFile: ca.CertFile}}, "tls options need an https:// endpoint"},
		{"token_over_http", Options{Endpoint: "http://collector:4317", TokenFile: token}, "bearer token would travel in clear"},
		{"token_over_bare_host", Options{Endpoint: "10.0.0.1:4317", TokenFile: token}, "bearer token would travel in clear"},
		{"cert_without_key", Options{Endpoint: "https://collector:4317", TLS: TLSOptions{CertFile: c.CertFile}}, "set both or neither"},
		{"ca_not_pem", Options{Endpoint: "https://collector:4317", TLS: TLSOptions{CAFile: token}}, "holds no PEM certificate"},
		{"ca_missing", Options{Endpoint: "https://collector:4317", TLS: TLSOptions{CAFile: token + ".x"}}, "tls ca file"},
		{"key_mismatch", Options{Endpoint: "https://collector:4317", TLS: TLSOptions{CertFile: c.CertFile, KeyFile: ca.Server(t, "other").KeyFile}}, "load client certificate"},
		{"token_missing", Options{Endpoint: "https://collector:4317", TokenFile: token + ".x"}, "token file"},
		{"token_empty", Options{Endpoint: "https://collector:4317", TokenFile: writeFile(t, "empty", " \n")}, "is empty"},
		{"token_two_lines", Options{Endpoint: "https://collector:4317", TokenFile: writeFile(t, "two", testToken+"\nsecond-"+testToken)}, "control or non-ASCII"},
	}
	for _, tt := range tests {
		for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
			tt.opts.Protocol = proto
			_, err := NewExporter(t.Context(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s/%s: error %v, want %q", tt.name, proto, err, tt.want)
				continue
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("%s/%s: error %q contains the token", tt.name, proto, err)
			}
		}
	}
	// A token to a collector on this machine may go over plain http.
	for _, ep := range []string{"http://127.0.0.1:4317", "localhost:4317", "http://[::1]:4317"} {
		exp, err := NewExporter(t.Context(), Options{Endpoint: ep, Protocol: ProtocolGRPC, TokenFile: token})
		if err != nil {
			t.Errorf("%s: %v", ep, err)
			continue
		}
		_ = exp.Shutdown(t.Context())
	}
}
