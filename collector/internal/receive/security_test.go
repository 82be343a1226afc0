package receive

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/grpc/credentials"

	"github.com/fleetwatt/fleetwatt/collector/internal/auth"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
	"github.com/fleetwatt/fleetwatt/internal/tlstest"
)

const (
	beijingToken = "bj-7c1e4b2a9f0d"
	opsToken     = "ops-3a9d5e8c1b7f"
)

// syncBuffer is a log destination shared by the servers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// secureReceiver starts a receiver with TLS (mTLS when clientCA is set) and, with tokens,
// a tokens file holding a cn-beijing token and an any-region token. Its log goes to the
// returned buffer, at debug level.
func secureReceiver(t *testing.T, ca *tlstest.CA, clientCA string, tokens bool, c Consumer) (*Receiver, *syncBuffer) {
	t.Helper()
	srv := ca.Server(t, "collector")
	cfg := Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		TLS: TLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: clientCA},
	}
	if tokens {
		path := filepath.Join(t.TempDir(), "tokens.yaml")
		body := "tokens:\n" +
			"  - {name: beijing-agents, sha256: " + auth.Hash(beijingToken) + ", regions: [cn-beijing]}\n" +
			"  - {name: ops, sha256: " + auth.Hash(opsToken) + ", regions: [\"*\"]}\n"
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		tk, err := auth.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Auth = tk
	}
	logs := &syncBuffer{}
	r := New(cfg, c, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return r, logs
}

// client is how a test's SDK exporter connects.
type client struct {
	tls   *tls.Config // nil: plaintext
	token string      // "": no authorization header
}

// exporter returns the OpenTelemetry SDK's OTLP exporter for r's gRPC or HTTP endpoint,
// configured as fleetwatt's agent configures it (export.NewExporter).
func exporter(t *testing.T, r *Receiver, proto string, c client) sdkmetric.Exporter {
	t.Helper()
	var headers map[string]string
	if c.token != "" {
		headers = map[string]string{"authorization": "Bearer " + c.token}
	}
	var exp sdkmetric.Exporter
	var err error
	if proto == "grpc" {
		o := []otlpmetricgrpc.Option{
			otlpmetricgrpc.WithEndpoint(r.GRPCAddr().String()), otlpmetricgrpc.WithTimeout(2 * time.Second),
			otlpmetricgrpc.WithHeaders(headers),
		}
		if c.tls != nil {
			o = append(o, otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(c.tls)))
		} else {
			o = append(o, otlpmetricgrpc.WithInsecure())
		}
		exp, err = otlpmetricgrpc.New(t.Context(), o...)
	} else {
		o := []otlpmetrichttp.Option{
			otlpmetrichttp.WithEndpoint(r.HTTPAddr().String()), otlpmetrichttp.WithTimeout(2 * time.Second),
			otlpmetrichttp.WithHeaders(headers),
		}
		if c.tls != nil {
			o = append(o, otlpmetrichttp.WithTLSClientConfig(c.tls))
		} else {
			o = append(o, otlpmetrichttp.WithInsecure())
		}
		exp, err = otlpmetrichttp.New(t.Context(), o...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// sendRegion records an energy counter for a host in region ("" for no cloud.region) with
// the SDK and exports it through exp, once.
func sendRegion(t *testing.T, exp sdkmetric.Exporter, region string) error {
	t.Helper()
	ctx := t.Context()
	attrs := []attribute.KeyValue{attribute.String(semconv.AttrHostName, "web-1")}
	if region != "" {
		attrs = append(attrs, attribute.String(semconv.AttrCloudRegion, region))
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithResource(resource.NewSchemaless(attrs...)),
	)
	energy, err := mp.Meter(semconv.InstrumentationScope).Float64Counter(semconv.MetricEnergy)
	if err != nil {
		t.Fatal(err)
	}
	energy.Add(ctx, 1800)
	// Shutdown collects and exports once, then closes the exporter.
	return mp.Shutdown(ctx)
}

// TestTLS: the SDK exporter reaches a TLS receiver when it trusts the receiver's CA, and
// fails the handshake, saying why, when it does not or speaks plaintext.
func TestTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "fleetwatt")
	other := tlstest.NewCA(t, "stranger")
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := &sink{}
			r, _ := secureReceiver(t, ca, "", false, s)
			if err := sendRegion(t, exporter(t, r, proto, client{tls: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}}), "cn-beijing"); err != nil {
				t.Fatalf("trusted CA: %v", err)
			}
			if n := len(s.metrics()); n != 1 {
				t.Fatalf("consumer got %d requests, want 1", n)
			}
			err := sendRegion(t, exporter(t, r, proto, client{tls: &tls.Config{RootCAs: other.Pool, MinVersion: tls.VersionTLS12}}), "cn-beijing")
			if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
				t.Errorf("unknown CA: error %v, want a certificate verification failure", err)
			}
			if err := sendRegion(t, exporter(t, r, proto, client{}), "cn-beijing"); err == nil {
				t.Error("plaintext client to a TLS receiver succeeded")
			}
			if n := len(s.metrics()); n != 1 {
				t.Errorf("consumer got %d requests, want only the trusted one", n)
			}
		})
	}
}

