package hosts

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
)

// write stores line protocol in the test's database; {t-N} stands for N seconds before now.
func write(t *testing.T, s *influxtest.Server, now time.Time, lines string) {
	t.Helper()
	for n := 600; n >= 0; n-- {
		lines = strings.ReplaceAll(lines, fmt.Sprintf("{t-%d}", n), fmt.Sprint(now.Add(-time.Duration(n)*time.Second).UnixNano()))
	}
	resp, err := http.Post(s.URL+"/write?db="+s.Database, "text/plain", strings.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: HTTP %d", resp.StatusCode)
	}
}

// fleet is three hosts as agents report them: arm-1 measured at the wall by IPMI (two PSUs,
// its primary reading) and by RAPL and hwmon on the package, last seen 60 s ago with a 10 s
// interval: stale; x86-1 estimated by a model, seen 5 s ago; vm-1 with CPU time only, every
// 10 s, seen 45 s ago: stale.
const fleet = `
power,host=arm-1,arch=arm64,cpu_model=Altra,region=cn-hangzhou,zone=cn-hangzhou-h,scope=wall,source=ipmi,sensor=psu0,method=measured,primary=true power_w=100,energy_j=1000,interval_s=10 {t-80}
power,host=arm-1,arch=arm64,cpu_model=Altra,region=cn-hangzhou,zone=cn-hangzhou-h,scope=wall,source=ipmi,sensor=psu1,method=measured,primary=true power_w=90,energy_j=900,interval_s=10 {t-80}
power,host=arm-1,arch=arm64,cpu_model=Altra,region=cn-hangzhou,zone=cn-hangzhou-h,scope=wall,source=ipmi,sensor=psu0,method=measured,primary=true power_w=120,energy_j=1200,interval_s=10 {t-70}
power,host=arm-1,arch=arm64,cpu_model=Altra,region=cn-hangzhou,zone=cn-hangzhou-h,scope=wall,source=ipmi,sensor=psu1,method=measured,primary=true power_w=110,energy_j=1100,interval_s=10 {t-70}
power,host=arm-1,arch=arm64,cpu_model=Altra,region=cn-hangzhou,zone=cn-hangzhou-h,scope=cpu-package,source=hwmon,sensor=hwmon0,method=measured,primary=false power_w=60,energy_j=600,interval_s=10 {t-70}
power,host=arm-1,arch=arm64,cpu_model=Altra,region=cn-hangzhou,zone=cn-hangzhou-h,scope=cpu-package,source=rapl,sensor=package-0,method=measured,primary=false power_w=50,energy_j=500,interval_s=10 {t-70}
cpu,host=arm-1,arch=arm64,cpu_model=Altra,region=cn-hangzhou,zone=cn-hangzhou-h busy_s=200,total_s=800,interval_s=10 {t-70}
cpu,host=arm-1,arch=arm64,cpu_model=Altra,region=cn-hangzhou,zone=cn-hangzhou-h busy_s=400,total_s=800,interval_s=10 {t-60}
host,host=arm-1,arch=arm64,cpu_model=Altra,region=cn-hangzhou,zone=cn-hangzhou-h collect_interval_s=10,cores=80i {t-60}
power,host=x86-1,arch=amd64,cpu_model=EPYC,region=us-west-1,scope=estimated-host,source=model,sensor=host,method=estimated,primary=true power_w=300,interval_s=15 {t-20}
power,host=x86-1,arch=amd64,cpu_model=EPYC,region=us-west-1,scope=estimated-host,source=model,sensor=host,method=estimated,primary=true power_w=330,interval_s=15 {t-5}
cpu,host=x86-1,arch=amd64,cpu_model=EPYC,region=us-west-1 utilization=0.25 {t-5}
cpu,host=vm-1,arch=amd64,region=local busy_s=1.5,total_s=20,interval_s=10 {t-45}
cpu,host=vm-1,arch=amd64,region=local,cpu=0 busy_s=9,total_s=10,interval_s=10 {t-45}
`

