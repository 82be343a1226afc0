package simulate

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// issueExample is the spec of the issue, key for key.
const issueExample = `groups:
  - region: cn-hangzhou
    zone: cn-hangzhou-h
    arch: arm64
    cpu_model: Ampere Altra Q80-30
    hosts: 40
    sockets: 1
    cores: 80
    scope: wall
    idle_w: 54
    peak_w: 140
    curve: linear            # or teads, or a list of [utilization, fraction of peak] points
    utilization: {mean: 0.35, diurnal_amplitude: 0.2, noise: 0.03}
    ops_per_core_second: 1200   # optional
    sensor_noise: 0.01          # relative, per reading
`

func TestLoadIssueExample(t *testing.T) {
	t.Parallel()
	s, err := Load(strings.NewReader(issueExample))
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Groups: []Group{{
		Region: "cn-hangzhou", Zone: "cn-hangzhou-h", Arch: "arm64", CPUModel: "Ampere Altra Q80-30",
		Hosts: 40, Sockets: 1, Cores: 80, Scope: semconv.ScopeWall, IdleW: 54, PeakW: 140,
		Curve:            Curve{Name: "linear"},
		Utilization:      Utilization{Mean: 0.35, DiurnalAmplitude: 0.2, Noise: 0.03},
		OpsPerCoreSecond: 1200, SensorNoise: 0.01,
	}}}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(path, []byte(issueExample), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Groups) != 1 || s.Groups[0].Hosts != 40 {
		t.Errorf("LoadFile = %+v", s)
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("LoadFile of a missing file: no error")
	}
}

func TestLoadRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"empty", "", []string{"empty fleet spec"}},
		{"no groups", "groups: []\n", []string{"groups: no groups"}},
		{"unknown top-level key", "groups: []\nseed: 3\n", []string{"field seed not found"}},
		{
			"unknown group key",
			strings.Replace(issueExample, "sensor_noise: 0.01", "sensor_noise: 0.01\n    gpus: 8", 1),
			[]string{"field gpus not found"},
		},
		{
			"unknown utilization key",
			strings.Replace(issueExample, "noise: 0.03}", "noise: 0.03, p95: 0.5}", 1),
			[]string{"field p95 not found"},
		},
		{"curve of the wrong kind", strings.Replace(issueExample, "curve: linear", "curve: {shape: linear}", 1), []string{"curve must be linear, teads or a list"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(strings.NewReader(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestValidateNamesEveryProblemByPath breaks every key of a spec and expects one error per
// problem, each starting with its YAML path.
func TestValidateNamesEveryProblemByPath(t *testing.T) {
	t.Parallel()
	bad := `groups:
  - region: cn-hangzhou
    zone: cn-hangzhou-h
    arch: arm64
    cpu_model: Ampere Altra Q80-30
    hosts: 4
    sockets: 1
    cores: 80
    scope: wall
    idle_w: 54
    peak_w: 140
    curve: teads
    utilization: {mean: 0.35, diurnal_amplitude: 0.2, noise: 0.03}
  - region: mars-north-1
    arch: x86_64
    cpu_model: ""
    hosts: 0
    sockets: 0
    cores: -1
    scope: dram
    idle_w: 0
    peak_w: 0
    curve: cubic
    utilization: {mean: 1.5, diurnal_amplitude: -0.1, noise: 0.9}
    ops_per_core_second: -3
    sensor_noise: 2
  - region: cn-beijing
    arch: amd64
    cpu_model: Intel Xeon 8380
    hosts: 2
    sockets: 2
    cores: 158
    idle_w: 300
    peak_w: 200
    curve: [[0.1, 0.3], [0.05, 0.5], [0.9, 0.4], [1], [0.95, 0.2]]
    utilization: {mean: 0.3}
  - region: eu-north-9
    utc_offset_hours: 20
    arch: arm64
    cpu_model: X
    hosts: 1
    sockets: 1
    cores: 4
    idle_w: 10
    peak_w: 20
    curve: [[0, 0.5]]
    utilization: {mean: 0.3}
`
	_, err := Load(strings.NewReader(bad))
	if err == nil {
		t.Fatal("no error")
	}
	var got []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		path, _, _ := strings.Cut(line, ": ")
		got = append(got, path)
	}
	want := []string{
		"groups[1].utc_offset_hours", "groups[1].arch", "groups[1].cpu_model", "groups[1].hosts",
		"groups[1].sockets", "groups[1].cores", "groups[1].scope", "groups[1].idle_w", "groups[1].peak_w",
		"groups[1].curve", "groups[1].utilization.mean", "groups[1].utilization.diurnal_amplitude",
		"groups[1].utilization.noise", "groups[1].ops_per_core_second", "groups[1].sensor_noise",
		"groups[2].cores", "groups[2].peak_w",
		"groups[2].curve[1]", "groups[2].curve[2]", "groups[2].curve[3]", "groups[2].curve", "groups[2].curve",
		"groups[3].utc_offset_hours", "groups[3].curve",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error paths (-want +got):\n%s\nerror:\n%v", diff, err)
	}
}

func TestDefaultFleet(t *testing.T) {
	t.Parallel()
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	pools := map[string][]string{}
	hosts := 0
	for _, g := range s.Groups {
		pools[g.Region] = append(pools[g.Region], g.Arch)
		hosts += g.Hosts
		if g.OpsPerCoreSecond <= 0 || g.scope() != semconv.ScopeWall {
			t.Errorf("%s %s: ops %v scope %q, want work and wall", g.Region, g.CPUModel, g.OpsPerCoreSecond, g.scope())
		}
	}
	for r := range pools {
		slices.Sort(pools[r])
	}
	want := map[string][]string{}
	for _, r := range []string{"cn-beijing", "cn-hangzhou", "cn-qingdao", "cn-hongkong", "cn-shenzhen", "us-west-1"} {
		want[r] = []string{"amd64", "arm64"}
	}
	if diff := cmp.Diff(want, pools); diff != "" {
		t.Errorf("regions and arches (-want +got):\n%s", diff)
	}
	if hosts != 120 {
		t.Errorf("%d hosts, want 120", hosts)
	}
	// The shipped text is what --print-fleet prints, and it loads too.
	if _, err := Load(strings.NewReader(string(DefaultYAML()))); err != nil {
		t.Error(err)
	}
}

// TestCurvePoints checks the list form: the points' shape, rebased between idle and peak.
func TestCurvePoints(t *testing.T) {
	t.Parallel()
	yaml := strings.Replace(issueExample, "curve: linear", "curve: [[0, 0.4], [0.5, 0.85], [1, 1.0]]", 1)
	s, err := Load(strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Curve{Points: [][]float64{{0, 0.4}, {0.5, 0.85}, {1, 1}}}, s.Groups[0].Curve); diff != "" {
		t.Errorf("curve (-want +got):\n%s", diff)
	}
	hosts, err := NewHosts(s, 1)
	if err != nil {
		t.Fatal(err)
	}
	h := hosts[0]
	for _, c := range []struct{ u, share float64 }{
		{0, 0}, {0.25, 0.225 / 0.6}, {0.5, 0.45 / 0.6}, {0.75, 0.525 / 0.6}, {1, 1}, {-1, 0}, {2, 1},
	} {
		want := h.IdleW + (h.PeakW-h.IdleW)*c.share
		if got := h.PowerW(c.u); !near(got, want, 1e-12) {
			t.Errorf("PowerW(%v) = %v, want %v", c.u, got, want)
		}
	}
}

func near(a, b, rel float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= rel*max(abs(a), abs(b), 1e-300)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestDocExamplesLoad loads every fleet in docs/simulate.md.
func TestDocExamplesLoad(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../../docs/simulate.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```yaml\n")[1:]
	if len(blocks) < 2 {
		t.Fatalf("%d yaml examples in docs/simulate.md, want at least 2", len(blocks))
	}
	for i, b := range blocks {
		text, _, _ := strings.Cut(b, "```")
		if _, err := Load(strings.NewReader(text)); err != nil {
			t.Errorf("example %d: %v\n%s", i+1, err, text)
		}
	}
}
