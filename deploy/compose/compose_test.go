// Package compose holds the Docker Compose stack for evaluating fleetwatt on one machine.
// There is no Docker engine where the tests run, so this test reads compose.yaml and checks
// what `docker compose up` depends on: every service, build context, Dockerfile and
// bind-mounted file; ports on loopback; start order with conditions that can be met; and
// one InfluxDB token, organization and bucket from InfluxDB's setup through the collector
// to Grafana.
package compose

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// project is the part of the Compose specification compose.yaml uses; unknown keys are
// errors, so a misspelt key fails here rather than being ignored by docker compose.
type project struct {
	Name     string                           `yaml:"name"`
	Services map[string]service               `yaml:"services"`
	Secrets  map[string]struct{ File string } `yaml:"secrets"`
	Volumes  map[string]any                   `yaml:"volumes"`
}

type service struct {
	Image       string                                `yaml:"image"`
	Build       *struct{ Context, Dockerfile string } `yaml:"build"`
	Command     []string                              `yaml:"command"`
	Entrypoint  []string                              `yaml:"entrypoint"`
	Environment map[string]string                     `yaml:"environment"`
	Secrets     []string                              `yaml:"secrets"`
	Volumes     []string                              `yaml:"volumes"`
	Ports       []string                              `yaml:"ports"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		StartPeriod string   `yaml:"start_period"`
		Retries     int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	Restart  string   `yaml:"restart"`
	Profiles []string `yaml:"profiles"`
}

func load(t *testing.T) project {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var p project
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return p
}

// flag returns the value of --name=value in a command line.
func flag(cmd []string, name string) string {
	for _, a := range cmd {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// token is where every service finds InfluxDB's operator token.
const token = "/run/secrets/influxdb-token"

func TestServices(t *testing.T) {
	t.Parallel()
	p := load(t)
	var names []string
	for name := range p.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	want := []string{"backfill", "collector", "fleet", "grafana", "influxdb", "influxdb-init", "rollup"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Fatalf("services (-want +got):\n%s", diff)
	}
	for name, s := range p.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("%s: neither image nor build", name)
		}
		// Built images: the context exists and holds the Dockerfile.
		if s.Build != nil {
			df := filepath.Join(s.Build.Context, s.Build.Dockerfile)
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s: build %s: %v", name, df, err)
			}
			if !strings.HasSuffix(s.Image, ":local") {
				t.Errorf("%s: a built image is tagged %q, want NAME:local", name, s.Image)
			}
		} else if !strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest") {
			// Pulled images carry a version; ours (:local) come from a service that builds.
			t.Errorf("%s: image %q: pin a tag", name, s.Image)
		}
		// Bind mounts exist; named volumes are declared.
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("%s: bind mount %s: %v", name, v, err)
				}
			} else if _, ok := p.Volumes[src]; !ok {
				t.Errorf("%s: volume %q is not declared under volumes:", name, src)
			}
		}
		for _, sec := range s.Secrets {
			if _, ok := p.Secrets[sec]; !ok {
				t.Errorf("%s: secret %q is not declared under secrets:", name, sec)
			}
		}
		// Every port on loopback: the stack has fixed, public credentials.
		for _, port := range s.Ports {
			if !strings.HasPrefix(port, "127.0.0.1:") {
				t.Errorf("%s: port %q is not bound to 127.0.0.1", name, port)
			}
		}
		// Start order: a condition on every dependency, and one that can be met.
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			switch {
			case !ok:
				t.Errorf("%s depends on %s, which is not a service", name, dep)
			case d.Condition == "service_healthy" && target.Healthcheck == nil:
				t.Errorf("%s waits for %s to be healthy; it has no healthcheck", name, dep)
			case d.Condition == "service_completed_successfully" && target.Restart != "no":
				t.Errorf("%s waits for %s to complete; it restarts (%q)", name, dep, target.Restart)
			case d.Condition == "service_started":
			case d.Condition != "service_healthy" && d.Condition != "service_completed_successfully":
				t.Errorf("%s depends on %s with condition %q", name, dep, d.Condition)
			}
			// A service of the default set may not wait for one only a profile starts.
			if len(s.Profiles) == 0 && len(target.Profiles) > 0 {
				t.Errorf("%s depends on %s, which only --profile %s starts", name, dep, target.Profiles[0])
			}
		}
		if h := s.Healthcheck; h != nil && (len(h.Test) < 2 || (h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL")) {
			t.Errorf("%s: healthcheck test %q, want [CMD ...] or [CMD-SHELL ...]", name, h.Test)
		}
	}
	for _, name := range []string{"influxdb", "grafana"} {
		if p.Services[name].Healthcheck == nil {
			t.Errorf("%s has no healthcheck", name)
		}
	}
	ports := map[string][]string{
		"influxdb":  {"127.0.0.1:8086:8086"},
		"collector": {"127.0.0.1:4317:4317", "127.0.0.1:4318:4318", "127.0.0.1:8090:8090"},
		"grafana":   {"127.0.0.1:3000:3000"},
	}
	for name, want := range ports {
		if diff := cmp.Diff(want, p.Services[name].Ports); diff != "" {
			t.Errorf("%s ports (-want +got):\n%s", name, diff)
		}
	}
	// The one-shot services run once; the others come back after a failure or a reboot.
	for name, s := range p.Services {
		oneShot := name == "influxdb-init" || len(s.Profiles) > 0
		if want := map[bool]string{true: "no", false: "unless-stopped"}[oneShot]; s.Restart != want {
			t.Errorf("%s: restart %q, want %q", name, s.Restart, want)
		}
	}
	// The backfill and the rollup run the fleet's and the collector's images, built the same
	// way (whichever service starts first builds it).
	for one, other := range map[string]string{"backfill": "fleet", "rollup": "collector"} {
		a, b := p.Services[one], p.Services[other]
		if a.Image != b.Image || a.Build == nil || b.Build == nil || *a.Build != *b.Build {
			t.Errorf("%s: image %q built from %v, want %s's %q built from %v", one, a.Image, a.Build, other, b.Image, b.Build)
		}
	}
	// Variables have defaults: `docker compose up` needs no .env.
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range regexp.MustCompile(`\$\{[^}]*\}`).FindAll(b, -1) {
		if !bytes.Contains(v, []byte(":-")) {
			t.Errorf("compose.yaml: %s has no default", v)
		}
	}
}

// TestInfluxDBPlumbing follows the token, the organization and the bucket from InfluxDB's
// setup to the DBRP mapping, the collector, the rollup and Grafana's datasource.
func TestInfluxDBPlumbing(t *testing.T) {
	t.Parallel()
	p := load(t)
	influx, setup, collector, rollup := p.Services["influxdb"], p.Services["influxdb-init"], p.Services["collector"], p.Services["rollup"]

	secret := p.Secrets["influxdb-token"].File
	b, err := os.ReadFile(secret)
	if err != nil {
		t.Fatalf("the influxdb-token secret: %v", err)
	}
	if len(b) == 0 || bytes.ContainsAny(b, " \n\r\t") {
		t.Errorf("%s: %q: want one token, no whitespace (InfluxDB's setup takes the bytes as they are)", secret, b)
	}
	if pw, err := os.ReadFile(p.Secrets["admin-password"].File); err != nil || len(pw) < 8 {
		t.Errorf("admin-password secret: %q, %v: InfluxDB wants at least 8 characters", pw, err)
	}

	org, bucket := influx.Environment["DOCKER_INFLUXDB_INIT_ORG"], influx.Environment["DOCKER_INFLUXDB_INIT_BUCKET"]
	got := map[string]string{
		"influxdb admin token":      influx.Environment["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE"],
		"influxdb-init token":       setup.Environment["INFLUX_TOKEN_FILE"],
		"influxdb-init org":         setup.Environment["INFLUX_ORG"],
		"influxdb-init bucket":      setup.Environment["BUCKET"],
		"influxdb-init host":        setup.Environment["INFLUX_HOST"],
		"collector token":           flag(collector.Command, "influx-token-file"),
		"collector org":             flag(collector.Command, "influx-org"),
		"collector bucket":          flag(collector.Command, "influx-bucket"),
		"collector influx":          flag(collector.Command, "influx-url"),
		"rollup token":              flag(rollup.Command, "influx-token-file"),
		"rollup org":                flag(rollup.Command, "influx-org"),
		"rollup bucket":             flag(rollup.Command, "influx-bucket"),
		"rollup influx":             flag(rollup.Command, "influx-url"),
		"influxdb setup mode":       influx.Environment["DOCKER_INFLUXDB_INIT_MODE"],
		"influxdb admin password":   influx.Environment["DOCKER_INFLUXDB_INIT_PASSWORD_FILE"],
		"grafana admin password":    p.Services["grafana"].Environment["GF_SECURITY_ADMIN_PASSWORD__FILE"],
		"collector write-ahead log": flag(collector.Command, "wal-dir"),
	}
	want := map[string]string{
		"influxdb admin token": token, "influxdb-init token": token, "collector token": token, "rollup token": token,
		"influxdb-init org": org, "collector org": org, "rollup org": org,
		"influxdb-init bucket": bucket, "collector bucket": bucket, "rollup bucket": bucket,
		"influxdb-init host": "http://influxdb:8086", "collector influx": "http://influxdb:8086", "rollup influx": "http://influxdb:8086",
		"influxdb setup mode":     "setup",
		"influxdb admin password": "/run/secrets/admin-password", "grafana admin password": "/run/secrets/admin-password",
		"collector write-ahead log": "/var/lib/fleetwatt-collector/wal",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for name, s := range map[string]service{"influxdb": influx, "influxdb-init": setup, "collector": collector, "rollup": rollup, "grafana": p.Services["grafana"]} {
		if !slices.Contains(s.Secrets, "influxdb-token") {
			t.Errorf("%s reads %s but does not mount the influxdb-token secret", name, token)
		}
	}
	// The write-ahead log is on a volume, so it outlives the container.
	if !slices.Contains(collector.Volumes, "collector-wal:"+flag(collector.Command, "wal-dir")) {
		t.Errorf("the collector's --wal-dir is not a volume: %q", collector.Volumes)
	}

	// The DBRP mapping: database = bucket, retention policy autogen, the default; the
	// collector's InfluxQL queries name the database as its bucket.
	script := strings.Join(setup.Command, "\n")
	for _, w := range []string{`--db "$$BUCKET" --rp autogen --bucket-id "$$id" --default`, `INFLUX_TOKEN="$$(cat "$$INFLUX_TOKEN_FILE")"`, "influx v1 dbrp create"} {
		if !strings.Contains(script, w) {
			t.Errorf("influxdb-init's script lacks %q:\n%s", w, script)
		}
	}
	if !slices.Equal(setup.Entrypoint, []string{"/bin/sh", "-ec"}) {
		t.Errorf("influxdb-init entrypoint %q, want a shell that stops at the first error", setup.Entrypoint)
	}

	// Grafana: InfluxQL over the DBRP mapping, the token in the Authorization header.
	ds := datasource(t, "grafana-datasource.yaml")
	wantDS := dsFile{
		Name: "fleetwatt InfluxDB", UID: "fleetwatt-influxdb", Type: "influxdb", Access: "proxy", URL: "http://influxdb:8086",
		JSONData:       map[string]any{"version": "InfluxQL", "dbName": bucket, "httpMode": "POST", "timeInterval": "10s", "httpHeaderName1": "Authorization"},
		SecureJSONData: map[string]string{"httpHeaderValue1": "Token $__file{" + token + "}"},
	}
	if diff := cmp.Diff(wantDS, ds); diff != "" {
		t.Errorf("grafana-datasource.yaml (-want +got):\n%s", diff)
	}
}

// dsFile is the part of a Grafana datasource provisioning entry the stack depends on.
type dsFile struct {
	Name, UID, Type, Access, URL string
	JSONData                     map[string]any
	SecureJSONData               map[string]string
}

func datasource(t *testing.T, path string) dsFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Datasources []struct {
			Name           string            `yaml:"name"`
			UID            string            `yaml:"uid"`
			Type           string            `yaml:"type"`
			Access         string            `yaml:"access"`
			URL            string            `yaml:"url"`
			JSONData       map[string]any    `yaml:"jsonData"`
			SecureJSONData map[string]string `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(f.Datasources) != 1 {
		t.Fatalf("%s: %d datasources, want 1", path, len(f.Datasources))
	}
	d := f.Datasources[0]
	return dsFile{d.Name, d.UID, d.Type, d.Access, d.URL, d.JSONData, d.SecureJSONData}
}

