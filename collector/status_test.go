package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fleetwatt/fleetwatt/collector/internal/hosts"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
)

// TestStatusJSONIsTheAPI: `status --format json` prints what GET /api/v1/hosts serves for
// the same range, from a real InfluxDB; the table says which host is stale.
func TestStatusJSONIsTheAPI(t *testing.T) {
	s := influxtest.Start(t)
	now := time.Now()
	lines := fmt.Sprintf(`power,host=arm-1,arch=arm64,cpu_model=Altra,region=cn-hangzhou,scope=wall,source=ipmi,sensor=psu0,method=measured,primary=true power_w=120,interval_s=10 %d
power,host=x86-1,arch=amd64,cpu_model=EPYC,region=cn-hangzhou,scope=estimated-host,source=model,sensor=host,method=estimated,primary=true power_w=300,interval_s=10 %d
`, now.Add(-2*time.Minute).UnixNano(), now.Add(-5*time.Second).UnixNano())
	resp, err := http.Post(s.URL+"/write?db="+s.Database, "text/plain", strings.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: HTTP %d", resp.StatusCode)
	}

	influx := []string{"--influx-url", s.URL, "--influx-bucket", s.Bucket(), "--since", "10m"}
	var stdout, stderr bytes.Buffer
	if code := cli(t.Context(), append([]string{"status", "--format", "json"}, influx...), &stdout, &stderr); code != 0 {
		t.Fatalf("status --format json: exit %d: %s", code, stderr.String())
	}
	var fromCLI hosts.List
	if err := json.Unmarshal(stdout.Bytes(), &fromCLI); err != nil {
		t.Fatalf("status --format json: %v\n%s", err, stdout.String())
	}
	rec := httptest.NewRecorder()
	(&hosts.Handler{Querier: s.Client(), Bucket: s.Bucket()}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/hosts?since=10m", nil))
	var api hosts.List
	if err := json.Unmarshal(rec.Body.Bytes(), &api); err != nil {
		t.Fatalf("GET /api/v1/hosts: %v\n%s", err, rec.Body.String())
	}
	if len(api.Hosts) != 2 || !api.Hosts[0].Stale || api.Hosts[1].Stale || api.Hosts[1].Method != "estimated" {
		t.Errorf("API hosts: %+v", api.Hosts)
	}
	// The two ran a moment apart: only the clock-dependent fields may differ.
	opts := cmp.Options{cmpopts.IgnoreFields(hosts.List{}, "From", "To", "Now"), cmpopts.IgnoreFields(hosts.Host{}, "AgeS")}
	if diff := cmp.Diff(api, fromCLI, opts); diff != "" {
		t.Errorf("status --format json differs from GET /api/v1/hosts (-api +cli):\n%s", diff)
	}

	stdout.Reset()
	if code := cli(t.Context(), append([]string{"status"}, influx...), &stdout, &stderr); code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr.String())
	}
	lines = stdout.String()
	if !strings.Contains(lines, "arm-1") || !strings.Contains(lines, "ago, stale") || strings.Count(lines, "stale") != 1 {
		t.Errorf("status table should mark arm-1, and only it, stale:\n%s", lines)
	}
	if code := cli(t.Context(), append([]string{"status", "--format", "yaml"}, influx...), &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "want table or json") {
		t.Errorf("status --format yaml: exit %d: %s", code, stderr.String())
	}
}
