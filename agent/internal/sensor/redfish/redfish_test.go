package redfish

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testUser = "monitor"
	testPass = "s3cr:et pass" // a colon and a space, both part of the password
)

// bmc is a Redfish service over TLS serving a mockup tree from testdata/<dir>, checking
// Basic authentication as a BMC does. Overrides replace a resource's body or status.
type bmc struct {
	t   *testing.T
	dir string
	srv *httptest.Server

	mu        sync.Mutex
	overrides map[string]override
	gets      map[string]int
}

type override struct {
	status int    // 0 means 200
	body   string // served instead of the file
}

func newBMC(t *testing.T, dir string) *bmc {
	t.Helper()
	b := &bmc{t: t, dir: dir, overrides: map[string]override{}, gets: map[string]int{}}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	// The TLS tests fail handshakes on purpose; the server's log of them is noise.
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	b.srv.StartTLS()
	t.Cleanup(b.srv.Close)
	return b
}

func (b *bmc) serve(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != testUser || pass != testPass {
		w.Header().Set("WWW-Authenticate", `Basic realm="Redfish"`)
		http.Error(w, `{"error":{"code":"Base.1.8.GeneralError"}}`, http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	b.mu.Lock()
	o, overridden := b.overrides[p]
	b.gets[p]++
	b.mu.Unlock()
	if overridden && o.status != 0 {
		http.Error(w, http.StatusText(o.status), o.status)
		return
	}
	body := []byte(o.body)
	if !overridden {
		var err error
		body, err = os.ReadFile(filepath.Join("testdata", b.dir, filepath.FromSlash(p), "index.json"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (b *bmc) set(path string, o override) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.overrides[path] = o
}

func (b *bmc) getCount(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gets[path]
}

// edit overrides the resource at path with its mockup file changed by f.
func (b *bmc) edit(path string, f func(map[string]any)) {
	b.t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", b.dir, filepath.FromSlash(path), "index.json"))
	if err != nil {
		b.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		b.t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		b.t.Fatal(err)
	}
	b.set(path, override{body: string(out)})
}

func (b *bmc) options() Options {
	return Options{URL: b.srv.URL, Username: testUser, Password: testPass, HTTPClient: b.srv.Client()}
}

func wall(id, name string, w, maxW float64) sensor.Reading {
	return sensor.Reading{
		ID: id, Name: name, Source: semconv.SourceRedfish, Scope: semconv.ScopeWall, PowerW: w, MaxW: maxW,
	}
}

func dc(id, name string, w, maxW float64) sensor.Reading {
	return sensor.Reading{
		ID: id, Name: name, Source: semconv.SourceRedfish, Scope: semconv.ScopeNodeDC, PowerW: w, MaxW: maxW,
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dir  string
		edit func(b *bmc)
		want []sensor.Reading
	}{
		{
			name: "current schema: energy counter and PSU output",
			dir:  "rackmount-current",
			want: []sensor.Reading{
				{
					ID: "chassis-1U/energy", Name: "Computer System Chassis", Source: semconv.SourceRedfish,
					Scope: semconv.ScopeWall, Counter: true,
					// LifetimeReading 8412.000000125 kWh, exactly.
					EnergyUJ: 8412*3_600_000_000_000 + 450_000,
				},
				dc("chassis-1U/psu-Bay1/output", "Power Supply Bay 1", 176.2, 800),
				dc("chassis-1U/psu-Bay2/output", "Power Supply Bay 2", 171.1, 800),
			},
		},
		{
			name: "current schema without chassis numbers: PSU input is the wall reading",
			dir:  "rackmount-current",
			edit: func(b *bmc) {
				b.set("/redfish/v1/Chassis/1U/EnvironmentMetrics", override{body: `{"Name":"x","PowerWatts":{"Reading":null}}`})
			},
			want: []sensor.Reading{
				wall("chassis-1U/psu-Bay1/input", "Power Supply Bay 1", 191.5, 1000),
				dc("chassis-1U/psu-Bay1/output", "Power Supply Bay 1", 176.2, 800),
				wall("chassis-1U/psu-Bay2/input", "Power Supply Bay 2", 186, 1000),
				dc("chassis-1U/psu-Bay2/output", "Power Supply Bay 2", 171.1, 800),
			},
		},
		{
			name: "current schema: chassis power before PSU input",
			dir:  "rackmount-current",
			edit: func(b *bmc) {
				b.edit("/redfish/v1/Chassis/1U/EnvironmentMetrics", func(m map[string]any) { delete(m, "EnergykWh") })
			},
			want: []sensor.Reading{
				wall("chassis-1U/power", "Computer System Chassis", 374, 2000),
				dc("chassis-1U/psu-Bay1/output", "Power Supply Bay 1", 176.2, 800),
				dc("chassis-1U/psu-Bay2/output", "Power Supply Bay 2", 171.1, 800),
			},
		},
		{
			name: "deprecated Power only: PowerControl, no PSU input",
			dir:  "idrac9-legacy",
			want: []sensor.Reading{
				wall("chassis-System.Embedded.1/power", "System Power Control", 238, 3500),
			},
		},
		{
			name: "deprecated Power without PowerConsumedWatts: the average and its window",
			dir:  "idrac9-legacy",
			edit: func(b *bmc) {
				b.edit("/redfish/v1/Chassis/System.Embedded.1/Power", func(m map[string]any) {
					m["PowerControl"].([]any)[0].(map[string]any)["PowerConsumedWatts"] = nil
				})
			},
			want: []sensor.Reading{{
				ID: "chassis-System.Embedded.1/power", Name: "System Power Control", Source: semconv.SourceRedfish,
				Scope: semconv.ScopeWall, PowerW: 236, Averaged: time.Minute, MaxW: 3500,
			}},
		},
		{
			name: "deprecated Power without PowerControl: PSU input and output",
			dir:  "idrac9-legacy",
			edit: func(b *bmc) {
				b.edit("/redfish/v1/Chassis/System.Embedded.1/Power", func(m map[string]any) {
					delete(m, "PowerControl")
					psus := m["PowerSupplies"].([]any)
					psus[0].(map[string]any)["PowerOutputWatts"] = 110.5
					psus[1].(map[string]any)["PowerInputWatts"] = 0 // unplugged
				})
			},
			want: []sensor.Reading{
				wall("chassis-System.Embedded.1/psu-PSU.Slot.1/input", "PS1 Status", 124, 1750),
				dc("chassis-System.Embedded.1/psu-PSU.Slot.1/output", "PS1 Status", 110.5, 1400),
			},
		},
		{
			name: "both schemas: the current one only, absent PSU skipped",
			dir:  "rackmount-both",
			want: []sensor.Reading{
				wall("chassis-1U/power", "Computer System Chassis", 374, 500),
				dc("chassis-1U/psu-Bay1/output", "Power Supply Bay 1", 344.9, 400),
			},
		},
		{
			name: "both schemas, current one empty: falls back to Power",
			dir:  "rackmount-both",
			edit: func(b *bmc) {
				b.edit("/redfish/v1/Chassis/1U", func(m map[string]any) {
					delete(m, "PowerSubsystem")
					delete(m, "EnvironmentMetrics")
				})
			},
			want: []sensor.Reading{
				// The supply's capacity is known, so the bound is 800 W / 0.8.
				wall("chassis-1U/power", "System Input Power", 344, 1000),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBMC(t, tt.dir)
			if tt.edit != nil {
				tt.edit(b)
			}
			r, err := Open(t.Context(), b.options())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer r.Close()
			got, err := r.Read(t.Context())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
			if r.Name() != semconv.SourceRedfish {
				t.Errorf("Name() = %q", r.Name())
			}
			info := r.Info()
			if info.Cadence != time.Minute || !strings.HasPrefix(info.Detail, b.srv.URL+"/redfish/v1 (chassis ") ||
				info.Needs == "" {
				t.Errorf("Info() = %+v", info)
			}
		})
	}
}

// Read fetches only the leaf resources Open planned, not the whole tree again.
func TestReadFetchesOnlyPlannedResources(t *testing.T) {
	t.Parallel()
	b := newBMC(t, "rackmount-both")
	r, err := Open(t.Context(), b.options())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	before := b.getCount("/redfish/v1/Chassis")
	if _, err := r.Read(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := b.getCount("/redfish/v1/Chassis"); got != before {
		t.Errorf("Read fetched the chassis collection again")
	}
	if got := b.getCount("/redfish/v1/Chassis/1U/Power"); got != 0 {
		t.Errorf("deprecated Power fetched %d times, want 0: the current schema has the readings", got)
	}
}

// A supply whose metrics fail does not hide the other readings.
func TestReadPartialFailure(t *testing.T) {
	t.Parallel()
	b := newBMC(t, "rackmount-current")
	r, err := Open(t.Context(), b.options())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b.set("/redfish/v1/Chassis/1U/PowerSubsystem/PowerSupplies/Bay2/Metrics", override{status: http.StatusInternalServerError})
	got, err := r.Read(t.Context())
	if err == nil || !strings.Contains(err.Error(), "power supply Bay2") || !strings.Contains(err.Error(), "500") {
		t.Errorf("Read error = %v, want one naming power supply Bay2 and the 500", err)
	}
	var ids []string
	for _, rd := range got {
		ids = append(ids, rd.ID)
	}
	if diff := cmp.Diff([]string{"chassis-1U/energy", "chassis-1U/psu-Bay1/output"}, ids); diff != "" {
		t.Errorf("Read IDs (-want +got):\n%s", diff)
	}
}

func TestReadCanceled(t *testing.T) {
	t.Parallel()
	b := newBMC(t, "rackmount-current")
	r, err := Open(t.Context(), b.options())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Read: %v, want context.Canceled", err)
	}
}

func TestOpenNotFound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		dir     string
		edit    func(b *bmc)
		wantMsg string
	}{
		{
			name: "no power resource",
			dir:  "idrac9-legacy",
			edit: func(b *bmc) {
				b.edit("/redfish/v1/Chassis/System.Embedded.1", func(m map[string]any) { delete(m, "Power") })
			},
			wantMsg: "chassis System.Embedded.1: no power reading; chassis Enclosure.Internal.0-1: no power reading",
		},
		{
			name: "power resources without readings",
			dir:  "rackmount-both",
			edit: func(b *bmc) {
				b.set("/redfish/v1/Chassis/1U/EnvironmentMetrics", override{body: `{"PowerWatts":{"Reading":0}}`})
				b.set("/redfish/v1/Chassis/1U/PowerSubsystem/PowerSupplies/Bay1", override{status: http.StatusNotFound})
				b.set("/redfish/v1/Chassis/1U/PowerSubsystem/PowerSupplies", override{body: `{"Members":[]}`})
				b.set("/redfish/v1/Chassis/1U/Power", override{body: `{"PowerControl":[{"PowerConsumedWatts":null}]}`})
			},
			wantMsg: "chassis 1U: no power reading",
		},
		{
			name: "supplies with null readings and no Power",
			dir:  "rackmount-current",
			edit: func(b *bmc) {
				b.set("/redfish/v1/Chassis/1U/EnvironmentMetrics", override{status: http.StatusNotFound})
				for _, bay := range []string{"Bay1", "Bay2"} {
					b.set("/redfish/v1/Chassis/1U/PowerSubsystem/PowerSupplies/"+bay+"/Metrics",
						override{body: `{"InputPowerWatts":{"Reading":null},"OutputPowerWatts":null}`})
				}
			},
			wantMsg: "chassis 1U: no power reading",
		},
		{
			name:    "not a Redfish service",
			dir:     "rackmount-current",
			edit:    func(b *bmc) { b.set("/redfish/v1", override{status: http.StatusNotFound}) },
			wantMsg: "is not a Redfish service",
		},
		{
			name:    "no chassis collection",
			dir:     "rackmount-current",
			edit:    func(b *bmc) { b.set("/redfish/v1", override{body: `{"Id":"RootService"}`}) },
			wantMsg: "no Chassis collection",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBMC(t, tt.dir)
			tt.edit(b)
			_, err := Open(t.Context(), b.options())
			if !errors.Is(err, sensor.ErrNotFound) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Open: %v, want ErrNotFound saying %q", err, tt.wantMsg)
			}
		})
	}
}

func TestOpenUnauthorized(t *testing.T) {
	t.Parallel()
	b := newBMC(t, "rackmount-current")
	creds := writeCredentials(t, testUser+":wrong\n", 0o600)
	opts := b.options()
	opts.Username, opts.Password, opts.CredentialsFile = "", "", creds
	_, err := Open(t.Context(), opts)
	if !errors.Is(err, errUnauthorized) || !strings.Contains(err.Error(), creds) {
		t.Errorf("Open: %v, want a 401 error naming %s", err, creds)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("Open: %v: the error shows the password", err)
	}
}

func TestOpenCredentialsFile(t *testing.T) {
	t.Parallel()
	b := newBMC(t, "rackmount-current")
	opts := b.options()
	opts.Username, opts.Password = "", ""
	opts.CredentialsFile = writeCredentials(t, "# BMC of rack 12\n"+testUser+":"+testPass+"\r\n", 0o640)
	r, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	r.Close()
}

// The real client: the BMC's certificate verifies only against the CA given in CAFile.
func TestOpenTLS(t *testing.T) {
	t.Parallel()
	b := newBMC(t, "rackmount-current")
	// httptest servers all share one certificate, so the wrong CA is a fresh one.
	wrongCA := selfSignedPEM(t)
	rightCA := filepath.Join(t.TempDir(), "bmc-ca.pem")
	if err := os.WriteFile(rightCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    Options
		wantMsg string // "" for success
	}{
		{"system roots", Options{}, "--ca-file"},
		{"wrong CA", Options{CAFile: wrongCA}, "--ca-file"},
		{"right CA", Options{CAFile: rightCA}, ""},
		{"insecure", Options{Insecure: true}, ""},
		{"CA file without PEM", Options{CAFile: writeCredentials(t, "not a certificate", 0o644)}, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := tt.opts
			opts.URL, opts.Username, opts.Password = b.srv.URL, testUser, testPass
			r, err := Open(t.Context(), opts)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				r.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Open: %v, want an error saying %q", err, tt.wantMsg)
			}
		})
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Open(t.Context(), Options{URL: "https://" + addr, Username: testUser, Password: testPass})
	if err == nil || !strings.Contains(err.Error(), "BMC unreachable") {
		t.Errorf("Open: %v, want an unreachable error", err)
	}
}

