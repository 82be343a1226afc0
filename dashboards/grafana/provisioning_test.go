package grafana

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// provisioning is deploy/grafana/provisioning.
var provisioning = filepath.Join("..", "..", "deploy", "grafana", "provisioning")

type datasources struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name, UID, Type, Access, URL string
		IsDefault                    bool           `yaml:"isDefault"`
		Editable                     bool           `yaml:"editable"`
		JSONData                     map[string]any `yaml:"jsonData"`
		SecureJSONData               map[string]any `yaml:"secureJsonData"`
	} `yaml:"datasources"`
}

// TestProvisionedDatasource loads the data source file and each of its commented variants
// (InfluxDB 2.x, 3.x): every one is the InfluxQL data source the dashboards default to.
func TestProvisionedDatasource(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(provisioning, "datasources", "fleetwatt.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{string(b)}
	for _, block := range commentedBlocks(string(b)) {
		docs = append(docs, "apiVersion: 1\ndatasources:\n"+block)
	}
	if len(docs) != 3 {
		t.Fatalf("%d configurations, want the live one and the 2.x and 3.x variants", len(docs))
	}
	for i, doc := range docs {
		var f datasources
		dec := yaml.NewDecoder(strings.NewReader(doc))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("configuration %d: %v\n%s", i, err, doc)
		}
		if len(f.Datasources) != 1 || f.APIVersion != 1 {
			t.Fatalf("configuration %d: %+v", i, f)
		}
		d := f.Datasources[0]
		if d.UID != DatasourceUID || d.Type != "influxdb" || d.Access != "proxy" || !d.IsDefault || d.JSONData["dbName"] != "fleetwatt" || d.URL == "" {
			t.Errorf("configuration %d: %+v: want the InfluxQL data source %s on database fleetwatt", i, d, DatasourceUID)
		}
		if v, ok := d.JSONData["version"]; ok && v != "InfluxQL" {
			t.Errorf("configuration %d: query language %v: the dashboards are InfluxQL", i, v)
		}
		if i > 0 && (d.JSONData["httpHeaderName1"] != "Authorization" || !strings.HasPrefix(d.SecureJSONData["httpHeaderValue1"].(string), "Token ")) {
			t.Errorf("configuration %d: InfluxDB 2.x and 3.x take a token in the Authorization header: %+v", i, d)
		}
	}
}

// commentedBlocks returns the commented-out data sources: each "  # - name:" line and the
// commented lines under it, uncommented.
func commentedBlocks(s string) []string {
	var blocks []string
	var cur []string
	flush := func() {
		if cur != nil {
			blocks = append(blocks, strings.Join(cur, "\n")+"\n")
			cur = nil
		}
	}
	for _, line := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(line, "  # - name:"):
			flush()
			cur = []string{"  " + strings.TrimPrefix(line, "  # ")}
		case cur != nil && strings.HasPrefix(line, "  #   "):
			cur = append(cur, "  "+strings.TrimPrefix(line, "  # "))
		default:
			flush()
		}
	}
	flush()
	return blocks
}

// TestProvisionedDashboards loads the dashboard provider: a file provider of the JSON files.
func TestProvisionedDashboards(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(provisioning, "dashboards", "fleetwatt.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type, Folder    string
			FolderUID             string `yaml:"folderUid"`
			OrgID                 int    `yaml:"orgId"`
			DisableDeletion       bool   `yaml:"disableDeletion"`
			AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
			UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
			Options               struct {
				Path                      string
				FoldersFromFilesStructure bool `yaml:"foldersFromFilesStructure"`
			}
		}
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	if len(f.Providers) != 1 || f.Providers[0].Type != "file" || !filepath.IsAbs(f.Providers[0].Options.Path) || f.Providers[0].AllowUIUpdates {
		t.Errorf("%+v: want one file provider of an absolute path, read-only in the UI", f)
	}
}