// TestMutualTLS: with a client CA, a client without a certificate (or with one from another
// CA) fails the handshake; one with a certificate from the client CA gets through.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "fleetwatt")
	clients := tlstest.NewCA(t, "fleetwatt-agents")
	other := tlstest.NewCA(t, "stranger")
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := &sink{}
			r, _ := secureReceiver(t, ca, clients.CertFile, false, s)
			base := tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
			noCert := base.Clone()
			if err := sendRegion(t, exporter(t, r, proto, client{tls: noCert}), "cn-beijing"); err == nil {
				t.Error("client without a certificate got through")
			}
			wrongCert := base.Clone()
			wrongCert.Certificates = []tls.Certificate{other.Client(t, "agent-x").Cert}
			if err := sendRegion(t, exporter(t, r, proto, client{tls: wrongCert}), "cn-beijing"); err == nil {
				t.Error("client with a certificate from another CA got through")
			}
			withCert := base.Clone()
			withCert.Certificates = []tls.Certificate{clients.Client(t, "agent-1").Cert}
			if err := sendRegion(t, exporter(t, r, proto, client{tls: withCert}), "cn-beijing"); err != nil {
				t.Fatalf("client with a certificate: %v", err)
			}
			if n := len(s.metrics()); n != 1 {
				t.Errorf("consumer got %d requests, want 1", n)
			}
		})
	}
}

// TestTokens: over TLS, a request without a token or with an unknown one is refused
// Unauthenticated / 401, a cn-beijing token writing us-west-1 data (or data without a
// region) PermissionDenied / 403 naming the region and the token, and the right region
// goes through. Refusals are counted, never consumed, and no token reaches the log.
func TestTokens(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "fleetwatt")
	tlsCfg := &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
	tests := []struct {
		name, token, region string
		want                map[string]string // protocol → substring of the error; nil: success
	}{
		{name: "missing", region: "cn-beijing", want: map[string]string{
			"grpc": "code = Unauthenticated desc = unauthenticated: no bearer token",
			"http": "401 Unauthorized",
		}},
		{name: "wrong", token: beijingToken + "0", region: "cn-beijing", want: map[string]string{
			"grpc": "code = Unauthenticated desc = unauthenticated: unknown bearer token",
			"http": "401 Unauthorized",
		}},
		{name: "other_region", token: beijingToken, region: "us-west-1", want: map[string]string{
			"grpc": `code = PermissionDenied desc = permission denied: token "beijing-agents" may not write region "us-west-1"`,
			"http": "403 Forbidden",
		}},
		{name: "no_region", token: beijingToken, want: map[string]string{
			"grpc": `code = PermissionDenied desc = permission denied: token "beijing-agents" may write only region cn-beijing, and this data has no cloud.region`,
			"http": "403 Forbidden",
		}},
		{name: "own_region", token: beijingToken, region: "cn-beijing"},
		{name: "any_region", token: opsToken, region: "us-west-1"},
		{name: "any_region_none", token: opsToken},
	}
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := &sink{}
			r, logs := secureReceiver(t, ca, "", true, s)
			var ok, unauth, forbidden int
			for _, tt := range tests {
				err := sendRegion(t, exporter(t, r, proto, client{tls: tlsCfg, token: tt.token}), tt.region)
				want := tt.want[proto]
				switch {
				case want == "" && err != nil:
					t.Errorf("%s: %v", tt.name, err)
				case want == "":
					ok++
				case err == nil:
					t.Errorf("%s: accepted, want %q", tt.name, want)
				case !strings.Contains(err.Error(), want):
					t.Errorf("%s: error %q, want %q", tt.name, err, want)
				case strings.Contains(want, "Unauth") || strings.Contains(want, "401"):
					unauth++
				default:
					forbidden++
				}
			}
			if n := len(s.metrics()); n != ok {
				t.Errorf("consumer got %d requests, want the %d allowed ones", n, ok)
			}
			if got, want := r.Stats(), (Stats{Unauthenticated: uint64(unauth), Forbidden: uint64(forbidden)}); got != want {
				t.Errorf("stats %+v, want %+v", got, want)
			}
			log := logs.String()
			if !strings.Contains(log, "beijing-agents") {
				t.Errorf("log does not name the refused token:\n%s", log)
			}
			for _, secret := range []string{beijingToken, opsToken} {
				if strings.Contains(log, secret) {
					t.Errorf("log contains a token:\n%s", log)
				}
			}
		})
	}
}