func TestQuery(t *testing.T) {
	s := influxtest.Start(t)
	now := time.Now().Truncate(time.Millisecond)
	write(t, s, now, fleet)
	at := func(n int) *time.Time { return ptr(now.Add(-time.Duration(n) * time.Second).UTC()) }

	want := &List{
		From: now.Add(-10 * time.Minute).UTC(), To: now.UTC(), Now: now.UTC(), StaleIntervals: 3,
		Hosts: []Host{
			{
				Host: "arm-1", Region: "cn-hangzhou", Zone: "cn-hangzhou-h", Arch: "arm64", CPUModel: "Altra",
				LastSeen: at(60), AgeS: ptr(60.0), IntervalS: ptr(10.0), Stale: true, Util: ptr(600.0 / 1600),
				Scope: "wall", Source: "ipmi", Method: "measured", PowerW: ptr(230.0), AvgPowerW: ptr(210.0),
				Power: []Reading{
					{Scope: "wall", Source: "ipmi", Method: "measured", Primary: true, AvgW: 210, LastW: 230},
					// hwmon is preferred to RAPL for one scope, as the report prefers it
					{Scope: "cpu-package", Source: "hwmon", Method: "measured", AvgW: 60, LastW: 60},
				},
			},
			{
				Host: "vm-1", Region: "local", Arch: "amd64",
				LastSeen: at(45), AgeS: ptr(45.0), IntervalS: ptr(10.0), Stale: true, Util: ptr(1.5 / 20),
				Power: []Reading{},
			},
			{
				Host: "x86-1", Region: "us-west-1", Arch: "amd64", CPUModel: "EPYC",
				LastSeen: at(5), AgeS: ptr(5.0), IntervalS: ptr(15.0), Stale: false, Util: ptr(0.25),
				Scope: "estimated-host", Source: "model", Method: "estimated", PowerW: ptr(330.0), AvgPowerW: ptr(315.0),
				Power: []Reading{{Scope: "estimated-host", Source: "model", Method: "estimated", Primary: true, AvgW: 315, LastW: 330}},
			},
		},
	}
	got, err := Query(t.Context(), s.Client(), s.Bucket(), now.Add(-10*time.Minute), time.Time{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("Query (-want +got):\n%s", diff)
	}

	// A range that ends before x86-1's last points sees it older, and arm-1 the same.
	got, err = Query(t.Context(), s.Client(), s.Database, now.Add(-10*time.Minute), now.Add(-10*time.Second), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Hosts) != 3 || got.Hosts[2].Host != "x86-1" || *got.Hosts[2].AgeS != 20 || *got.Hosts[2].PowerW != 300 {
		t.Errorf("x86-1 in a range ending 10 s ago: %+v", got.Hosts[2])
	}

	// Nothing in the range: an empty list, never null.
	got, err = Query(t.Context(), s.Client(), s.Bucket(), now.Add(-time.Hour), now.Add(-50*time.Minute), now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hosts == nil || len(got.Hosts) != 0 {
		t.Errorf("empty range: %+v", got.Hosts)
	}
}

func TestHandler(t *testing.T) {
	s := influxtest.Start(t)
	now := time.Now().Truncate(time.Millisecond)
	write(t, s, now, fleet)
	h := &Handler{Querier: s.Client(), Bucket: s.Bucket(), Now: func() time.Time { return now }}

	get := func(query string) (*httptest.ResponseRecorder, map[string]any) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/hosts?"+query, nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("GET ?%s: %v\n%s", query, err, rec.Body)
		}
		return rec, body
	}

	rec, body := get("since=5m")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET ?since=5m: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var l List
	if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, x := range l.Hosts {
		names = append(names, x.Host)
	}
	if diff := cmp.Diff([]string{"arm-1", "vm-1", "x86-1"}, names); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	if !l.From.Equal(now.Add(-5*time.Minute)) || !l.To.Equal(now) {
		t.Errorf("range %s..%s, want the 5 min before %s", l.From, l.To, now)
	}
	// The JSON names, as docs/web.md documents them.
	first := body["hosts"].([]any)[0].(map[string]any)
	keys := []string{
		"host", "region", "zone", "arch", "cpu_model", "last_seen", "age_s", "interval_s", "stale",
		"util", "scope", "source", "method", "power_w", "avg_power_w", "power",
	}
	for _, k := range keys {
		if _, ok := first[k]; !ok {
			t.Errorf("host JSON lacks %q: %v", k, first)
		}
	}
	vm := body["hosts"].([]any)[1].(map[string]any)
	if vm["power_w"] != nil || vm["method"] != "" || vm["scope"] != "" {
		t.Errorf("a host without power has power_w %v, method %q, scope %q; want null and empty", vm["power_w"], vm["method"], vm["scope"])
	}

	// Only x86-1 sent anything in the last 10 s.
	if _, body := get("since=10s"); len(body["hosts"].([]any)) != 1 {
		t.Errorf("since=10s: %v", body["hosts"])
	}
	from := url.QueryEscape(now.Add(-2 * time.Minute).Format(time.RFC3339Nano))
	to := url.QueryEscape(now.Add(-time.Minute).Format(time.RFC3339Nano))
	if _, body := get("from=" + from + "&to=" + to); len(body["hosts"].([]any)) != 1 {
		t.Errorf("from/to around arm-1's points only: %v", body["hosts"])
	}

	for _, tt := range []struct{ query, want string }{
		{"since=soon", "since \"soon\""},
		{"since=-5m", "positive duration"},
		{"since=5m&from=2026-01-01T00:00:00Z", "not both"},
		{"from=yesterday", "RFC 3339"},
	} {
		rec, body := get(tt.query)
		if rec.Code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body["error"]), tt.want) {
			t.Errorf("GET ?%s = %d %v, want 400 with %q", tt.query, rec.Code, body, tt.want)
		}
	}

	down := &Handler{Querier: &influxql.Client{URL: "http://127.0.0.1:1"}, Bucket: "fleetwatt"}
	rec = httptest.NewRecorder()
	down.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/hosts", nil))
	if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), `"error":"query influxdb`) {
		t.Errorf("InfluxDB down: %d %s", rec.Code, rec.Body)
	}
}
