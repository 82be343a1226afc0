package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExampleConfigLoads(t *testing.T) {
	t.Parallel()
	cfg, err := Load(filepath.Join("..", "..", "agent.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Endpoint = "http://127.0.0.1:4317"
	want.Region, want.Zone = "cn-hangzhou", "cn-hangzhou-h"
	want.Sources.Disable = []string{}
	want.Spool.Dir = "/var/lib/fleetwatt-agent/spool"
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("example config (-want +got):\n%s", diff)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("example config does not validate: %v", err)
	}
}

func TestUnknownKeyIsAnError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte("intervall: 5s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "intervall") {
		t.Fatalf("Load = %v, want an error naming the unknown key", err)
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte("interval: 30s\nregion: from-file\nprotocol: grpc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"FLEETWATT_REGION":                                  "from-env",
		"FLEETWATT_SPOOL_DIR":                               "/var/spool/fw",
		"OTEL_EXPORTER_OTLP_PROTOCOL":                       "http/protobuf",
		"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "LowMemory",
	}
	if err := cfg.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.Interval != Duration(30*time.Second) || cfg.Region != "from-env" || cfg.Protocol != "http/protobuf" || cfg.Temporality != "delta" ||
		cfg.Spool.Dir != "/var/spool/fw" {
		t.Errorf("got interval %s region %q protocol %q temporality %q spool.dir %q",
			cfg.Interval, cfg.Region, cfg.Protocol, cfg.Temporality, cfg.Spool.Dir)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.Root = "/does/not/exist"
	cfg.Protocol = "udp"
	cfg.Interval = Duration(time.Millisecond)
	cfg.Log.Level = "loud"
	cfg.Sources.Disable = []string{"rapl", "smartplug"}
	cfg.Sources.Redfish.URL = "http://bmc"
	cfg.Sources.Model.IdleW = 100
	cfg.Spool = Spool{Dir: "spool", MaxBytes: 1000}
	cfg.MetricsListen = "9464"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate = nil, want errors")
	}
	for _, key := range []string{
		"root:", "protocol:", "interval:", "log.level:", `sources.disable: "smartplug"`,
		"sources.redfish.url:", "sources.redfish.credentials_file:", "sources.model:",
		"spool.dir:", "spool.max_bytes:", "metrics_listen:",
	} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not mention %s", err, key)
		}
	}
}

func TestBadDurationSaysWhatIsWanted(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte("interval: ten\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "not a duration") {
		t.Fatalf("Load = %v, want a duration error", err)
	}
}

func TestMetricsListen(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"": true, "127.0.0.1:9464": true, ":9464": true, "[::1]:0": true, "localhost:http": false,
		"9464": false, "127.0.0.1:70000": false,
	} {
		cfg := Default()
		cfg.Root = t.TempDir()
		cfg.MetricsListen = addr
		if err := cfg.Validate(); (err == nil) != ok {
			t.Errorf("metrics_listen %q: Validate = %v, want ok %v", addr, err, ok)
		}
	}
	cfg := Default()
	if err := cfg.ApplyEnv(func(k string) string {
		if k == "FLEETWATT_METRICS_LISTEN" {
			return "127.0.0.1:9464"
		}
		return ""
	}); err != nil || cfg.MetricsListen != "127.0.0.1:9464" {
		t.Errorf("FLEETWATT_METRICS_LISTEN: %v, %q", err, cfg.MetricsListen)
	}
}