func TestOpenTimeout(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	_, err := Open(t.Context(), Options{URL: srv.URL, HTTPClient: srv.Client(), Timeout: 50 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Errorf("Open: %v, want a timeout", err)
	}
}

func TestOpenBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"", "http://10.0.0.5", "https://", "https://root:calvin@10.0.0.5", "https://10.0.0.5/api?x=1", "10.0.0.5",
	} {
		if _, err := Open(t.Context(), Options{URL: u}); err == nil || errors.Is(err, sensor.ErrNotFound) {
			t.Errorf("Open(%q): %v, want a configuration error", u, err)
		}
	}
	if _, err := Open(t.Context(), Options{URL: "https://root:calvin@10.0.0.5"}); err == nil || strings.Contains(err.Error(), "calvin") {
		t.Errorf("Open: %v: the error shows the password", err)
	}
}

// A link that leaves the BMC is not followed: the credentials would go with it.
func TestLinkToOtherHost(t *testing.T) {
	t.Parallel()
	b := newBMC(t, "rackmount-current")
	b.set("/redfish/v1/Chassis", override{body: `{"Members":[{"@odata.id":"https://evil.example/redfish/v1/Chassis/1U"}]}`})
	_, err := Open(t.Context(), b.options())
	if err == nil || !strings.Contains(err.Error(), "leaves the BMC") {
		t.Errorf("Open: %v, want the link refused", err)
	}
}