// TestGrafanaProvisioning checks that Grafana finds the dashboards where the shared
// provisioning (deploy/grafana/provisioning) says they are, and that every datasource they
// use is the one this stack provisions.
func TestGrafanaProvisioning(t *testing.T) {
	t.Parallel()
	p := load(t)
	mounts := map[string]string{} // container path → local path
	for _, v := range p.Services["grafana"].Volumes {
		parts := strings.Split(v, ":")
		if strings.HasPrefix(parts[0], ".") {
			mounts[parts[1]] = parts[0]
		}
	}
	providers, err := filepath.Glob(filepath.Join(mounts["/etc/grafana/provisioning/dashboards"], "*.yaml"))
	if err != nil || len(providers) == 0 {
		t.Fatalf("no dashboard providers in %s mounted at /etc/grafana/provisioning/dashboards (%v)", mounts["/etc/grafana/provisioning/dashboards"], err)
	}
	found := 0
	for _, file := range providers {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Providers []struct {
				Name    string
				Options struct{ Path string }
			}
		}
		if err := yaml.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, prov := range f.Providers {
			// The provider's path inside the container, mapped back to this repository.
			var local string
			for target, src := range mounts {
				if rest, ok := strings.CutPrefix(prov.Options.Path, target); ok && (rest == "" || strings.HasPrefix(rest, "/")) {
					local = filepath.Join(src, rest)
				}
			}
			if local == "" {
				t.Errorf("%s: provider %s reads %s, which compose.yaml does not mount", file, prov.Name, prov.Options.Path)
				continue
			}
			dashboards, _ := filepath.Glob(filepath.Join(local, "*.json"))
			if len(dashboards) == 0 {
				t.Errorf("%s: provider %s reads %s (%s here), which holds no dashboards", file, prov.Name, prov.Options.Path, local)
			}
			for _, d := range dashboards {
				found++
				checkDatasources(t, d)
			}
		}
	}
	if found == 0 {
		t.Error("grafana would show no dashboards")
	}
	// The shared datasource has the uid, name and settings of this stack's, which adds only
	// what InfluxDB 2.x needs.
	shared := datasource(t, "../grafana/provisioning/datasources/fleetwatt.yaml")
	own := datasource(t, "grafana-datasource.yaml")
	if shared.UID != own.UID || shared.Name != own.Name || shared.Type != own.Type {
		t.Errorf("shared datasource %s %q (%s), compose's %s %q (%s): want the same", shared.UID, shared.Name, shared.Type, own.UID, own.Name, own.Type)
	}
	for k, v := range shared.JSONData {
		if !cmp.Equal(v, own.JSONData[k]) {
			t.Errorf("grafana-datasource.yaml: jsonData.%s = %v, want the shared datasource's %v", k, own.JSONData[k], v)
		}
	}
}

// checkDatasources checks that every datasource uid a dashboard names is this stack's, a
// Grafana built-in, or a variable.
func checkDatasources(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ds, ok := x["datasource"].(map[string]any); ok {
				uid, _ := ds["uid"].(string)
				if uid != "" && uid != "fleetwatt-influxdb" && !strings.HasPrefix(uid, "$") && !strings.HasPrefix(uid, "-- ") && uid != "grafana" {
					t.Errorf("%s: datasource uid %q, which compose does not provision", path, uid)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
}

// TestSecretsTracked guards the fixed evaluation secrets' modes: the collector runs as uid
// 65532 and reads the token through a bind mount, so the file must be readable by others.
func TestSecretsTracked(t *testing.T) {
	t.Parallel()
	err := filepath.WalkDir("secrets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o004 == 0 {
			t.Errorf("%s: mode %s; the containers' users read it through a bind mount", path, info.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
