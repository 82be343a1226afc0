package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The testdata files are real `go test -bench` outputs:
//   - agent-count2.txt: three agent packages, -count 2, one sub-benchmark name with a slash
//     in it (protocol=http/protobuf);
//   - footprint.txt: BenchmarkAgentFootprint's custom metrics (b.ReportMetric) and its log;
//   - fail.txt: a benchmark that failed before the package header, and one with a custom
//     metric;
//   - prints.txt: a benchmark whose code printed between its name and its figures (-count 2).

func parseFile(t *testing.T, name string) *Output {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return out
}

const (
	exportPkg  = "github.com/fleetwatt/fleetwatt/agent/internal/export"
	collectPkg = "github.com/fleetwatt/fleetwatt/agent/internal/collect"
	agentPkg   = "github.com/fleetwatt/fleetwatt/agent"
)

func TestParse(t *testing.T) {
	t.Parallel()
	t.Run("several packages, two runs each", func(t *testing.T) {
		t.Parallel()
		out := parseFile(t, "agent-count2.txt")
		var names []string
		for _, r := range out.Results {
			names = append(names, r.Pkg+" "+r.Name)
		}
		want := []string{
			collectPkg + " BenchmarkCycle",
			exportPkg + " BenchmarkExport/protocol=grpc",
			exportPkg + " BenchmarkExport/protocol=http/protobuf",
			"github.com/fleetwatt/fleetwatt/agent/internal/sensor/cpuidle BenchmarkRead",
		}
		if diff := cmp.Diff(want, names); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
		grpc := out.Find(exportPkg, "BenchmarkExport/protocol=grpc")
		if diff := cmp.Diff(map[string][]float64{
			"ns/op": {241960, 233924}, "B/op": {61722, 61761}, "allocs/op": {1266, 1265},
		}, grpc.Values); diff != "" {
			t.Errorf("values (-want +got):\n%s", diff)
		}
		if m, ok := grpc.Median("ns/op"); !ok || m != (241960+233924)/2.0 {
			t.Errorf("Median(ns/op) = %v, %t", m, ok)
		}
		if _, ok := grpc.Median("points/s"); ok {
			t.Error("Median of a metric never reported says ok")
		}
		if len(out.Failed) != 0 {
			t.Errorf("Failed = %v, want none", out.Failed)
		}
	})
	t.Run("custom metrics", func(t *testing.T) {
		t.Parallel()
		out := parseFile(t, "footprint.txt")
		r := out.Find(agentPkg, "BenchmarkAgentFootprint/interval=10s")
		if r == nil {
			t.Fatalf("no interval=10s result in %+v", out.Results)
		}
		for _, unit := range []string{"ms-cpu/cycle", "MB-rss", "MB-peak-rss", "MB-anon", "MB-file", "MB-pss"} {
			if v, ok := r.Median(unit); !ok || v <= 0 {
				t.Errorf("%s = %v, %t; want a positive figure", unit, v, ok)
			}
		}
	})
	t.Run("failures", func(t *testing.T) {
		t.Parallel()
		out := parseFile(t, "fail.txt")
		if diff := cmp.Diff([]string{"BenchmarkFails", "example.com/samples"}, out.Failed); diff != "" {
			t.Errorf("Failed (-want +got):\n%s", diff)
		}
		r := out.Find("example.com/samples", "BenchmarkPrints")
		if v, ok := r.Median("points/s"); !ok || v != 123456 {
			t.Errorf("points/s = %v, %t; want 123456", v, ok)
		}
	})
	t.Run("output between name and figures", func(t *testing.T) {
		t.Parallel()
		out := parseFile(t, "prints.txt")
		r := out.Find("example.com/samples", "BenchmarkPrints")
		if r == nil || len(r.Values["ns/op"]) != 2 {
			t.Fatalf("BenchmarkPrints: %+v, want two runs", r)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		t.Parallel()
		for _, in := range []string{
			"pkg: p\nBenchmarkX-2\t100\t12 ns/op\t7\n",
			"pkg: p\nBenchmarkX-2\t100\ttwelve ns/op\n",
		} {
			if _, err := Parse(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "line 2") {
				t.Errorf("Parse(%q) error %v, want one naming line 2", in, err)
			}
		}
	})
}

// FuzzParse: whatever the input, Parse returns results or an error, and every result it
// returns has values.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"agent-count2.txt", "footprint.txt", "fail.txt", "prints.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Parse(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, r := range out.Results {
			if len(r.Values) == 0 {
				t.Fatalf("result %s %s without values", r.Pkg, r.Name)
			}
		}
	})
}

