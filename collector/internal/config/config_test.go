package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExampleIsDefault(t *testing.T) {
	t.Parallel()
	cfg, err := Load(filepath.Join("..", "..", "collector.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if diff := cmp.Diff(DefaultConfig(), cfg); diff != "" {
		t.Errorf("collector.example.yaml differs from DefaultConfig (-default +example):\n%s", diff)
	}
}

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "collector.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	t.Parallel()
	cfg, err := Load(write(t, "influx:\n  url: https://influx.example:8086\n  bucket: fleetwatt/autogen\nlog:\n  format: json\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Influx.URL = "https://influx.example:8086"
	want.Influx.Bucket = "fleetwatt/autogen"
	want.Log.Format = "json"
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

func TestLoadEmptyFile(t *testing.T) {
	t.Parallel()
	cfg, err := Load(write(t, "# nothing\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultConfig(), cfg); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

func TestLoadUnknownKey(t *testing.T) {
	t.Parallel()
	_, err := Load(write(t, "influx:\n  urll: http://x\n"))
	if err == nil || !strings.Contains(err.Error(), "urll") {
		t.Errorf("Load with a misspelt key = %v, want an error naming it", err)
	}
}

func TestValidateReportsEverything(t *testing.T) {
	t.Parallel()
	cfg := Config{
		Influx: Influx{URL: "influx:8086", Bucket: " ", TokenFile: "/nonexistent/token"},
		OTLP:   OTLP{},
		Listen: "8090",
		Log:    Log{Level: "loud", Format: "xml"},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate = nil")
	}
	var prefixes []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		p, _, _ := strings.Cut(line, ":")
		prefixes = append(prefixes, p)
	}
	want := []string{"influx.url", "influx.bucket", "influx.token_file", "otlp", "listen", "log.level", "log.format"}
	if diff := cmp.Diff(want, prefixes); diff != "" {
		t.Errorf("problems (-want +got):\n%s\nerror:\n%v", diff, err)
	}
}

func TestValidateLimits(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Limits = Limits{MaxSeriesPerToken: -1, MaxFuture: -time.Second, MaxAge: -time.Hour, MaxPowerW: -1}
	err := cfg.Validate()
	for _, k := range []string{"limits.max_series_per_token", "limits.max_future", "limits.max_age", "limits.max_power_w"} {
		if err == nil || !strings.Contains(err.Error(), k+": negative") {
			t.Errorf("Validate = %v, want it to name %s", err, k)
		}
	}
	cfg.Limits = Limits{MaxSeriesPerToken: 10, SeriesWindow: time.Second}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "limits.series_window: 1s") {
		t.Errorf("Validate with a 1s window = %v", err)
	}
	cfg.Limits = Limits{} // every limit off
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate with every limit off = %v", err)
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name string
		file string
		env  map[string]string
		want string
	}{
		{"file wins", file, map[string]string{EnvToken: "a", EnvInfluxToken: "b"}, "s3cret"},
		{"fleetwatt env", "", map[string]string{EnvToken: "a", EnvInfluxToken: "b"}, "a"},
		{"influx env", "", map[string]string{EnvInfluxToken: "b"}, "b"},
		{"none", "", nil, ""},
	}
	for _, tt := range tests {
		got, err := Influx{TokenFile: tt.file}.Token(env(tt.env))
		if err != nil || got != tt.want {
			t.Errorf("%s: Token = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if _, err := (Influx{TokenFile: "/nonexistent"}).Token(env(nil)); err == nil {
		t.Error("Token with a missing file = nil error")
	}
}

func TestValidateForward(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("t0k3n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want []string // substrings of the error, in order; none: valid
	}{
		{"off", func(*Config) {}, nil},
		{"https with wal", func(c *Config) {
			c.Forward.Endpoint, c.Forward.TokenFile, c.WAL.Dir = "https://central:4318", token, dir
		}, nil},
		{
			"without wal", func(c *Config) { c.Forward.Endpoint = "https://central:4318" },
			[]string{"forward.endpoint: forwarding goes through the write-ahead log: set wal.dir (--wal-dir) too"},
		},
		{
			"token without endpoint", func(c *Config) { c.Forward.TokenFile = token },
			[]string{"forward.endpoint: empty, but token_file or tls is set"},
		},
		{
			"not a URL", func(c *Config) { c.Forward.Endpoint, c.WAL.Dir = "central:4318", dir },
			[]string{"forward.endpoint: \"central:4318\": want the central collector's OTLP/HTTP URL"},
		},
		{"tls over http", func(c *Config) {
			c.Forward.Endpoint, c.WAL.Dir, c.Forward.TLS.CAFile = "http://central:4318", dir, token
		}, []string{"forward.tls: set, but the endpoint http://central:4318 is plain http://"}},
		{"everything else", func(c *Config) {
			c.Forward = Forward{
				Endpoint: "https://central:4318", TokenFile: "/nonexistent/token",
				TLS: ForwardTLS{CertFile: token}, Compression: "zstd",
			}
			c.WAL.Dir = dir
		}, []string{
			"forward.tls: cert_file and key_file go together", "forward.token_file: stat /nonexistent/token",
			"forward.timeout: 0s: want at least 1s", "forward.max_backoff: 0s", "forward.compression: \"zstd\"",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			tt.edit(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			rest := err.Error()
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("Validate = %v\nwant, in order, %q", err, tt.want)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}
