package grafana

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleetwatt/fleetwatt/internal/fleettest"
)

func TestMain(m *testing.M) { fleettest.Main(m) }

// TestGenerated fails when the committed JSON files and their Go definitions disagree, or
// when a JSON file in the directory has no definition.
func TestGenerated(t *testing.T) {
	t.Parallel()
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		got, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s: %v: run `make dashboards`", name, err)
			continue
		}
		if !bytes.Equal(got, files[name]) {
			t.Errorf("dashboards/grafana/%s differs from its Go definition: run `make dashboards` and commit the result", name)
		}
	}
	committed, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range committed {
		if _, ok := files[name]; !ok {
			t.Errorf("dashboards/grafana/%s has no Go definition: remove it, or define it and run `make dashboards`", name)
		}
	}
}

// TestConventions checks what file provisioning and the dashboard linters ask of every
// dashboard: a pinned uid, the datasource variable and no __inputs, every panel on that
// variable, a description and a unit on every data panel, and queries bounded in time.
func TestConventions(t *testing.T) {
	t.Parallel()
	uids := map[string]bool{}
	for _, d := range All() {
		t.Run(d.UID, func(t *testing.T) {
			if uids[d.UID] || !strings.HasPrefix(d.UID, "fleetwatt-") || len(d.UID) > 40 {
				t.Errorf("uid %q: want a unique fleetwatt- uid of at most 40 characters", d.UID)
			}
			uids[d.UID] = true
			b, err := JSON(d)
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]any
			if err := json.Unmarshal(b, &raw); err != nil {
				t.Fatal(err)
			}
			if _, ok := raw["__inputs"]; ok || bytes.Contains(b, []byte("${DS_")) {
				t.Error("__inputs or ${DS_...}: file provisioning cannot resolve them")
			}
			if raw["id"] != nil || d.SchemaVersion != SchemaVersion {
				t.Errorf("id %v, schemaVersion %d: want null and %d", raw["id"], d.SchemaVersion, SchemaVersion)
			}
			vars := d.Templating.List
			if len(vars) == 0 || vars[0].Name != "datasource" || vars[0].Type != "datasource" || vars[0].Query != "influxdb" {
				t.Fatalf("the first variable is not the InfluxDB datasource variable: %+v", vars[0])
			}
			for _, v := range vars[1:] {
				if v.Datasource == nil || *v.Datasource != ds || !strings.HasPrefix(v.Query, "SHOW TAG VALUES") {
					t.Errorf("variable %s: %+v", v.Name, v)
				}
			}
			ids := map[int]bool{}
			for _, p := range d.Panels {
				if ids[p.ID] {
					t.Errorf("panel id %d twice", p.ID)
				}
				ids[p.ID] = true
				if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
					t.Errorf("%s: off the grid: %+v", p.Title, p.GridPos)
				}
				if p.Type == "row" || p.Type == "text" {
					continue
				}
				if p.Datasource == nil || *p.Datasource != ds || p.Description == "" || len(p.Targets) == 0 {
					t.Errorf("%s: needs the ${datasource} data source, a description and queries", p.Title)
				}
				if p.FieldConfig == nil || (p.FieldConfig.Defaults.Unit == "" && len(p.FieldConfig.Overrides) == 0) {
					t.Errorf("%s: no unit", p.Title)
				}
				for _, tg := range p.Targets {
					if tg.Datasource != ds || !tg.RawQuery || !strings.Contains(tg.Query, "$timeFilter") || len(tg.Check.Columns) == 0 {
						t.Errorf("%s/%s: want a raw InfluxQL query on ${datasource}, bounded by $timeFilter, with a Check: %+v", p.Title, tg.RefID, tg)
					}
				}
			}
		})
	}
}