// TestHTTPRefusalBodies checks the HTTP answers themselves: 401 with a Bearer challenge
// before the body is read, 403 with the region and the token's name in a google.rpc.Status.
func TestHTTPRefusalBodies(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "fleetwatt")
	r, _ := secureReceiver(t, ca, "", true, &sink{})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	body := `{"resourceMetrics":[{"resource":{"attributes":[{"key":"cloud.region","value":{"stringValue":"us-west-1"}}]},` +
		`"scopeMetrics":[{"metrics":[{"name":"m","gauge":{"dataPoints":[{"asDouble":1}]}}]}]}]}`
	for _, tt := range []struct {
		name, header string
		status       int
		msg          string
	}{
		{"missing", "", http.StatusUnauthorized, "no bearer token"},
		{"basic", "Basic " + beijingToken, http.StatusUnauthorized, "authorization header is not"},
		{"region", "Bearer " + beijingToken, http.StatusForbidden, `token \"beijing-agents\" may not write region \"us-west-1\"`},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "https://"+r.HTTPAddr().String()+MetricsPath, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentTypeJSON)
		if tt.header != "" {
			req.Header.Set("Authorization", tt.header)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := new(bytes.Buffer)
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(b.String(), tt.msg) {
			t.Errorf("%s: %d %s, want %d with %s", tt.name, resp.StatusCode, b, tt.status, tt.msg)
		}
		if strings.Contains(b.String(), beijingToken) {
			t.Errorf("%s: answer contains the token: %s", tt.name, b)
		}
		if challenge := resp.Header.Get("WWW-Authenticate"); (tt.status == http.StatusUnauthorized) != strings.HasPrefix(challenge, "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", tt.name, challenge)
		}
	}
}

func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "fleetwatt")
	srv := ca.Server(t, "collector")
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		c    TLS
		want string
	}{
		{"key_missing", TLS{CertFile: srv.CertFile}, "cert_file and key_file are both required"},
		{"ca_only", TLS{ClientCAFile: ca.CertFile}, "cert_file and key_file are both required"},
		{"swapped", TLS{CertFile: srv.KeyFile, KeyFile: srv.CertFile}, "load certificate"},
		{"bad_ca", TLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: notPEM}, "holds no PEM certificate"},
		{"no_ca_file", TLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: notPEM + ".x"}, "read client CA file"},
	} {
		r := New(Config{GRPCAddr: "127.0.0.1:0", TLS: tt.c}, &sink{}, discard())
		if err := r.Start(t.Context()); err == nil || !strings.Contains(err.Error(), tt.want) {
			if err == nil {
				_ = r.Shutdown(t.Context())
			}
			t.Errorf("%s: Start = %v, want %q", tt.name, err, tt.want)
		}
	}
	if cfg, err := (TLS{}).ServerConfig(); cfg != nil || err != nil {
		t.Errorf("zero TLS: %v %v, want plaintext", cfg, err)
	}
}
