package simulate_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/fleetwatt/fleetwatt/agent/internal/export"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
	"github.com/fleetwatt/fleetwatt/internal/tlstest"
)

// TestTLSAndRegionTokens runs the collector binary with TLS and bearer tokens bound to
// regions, and the agent's real exporter against it: the Hangzhou token writes Hangzhou data;
// the Beijing token cannot write Hangzhou data; no token, or an agent that does not trust the
// collector's certificate, gets nothing in; over both OTLP protocols.
func TestTLSAndRegionTokens(t *testing.T) {
	s := influxtest.Start(t)
	ca := tlstest.NewCA(t, "fleetwatt-test")
	server := ca.Server(t, "collector")
	dir := t.TempDir()
	tokenFile := func(name, token string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hash := func(token string) string { s := sha256.Sum256([]byte(token)); return hex.EncodeToString(s[:]) }
	hangzhou, beijing := "hz-"+strings.Repeat("a", 40), "bj-"+strings.Repeat("b", 40)
	tokens := filepath.Join(dir, "tokens.yaml")
	yaml := fmt.Sprintf("tokens:\n  - {name: hangzhou-agents, sha256: %s, regions: [cn-hangzhou]}\n"+
		"  - {name: beijing-agents, sha256: %s, regions: [cn-beijing]}\n", hash(hangzhou), hash(beijing))
	if err := os.WriteFile(tokens, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := buildCollector(t)
	grpcAddr, httpAddr, listen := freeAddr(t), freeAddr(t), freeAddr(t)
	// The listener is served over TLS too.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}}
	startProcTLS(t, bin, "https://"+listen, client, "--influx-url", s.URL, "--influx-bucket", s.Bucket(),
		"--otlp-grpc", grpcAddr, "--otlp-http", httpAddr, "--listen", listen, "--rollup-every", "0",
		"--tls-cert", server.CertFile, "--tls-key", server.KeyFile, "--auth-tokens-file", tokens)

	send := func(protocol, endpoint string, opts export.Options, host string) error {
		opts.Endpoint, opts.Protocol = endpoint, protocol
		exp, err := export.NewExporter(context.Background(), opts)
		if err != nil {
			return err
		}
		defer func() { _ = exp.Shutdown(context.Background()) }()
		now := time.Now()
		rm := &metricdata.ResourceMetrics{
			Resource: resource.NewSchemaless(attribute.String(semconv.AttrHostName, host),
				attribute.String(semconv.AttrCloudRegion, "cn-hangzhou")),
			ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{{
				Name: semconv.MetricEnergy, Unit: semconv.UnitJoule,
				Data: metricdata.Sum[float64]{
					Temporality: metricdata.DeltaTemporality, IsMonotonic: true,
					DataPoints: []metricdata.DataPoint[float64]{{
						Attributes: attribute.NewSet(attribute.String(semconv.AttrHwID, "dcmi"), attribute.String(semconv.AttrScope, "wall")),
						StartTime:  now.Add(-10 * time.Second), Time: now, Value: 2500,
					}},
				},
			}}}},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return exp.Export(ctx, rm)
	}
	trusted := export.TLSOptions{CAFile: ca.CertFile}
	for _, p := range []struct{ protocol, endpoint string }{
		{export.ProtocolGRPC, "https://" + grpcAddr}, {export.ProtocolHTTP, "https://" + httpAddr},
	} {
		t.Run(p.protocol, func(t *testing.T) {
			host := "hz-" + strings.ReplaceAll(p.protocol, "/", "-")
			if err := send(p.protocol, p.endpoint, export.Options{TLS: trusted, TokenFile: tokenFile("hz", hangzhou)}, host); err != nil {
				t.Errorf("the Hangzhou token writing Hangzhou data: %v", err)
			}
			err := send(p.protocol, p.endpoint, export.Options{TLS: trusted, TokenFile: tokenFile("bj", beijing)}, host+"-bj")
			if err == nil || !strings.Contains(err.Error(), "cn-hangzhou") {
				t.Errorf("the Beijing token writing Hangzhou data: %v, want a refusal naming the region", err)
			}
			if err := send(p.protocol, p.endpoint, export.Options{TLS: trusted}, host+"-none"); err == nil {
				t.Error("no token: accepted, want a refusal")
			}
			if err := send(p.protocol, p.endpoint, export.Options{TokenFile: tokenFile("hz2", hangzhou)}, host+"-untrusted"); err == nil {
				t.Error("an agent that does not trust the collector's CA: accepted, want a TLS failure")
			}
			series := s.Query(t, `SELECT count(energy_j) AS n FROM power WHERE host =~ /^`+host+`/ GROUP BY host`)
			if len(series) != 1 || series[0].Tags["host"] != host {
				t.Errorf("stored hosts %+v, want only %s", series, host)
			}
		})
	}
}