func TestKWhToUJ(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want uint64
		err  bool
	}{
		{"0", 0, false},
		{"1", 3_600_000_000_000, false}, // 1 kWh = 3.6 MJ = 3.6e12 µJ
		{"325675", 325675 * 3_600_000_000_000, false},
		{"0.000001", 3_600_000, false},                              // 1 mWh = 3.6 J
		{"1325.675125", 1325675125 * 3_600_000, false},              // 10 significant digits, exact
		{"8412.000000125", 8412*3_600_000_000_000 + 450_000, false}, // 0.125 µWh, exact
		{"0.1", 360_000_000_000, false},                             // not exact in float64
		{"1e3", 3_600_000_000_000_000, false},
		{"1.5E-3", 5_400_000_000, false},
		{"0.0000000000001", 0, false}, // 0.36 µJ rounds to 0
		{"0.0000000000002", 1, false}, // 0.72 µJ rounds to 1
		{"5124095.577", 0, true},      // above 2⁶⁴ µJ
		{"5124095.5", 18446743800000000000, false},
		{"-1", 0, true},
		{"1e999999999", 0, true},
		{"abc", 0, true},
		{"1" + strings.Repeat("0", 50), 0, true},
	}
	for _, tt := range tests {
		got, err := kWhToUJ(json.Number(tt.in))
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("kWhToUJ(%s) = %d, %v; want %d, error %t", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestReadCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		content   string
		mode      os.FileMode
		user, pwd string
		wantMsg   string
	}{
		{"one line", "root:calvin\n", 0o600, "root", "calvin", ""},
		{"colon in password", "root:a:b:c", 0o600, "root", "a:b:c", ""},
		{"comments and CRLF", "# iDRAC\r\n\r\nroot:calvin \r\n", 0o640, "root", "calvin ", ""},
		{"empty password", "root:\n", 0o600, "root", "", ""},
		{"world-readable", "root:calvin\n", 0o644, "", "", "chmod o-rwx"},
		{"no colon", "root\n", 0o600, "", "", "user:password"},
		{"no user", ":calvin\n", 0o600, "", "", "user:password"},
		{"two lines", "root:calvin\nadmin:admin\n", 0o600, "", "", "more than one"},
		{"empty", "", 0o600, "", "", "no credentials line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeCredentials(t, tt.content, tt.mode)
			user, pwd, err := ReadCredentials(path)
			if tt.wantMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("ReadCredentials: %v, want an error saying %q", err, tt.wantMsg)
				}
				return
			}
			if err != nil || user != tt.user || pwd != tt.pwd {
				t.Errorf("ReadCredentials = %q, %q, %v; want %q, %q", user, pwd, err, tt.user, tt.pwd)
			}
		})
	}
	if _, _, err := ReadCredentials(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadCredentials(missing): %v, want fs.ErrNotExist", err)
	}
}

func writeCredentials(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bmc-"+strconv.Itoa(int(mode)))
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// FuzzDecode feeds every decoder the mockups' resources and mutations of them: none may
// panic, and a decoded energy reading converts without panicking either.
func FuzzDecode(f *testing.F) {
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".json" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f.Add(b)
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"EnergykWh":{"Reading":1e400,"LifetimeReading":-0.5}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		read := func() *strings.Reader { return strings.NewReader(string(in)) }
		_, _ = parseServiceRoot(read())
		_, _ = parseCollection(read())
		_, _ = parseChassis(read())
		_, _ = parsePowerSubsystem(read())
		_, _ = parsePowerSupply(read())
		_, _ = parsePowerSupplyMetrics(read())
		_, _ = parsePower(read())
		if pw, err := parsePower(read()); err == nil {
			legacyWall(pw)
			hasLegacyOutput(pw)
		}
		if env, err := parseEnvironmentMetrics(read()); err == nil && env.EnergykWh != nil {
			_, _ = energyReading(env.EnergykWh)
		}
		_, _, _ = parseCredentials(read())
	})
}

// selfSignedPEM writes a self-signed CA certificate that signed nothing the tests serve.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "other CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