// rowsForTest are rows over the agent-count2.txt benchmarks, one of each kind.
var rowsForTest = []Row{
	{ID: "cycle", What: "cycle", Pkg: collectPkg, Bench: "BenchmarkCycle", Metric: "ns/op", Scale: 1e-3, Unit: "µs", Target: 200, Better: Lower},
	{ID: "cycle.allocs", What: "cycle allocs", Pkg: collectPkg, Bench: "BenchmarkCycle", Metric: "allocs/op", Unit: "allocs", Target: 50, Better: Lower},
	{ID: "grpc", What: "export", Pkg: exportPkg, Bench: "BenchmarkExport/protocol=grpc", Metric: "ns/op", Scale: 1e-3, Unit: "µs", Better: Lower},
	{ID: "speed", What: "a throughput", Pkg: exportPkg, Bench: "BenchmarkExport/protocol=http/protobuf", Metric: "allocs/op", Unit: "x", Target: 500, Better: Higher, Tolerance: 0.05},
	{ID: "gone", What: "renamed away", Pkg: exportPkg, Bench: "BenchmarkExportOld", Metric: "ns/op", Unit: "ns", Better: Lower},
	{ID: "todo", What: "to be written", Metric: "points/s", Unit: "points/s", Target: 400_000, Better: Higher},
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	out := parseFile(t, "agent-count2.txt")
	// Measured here: cycle 106.82 µs, 95 allocs; grpc 237.942 µs; the "speed" 528.
	tests := []struct {
		name          string
		recorded      map[string]float64
		wantRegressed []string
		wantUnmet     []string
	}{
		{
			name:      "nothing recorded: no change, targets still judged",
			recorded:  nil,
			wantUnmet: []string{"cycle.allocs"},
		},
		{
			name:     "within tolerance either way",
			recorded: map[string]float64{"cycle": 100, "cycle.allocs": 90, "grpc": 260, "speed": 540},
			// cycle +6.8 %, allocs +5.6 %, grpc −8.5 %, speed −2.2 % (higher is better, 5 % tolerance)
			wantUnmet: []string{"cycle.allocs"},
		},
		{
			name:          "worse beyond tolerance",
			recorded:      map[string]float64{"cycle": 80, "cycle.allocs": 95, "grpc": 190, "speed": 600},
			wantRegressed: []string{"cycle", "grpc", "speed"}, // +33.5 %, +25.2 %, −12 % of a higher-is-better
			wantUnmet:     []string{"cycle.allocs"},
		},
		{
			name:      "better by far is no regression",
			recorded:  map[string]float64{"cycle": 500, "cycle.allocs": 400, "grpc": 1000, "speed": 100},
			wantUnmet: []string{"cycle.allocs"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lines, v := Evaluate(rowsForTest, out, Baseline{Figures: tt.recorded}, nil)
			if diff := cmp.Diff(tt.wantRegressed, ids(v.Regressed)); diff != "" {
				t.Errorf("regressed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantUnmet, ids(v.TargetsUnmet)); diff != "" {
				t.Errorf("targets unmet (-want +got):\n%s", diff)
			}
			if v.Targets != 3 || v.TargetsMet != 2 {
				t.Errorf("targets met %d of %d, want 2 of 3", v.TargetsMet, v.Targets)
			}
			if diff := cmp.Diff([]string{"gone"}, ids(v.Missing)); diff != "" {
				t.Errorf("missing (-want +got):\n%s", diff)
			}
			if v.OK(false) {
				t.Error("verdict OK with a missing benchmark")
			}
			status := map[string]Status{}
			for _, l := range lines {
				status[l.Row.ID] = l.Status
			}
			if diff := cmp.Diff(map[string]Status{
				"cycle": Measured, "cycle.allocs": Measured, "grpc": Measured, "speed": Measured,
				"gone": Missing, "todo": Pending,
			}, status); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("figures in the row's unit", func(t *testing.T) {
		t.Parallel()
		lines, _ := Evaluate(rowsForTest[:1], out, Baseline{Figures: map[string]float64{"cycle": 100}}, nil)
		if l := lines[0]; l.Figure != 106.8205 || l.Recorded != 100 || l.Change < 0.0682 || l.Change > 0.0683 {
			t.Errorf("line %+v, want 106.8205 µs against 100 recorded, +6.8 %%", l)
		}
	})
	t.Run("selection", func(t *testing.T) {
		t.Parallel()
		lines, v := Evaluate(rowsForTest, out, Baseline{}, func(r Row) bool { return strings.HasPrefix(r.ID, "cycle") })
		if len(lines) != 2 || len(v.Missing) != 0 {
			t.Errorf("%d lines, %d missing; want the 2 cycle rows and nothing missing", len(lines), len(v.Missing))
		}
	})
	t.Run("pass, fail, strict", func(t *testing.T) {
		t.Parallel()
		rows := rowsForTest[:4]
		_, v := Evaluate(rows, out, Baseline{}, nil)
		if !v.OK(false) || v.OK(true) {
			t.Errorf("OK(false) = %t, OK(true) = %t; want a pass that -strict fails for the unmet target", v.OK(false), v.OK(true))
		}
		failed := parseFile(t, "fail.txt")
		_, v = Evaluate(nil, failed, Baseline{}, nil)
		if v.OK(false) {
			t.Error("verdict OK with a failed benchmark")
		}
	})
}

func ids(lines []Line) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Row.ID)
	}
	return out
}

// TestTable runs the command on a saved output: the table, the verdict and the exit status,
// then records a baseline and runs again against it.
func TestTable(t *testing.T) {
	t.Parallel()
	base := filepath.Join(t.TempDir(), "baseline.json")
	var stdout, stderr bytes.Buffer
	code := mainErr([]string{"-input", "testdata/agent-count2.txt", "-baseline", base, "-only", `^agent\.(cycle|export|cpuidle)`}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	for _, want := range []string{
		"what", "figure", "recorded", "change",
		"collection cycle (read, compute, build), Intel fixture", "107", "µs",
		"one export over OTLP/gRPC, allocations", "1266",
		"recorded: nothing yet in " + base,
		"verdict: PASS: 0 regressed beyond tolerance, 0 missing, 0 failed; targets met: 0 of 0",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &stdout)
		}
	}

	stdout.Reset()
	if code := mainErr([]string{"-input", "testdata/agent-count2.txt", "-baseline", base, "-only", `^agent\.cycle`, "-record", "-machine", "the test"}, &stdout, &stderr); code != 0 {
		t.Fatalf("record: exit %d\n%s%s", code, &stdout, &stderr)
	}
	rec, err := LoadBaseline(base)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Machine != "the test" || rec.Figures["agent.cycle.allocs"] != 95 || len(rec.Figures) != 3 {
		t.Errorf("recorded %+v, want the 3 cycle figures from the test machine", rec)
	}

	// Against a baseline 30 % better, the same output is a regression: exit 1, said so.
	rec.Figures["agent.cycle.time"] = 80
	if err := rec.Save(base); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if code := mainErr([]string{"-input", "testdata/agent-count2.txt", "-baseline", base, "-only", `^agent\.cycle`}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d with a regression, want 1\n%s", code, &stdout)
	}
	for _, want := range []string{"REGRESSION: collection cycle", "+33.5 % !", "against 80 recorded, +33.5 %", "verdict: FAIL: 1 regressed"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &stdout)
		}
	}
}

