package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

const (
	beijingToken = "bj-secret-4f1c9a"
	opsToken     = "ops-secret-77d2e0"
)

// writeTokens writes a tokens file with a cn-beijing token and an any-region token.
func writeTokens(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	body := "tokens:\n" +
		"  - name: beijing-agents\n    sha256: " + Hash(beijingToken) + "\n    regions: [cn-beijing, cn-beijing-2]\n" +
		"  - name: ops\n    sha256: " + Hash(opsToken) + "\n    regions: [\"*\"]\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func load(t *testing.T) *Tokens {
	t.Helper()
	tk, err := Load(writeTokens(t))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestExampleFile(t *testing.T) {
	t.Parallel()
	tk, err := Load("testdata/tokens.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if tk.Len() != 2 {
		t.Errorf("%d tokens, want 2", tk.Len())
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	tk := load(t)
	tests := []struct {
		name, header string
		want         Principal
		err          string
	}{
		{name: "beijing", header: "Bearer " + beijingToken, want: Principal{"beijing-agents", []string{"cn-beijing", "cn-beijing-2"}}},
		{name: "scheme_case", header: "bearer  " + opsToken + " ", want: Principal{"ops", []string{"*"}}},
		{name: "missing", header: "", err: "no bearer token"},
		{name: "bare_token", header: beijingToken, err: `not "Bearer <token>"`},
		{name: "basic", header: "Basic " + beijingToken, err: `not "Bearer <token>"`},
		{name: "empty_token", header: "Bearer ", err: "empty bearer token"},
		{name: "wrong", header: "Bearer " + beijingToken + "x", err: "unknown bearer token"},
		{name: "hash_as_token", header: "Bearer " + Hash(beijingToken), err: "unknown bearer token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tk.Authenticate(tt.header)
			if tt.err != "" {
				if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want ErrUnauthenticated with %q", err, tt.err)
				}
				for _, secret := range []string{beijingToken, opsToken} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q contains the token", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLookupConstantTime checks the comparison, not its timing: hashes are compared with
// crypto/subtle's constant-time function, against every entry even after a match, so that
// neither a token's bytes nor its position in the file shows in the response time.
func TestLookupConstantTime(t *testing.T) {
	t.Parallel()
	tk := load(t)
	if reflect.ValueOf(tk.compare).Pointer() != reflect.ValueOf(subtle.ConstantTimeCompare).Pointer() {
		t.Fatal("tokens are not compared with subtle.ConstantTimeCompare")
	}
	calls := 0
	tk.compare = func(a, b []byte) int {
		calls++
		return subtle.ConstantTimeCompare(a, b)
	}
	for _, tok := range []string{beijingToken, opsToken, "nope"} {
		calls = 0
		tk.lookup(sha256.Sum256([]byte(tok)))
		if calls != tk.Len() {
			t.Errorf("token %d: %d comparisons, want one per entry (%d)", len(tok), calls, tk.Len())
		}
	}
}

func metrics(regions ...string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for _, r := range regions {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr(semconv.AttrHostName, "h")
		switch r {
		case "<none>":
		case "<int>":
			rm.Resource().Attributes().PutInt(semconv.AttrCloudRegion, 1)
		default:
			rm.Resource().Attributes().PutStr(semconv.AttrCloudRegion, r)
		}
	}
	return md
}

func TestAllowed(t *testing.T) {
	t.Parallel()
	tk := load(t)
	bj, _ := tk.Authenticate("Bearer " + beijingToken)
	ops, _ := tk.Authenticate("Bearer " + opsToken)
	tests := []struct {
		name string
		p    Principal
		md   pmetric.Metrics
		err  string
	}{
		{name: "own_region", p: bj, md: metrics("cn-beijing", "cn-beijing-2")},
		{name: "empty_request", p: bj, md: metrics()},
		{name: "other_region", p: bj, md: metrics("cn-beijing", "us-west-1"), err: `token "beijing-agents" may not write region "us-west-1"`},
		{name: "no_region", p: bj, md: metrics("<none>"), err: `token "beijing-agents" may write only region cn-beijing, cn-beijing-2, and this data has no cloud.region`},
		{name: "empty_region", p: bj, md: metrics(""), err: "has no cloud.region"},
		{name: "int_region", p: bj, md: metrics("<int>"), err: "has no cloud.region"},
		{name: "any_region", p: ops, md: metrics("us-west-1", "<none>", "cn-beijing")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tk.Allowed(tt.p, tt.md)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want ErrForbidden with %q", err, tt.err)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	h := Hash("a")
	tests := []struct {
		name, body string
		want       []string
	}{
		{name: "empty", body: "", want: []string{"no tokens"}},
		{name: "no_list", body: "tokens: []\n", want: []string{"no tokens"}},
		{name: "unknown_key", body: "tokens:\n  - {name: a, token: x, sha256: " + h + ", regions: [r]}\n", want: []string{"field token not found"}},
		{
			name: "every_problem",
			body: "tokens:\n" +
				"  - {sha256: " + h + ", regions: [r]}\n" +
				"  - {name: b, sha256: plain-token, regions: [r]}\n" +
				"  - {name: c, sha256: " + h + "}\n" +
				"  - {name: c, sha256: " + Hash("d") + ", regions: [\"\"]}\n",
			want: []string{
				"tokens[0].name: required",
				"tokens[1].sha256: want the 64 hex digits",
				"tokens[2].sha256: the same token as tokens[0]",
				"tokens[2].regions: required",
				`tokens[3].name: "c" already used by tokens[2]`,
				"tokens[3].regions[0]: empty",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "tokens.yaml")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "plain-token") {
				t.Errorf("error %q repeats a value that may be a token", err)
			}
		})
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	path := writeTokens(t)
	tk, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rotated := "tokens:\n  - {name: beijing-agents, sha256: " + Hash("new-token") + ", regions: [cn-beijing]}\n"
	if err := os.WriteFile(path, []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tk.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Authenticate("Bearer " + beijingToken); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("old token after reload: %v", err)
	}
	if _, err := tk.Authenticate("Bearer new-token"); err != nil {
		t.Errorf("new token after reload: %v", err)
	}
	// A broken file keeps the tokens in force.
	if err := os.WriteFile(path, []byte("tokens: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tk.Reload(); err == nil {
		t.Error("Reload of a broken file succeeded")
	}
	if _, err := tk.Authenticate("Bearer new-token"); err != nil {
		t.Errorf("token after a failed reload: %v", err)
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	if _, ok := FromContext(context.Background()); ok {
		t.Error("principal in an empty context")
	}
	p := Principal{Name: "n", Regions: []string{"r"}}
	got, ok := FromContext(NewContext(context.Background(), p))
	if !ok || !cmp.Equal(p, got) {
		t.Errorf("FromContext = %v %v", got, ok)
	}
}

func FuzzParse(f *testing.F) {
	b, err := os.ReadFile("testdata/tokens.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add("tokens:\n  - {name: a, sha256: " + Hash("a") + ", regions: [\"*\"]}\n")
	f.Add("tokens: [{name: 1, sha256: [1], regions: {a: b}}]")
	f.Fuzz(func(t *testing.T, body string) {
		es, err := parse(strings.NewReader(body))
		if err == nil && len(es) == 0 {
			t.Fatal("no error and no tokens")
		}
		for _, e := range es {
			if e.p.Name == "" || len(e.p.Regions) == 0 {
				t.Fatalf("accepted incomplete entry %+v", e.p)
			}
		}
	})
}
