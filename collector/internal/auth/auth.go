// Package auth decides who may send metrics to the collector: bearer tokens listed in a
// tokens file, each bound to the regions (cloud.region) it may write.
//
// The file holds only the SHA-256 of each token, so it is not a secret and can live in
// configuration management next to the collector's other settings:
//
//	tokens:
//	  - name: beijing-agents        # named in errors and logs; the token itself never is
//	    sha256: 5e8848...           # hex SHA-256 of the token's bytes (no trailing newline)
//	    regions: [cn-beijing]
//	  - name: ops-relay
//	    sha256: 9f86d0...
//	    regions: ["*"]              # any region, and resources without cloud.region
//
// A presented token is hashed and compared with every entry in constant time
// (crypto/subtle), so neither the comparison nor the position of a match leaks through
// timing. Reload re-reads the file; the collector calls it on SIGHUP.
package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"gopkg.in/yaml.v3"

	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// AnyRegion in a token's regions lets it write every region, and resources without
// cloud.region.
const AnyRegion = "*"

// Sentinel errors, checked with errors.Is: the receiver answers ErrUnauthenticated with gRPC
// Unauthenticated / HTTP 401 and ErrForbidden with PermissionDenied / 403.
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("permission denied")
)

// Principal is who sent a request: the name of the token it carried and the regions that
// token may write.
type Principal struct {
	Name    string
	Regions []string // AnyRegion ("*") means any
}

// AllRegions reports whether p may write every region.
func (p Principal) AllRegions() bool { return slices.Contains(p.Regions, AnyRegion) }

// entry is one token: the SHA-256 of its value and who it stands for.
type entry struct {
	sum [sha256.Size]byte
	p   Principal
}

// Tokens authenticates bearer tokens against a tokens file. It is safe for concurrent use,
// Reload included.
type Tokens struct {
	path    string
	entries atomic.Pointer[[]entry]
	// compare is subtle.ConstantTimeCompare; a field so that a test can check that it is
	// the comparison used and that every entry is compared.
	compare func(a, b []byte) int
}

// Load reads the tokens file at path.
func Load(path string) (*Tokens, error) {
	t := &Tokens{path: path, compare: subtle.ConstantTimeCompare}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Reload re-reads the tokens file. On an error the tokens loaded before stay in force.
func (t *Tokens) Reload() error {
	b, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("read tokens file: %w", err)
	}
	es, err := parse(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("tokens file %s: %w", t.path, err)
	}
	t.entries.Store(&es)
	return nil
}

// Len is the number of tokens loaded.
func (t *Tokens) Len() int { return len(*t.entries.Load()) }

// Hash returns the hex SHA-256 of token, as the tokens file's sha256 key holds it.
func Hash(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

type fileEntry struct {
	Name    string   `yaml:"name"`
	SHA256  string   `yaml:"sha256"`
	Regions []string `yaml:"regions"`
}

// parse decodes and checks a tokens file, returning every problem prefixed by its YAML path.
func parse(r io.Reader) ([]entry, error) {
	var f struct {
		Tokens []fileEntry `yaml:"tokens"`
	}
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("tokens: no tokens")
		}
		return nil, fmt.Errorf("decode yaml: %w", err)
	}
	if len(f.Tokens) == 0 {
		return nil, errors.New("tokens: no tokens")
	}
	var errs []error
	names := map[string]int{}
	sums := map[[sha256.Size]byte]int{}
	out := make([]entry, 0, len(f.Tokens))
	for i, fe := range f.Tokens {
		at := fmt.Sprintf("tokens[%d]", i)
		e := entry{p: Principal{Name: strings.TrimSpace(fe.Name)}}
		if e.p.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: required", at))
		} else if j, dup := names[e.p.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q already used by tokens[%d]", at, e.p.Name, j))
		} else {
			names[e.p.Name] = i
		}
		sum, err := hex.DecodeString(strings.TrimSpace(fe.SHA256))
		switch {
		case err != nil || len(sum) != sha256.Size:
			errs = append(errs, fmt.Errorf("%s.sha256: want the 64 hex digits of the token's SHA-256 (sha256sum), not the token", at))
		default:
			copy(e.sum[:], sum)
			if j, dup := sums[e.sum]; dup {
				errs = append(errs, fmt.Errorf("%s.sha256: the same token as tokens[%d]", at, j))
			}
			sums[e.sum] = i
		}
		if len(fe.Regions) == 0 {
			errs = append(errs, fmt.Errorf(`%s.regions: required: the regions the token may write, or ["*"]`, at))
		}
		for k, r := range fe.Regions {
			if r = strings.TrimSpace(r); r == "" {
				errs = append(errs, fmt.Errorf("%s.regions[%d]: empty", at, k))
				continue
			}
			e.p.Regions = append(e.p.Regions, r)
		}
		out = append(out, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Authenticate checks an Authorization header value, "Bearer <token>", and returns the
// principal of the token. Its errors wrap ErrUnauthenticated and never contain the token.
func (t *Tokens) Authenticate(header string) (Principal, error) {
	tok, err := bearer(header)
	if err != nil {
		return Principal{}, err
	}
	sum := sha256.Sum256([]byte(tok))
	i := t.lookup(sum)
	if i < 0 {
		return Principal{}, fmt.Errorf("%w: unknown bearer token", ErrUnauthenticated)
	}
	return (*t.entries.Load())[i].p, nil
}

// lookup returns the index of the entry whose hash is sum, or -1. It compares sum with every
// entry, in constant time each, whether or not an earlier one matched.
func (t *Tokens) lookup(sum [sha256.Size]byte) int {
	found := -1
	for i, e := range *t.entries.Load() {
		if t.compare(e.sum[:], sum[:]) == 1 {
			found = i
		}
	}
	return found
}

// bearer returns the token of an Authorization header value.
func bearer(header string) (string, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", fmt.Errorf("%w: no bearer token: send the header \"authorization: Bearer <token>\"", ErrUnauthenticated)
	}
	// The scheme is case-insensitive (RFC 9110 §11.1). A header without one might be a bare
	// token: never echo any part of it.
	scheme, tok, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: authorization header is not \"Bearer <token>\"", ErrUnauthenticated)
	}
	if tok = strings.TrimSpace(tok); tok == "" {
		return "", fmt.Errorf("%w: empty bearer token", ErrUnauthenticated)
	}
	return tok, nil
}

// Allowed checks that p may write every resource in md: each ResourceMetrics' cloud.region
// must be one of p's regions. A resource without cloud.region is refused unless p may write
// any region: its points would carry no region tag, and a regional token could then add to
// fleet-wide totals outside its region. Errors wrap ErrForbidden and name the token and
// the region.
func (t *Tokens) Allowed(p Principal, md pmetric.Metrics) error {
	if p.AllRegions() {
		return nil
	}
	for _, rm := range md.ResourceMetrics().All() {
		v, ok := rm.Resource().Attributes().Get(semconv.AttrCloudRegion)
		if !ok || v.Type() != pcommon.ValueTypeStr || v.Str() == "" {
			return fmt.Errorf("%w: token %q may write only region %s, and this data has no %s",
				ErrForbidden, p.Name, strings.Join(p.Regions, ", "), semconv.AttrCloudRegion)
		}
		if region := v.Str(); !slices.Contains(p.Regions, region) {
			return fmt.Errorf("%w: token %q may not write region %q (it may write %s)",
				ErrForbidden, p.Name, region, strings.Join(p.Regions, ", "))
		}
	}
	return nil
}

type principalKey struct{}

// NewContext returns ctx carrying p, for what runs after authentication (per-token limits).
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal NewContext put in ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