// TestRows keeps the table consistent: unique IDs, units and directions set, placeholders
// marked only by an empty benchmark.
func TestRows(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, r := range Rows {
		if seen[r.ID] {
			t.Errorf("row ID %q twice", r.ID)
		}
		seen[r.ID] = true
		if r.ID == "" || r.What == "" || r.Metric == "" || r.Unit == "" {
			t.Errorf("row %+v lacks an ID, a label, a metric or a unit", r)
		}
		if (r.Pkg == "") != (r.Bench == "") {
			t.Errorf("row %q: package %q and benchmark %q: both or neither", r.ID, r.Pkg, r.Bench)
		}
		if strings.ContainsAny(r.Metric, " \t") {
			t.Errorf("row %q: metric %q has white space, which b.ReportMetric refuses", r.ID, r.Metric)
		}
	}
}

// TestBaselineFile: the recorded figures load, and every one belongs to a row.
func TestBaselineFile(t *testing.T) {
	t.Parallel()
	base, err := LoadBaseline(filepath.Join("..", "..", "bench", "baseline.json"))
	if err != nil {
		t.Fatal(err)
	}
	for id := range base.Figures {
		if !seenID(id) {
			t.Errorf("bench/baseline.json records %q, which no row has", id)
		}
	}
}

func seenID(id string) bool {
	for _, r := range Rows {
		if r.ID == id {
			return true
		}
	}
	return false
}

func TestRoundSignificant(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want float64 }{
		{248.87300000000002, 248.9}, {1.00681, 1.007}, {95, 95}, {0.0012345, 0.001235}, {412345, 412300}, {0, 0},
	} {
		if got := roundSignificant(tt.in, 4); math.Abs(got-tt.want) > 1e-12*math.Abs(tt.want) {
			t.Errorf("roundSignificant(%v, 4) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
