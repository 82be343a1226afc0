package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// TestGolden: the three formats of two plans, the worked example on work and the ARM move on
// cores.
func TestGolden(t *testing.T) {
	t.Parallel()
	plans := map[string]Request{
		"xeon8380-to-epyc9754": {Region: "cn-hangzhou", From: xeon8380, To: epyc9754, Share: 1, TargetUtil: 0.6, Basis: BasisWork},
		"epyc7763-to-altra":    {Region: "cn-hangzhou", From: epyc7763, To: altraQ80, Share: 0.5, TargetUtil: 0.6},
	}
	formats := map[string]func(Result, io.Writer) error{
		"table": Result.WriteTable,
		"json":  Result.WriteJSON,
		"md":    Result.WriteMarkdown,
	}
	for name, req := range plans {
		res, err := Compute(req, hangzhou)
		if err != nil {
			t.Fatal(err)
		}
		for ext, write := range formats {
			t.Run(name+"."+ext, func(t *testing.T) {
				t.Parallel()
				var b bytes.Buffer
				if err := write(res, &b); err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", name+"."+ext+".golden")
				if *update {
					if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(string(want), b.String()); diff != "" {
					t.Errorf("%s (-want +got), rerun with -update if intended:\n%s", golden, diff)
				}
			})
		}
	}
}

// TestJSONContract: the JSON round-trips, and the names docs/plan.md promises are there.
func TestJSONContract(t *testing.T) {
	t.Parallel()
	res, err := Compute(Request{Region: "cn-hangzhou", From: epyc7763, To: altraQ80, Share: 0.5, TargetUtil: 0.6}, hangzhou)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := res.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(res, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	var fields map[string]any
	if err := json.Unmarshal(b.Bytes(), &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{
		"region", "scope", "basis", "from", "to", "share", "share_moved", "hosts_removed", "hosts_added",
		"busy_cores_moved", "busy_cores_needed", "ops_per_second_moved", "to_util_target", "to_util_actual",
		"from_host_w", "to_host_w", "kw_before", "kw_after", "kw_saved", "hours_per_year",
		"kwh_per_year_saved", "facility_kwh_per_year_saved", "usd_per_year_saved", "tco2e_per_year_saved",
		"factors", "assumptions",
	} {
		if _, ok := fields[k]; !ok {
			t.Errorf("json lacks %q", k)
		}
	}
	if len(fields) != 26 {
		t.Errorf("json has %d fields, docs/plan.md lists 26: update both", len(fields))
	}
	if fields["ops_per_second_moved"] != nil {
		t.Errorf("ops_per_second_moved = %v on basis cores, want null", fields["ops_per_second_moved"])
	}
}

// TestWriteErrors: a failing writer's error comes back, wrapped.
func TestWriteErrors(t *testing.T) {
	t.Parallel()
	res, err := Compute(Request{Region: "cn-hangzhou", From: epyc7763, To: altraQ80, Share: 0.5, TargetUtil: 0.6}, hangzhou)
	if err != nil {
		t.Fatal(err)
	}
	broken := errors.New("broken pipe")
	for name, write := range map[string]func(io.Writer) error{"table": res.WriteTable, "json": res.WriteJSON, "md": res.WriteMarkdown} {
		if err := write(failWriter{broken}); !errors.Is(err, broken) || !strings.Contains(err.Error(), "write plan") {
			t.Errorf("%s: got %v, want the writer's error wrapped", name, err)
		}
	}
}

func TestGroup(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		v    float64
		dec  int
		want string
	}{
		{0, 0, "0"},
		{999, 0, "999"},
		{1000, 0, "1,000"},
		{248968.4578, 0, "248,968"},
		{-1234567.891, 2, "-1,234,567.89"},
		{-0.001, 1, "0.0"},
		{21.8474, 2, "21.85"},
	} {
		if got := group(c.v, c.dec); got != c.want {
			t.Errorf("group(%v, %d) = %q, want %q", c.v, c.dec, got, c.want)
		}
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }
