package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fleetwatt/fleetwatt/collector/internal/web"
	"github.com/fleetwatt/fleetwatt/internal/fleettest"
)

func TestMain(m *testing.M) { fleettest.Main(m) }

// TestHandler: the page and its two assets, with their types and a policy that allows
// nothing from elsewhere; every other path is 404; an unchanged file is a 304.
func TestHandler(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	tests := []struct {
		path, contentType string
		status            int
		contains          string
	}{
		{"/", "text/html; charset=utf-8", 200, `<script src="app.js" defer></script>`},
		{"/app.js", "text/javascript; charset=utf-8", 200, "async function loadAll()"},
		{"/style.css", "text/css; charset=utf-8", 200, ".headline"},
		{"/index.html", "text/plain; charset=utf-8", 404, "404 page not found"},
		{"/static/app.js", "text/plain; charset=utf-8", 404, "404 page not found"},
		{"/nope", "text/plain; charset=utf-8", 404, "404 page not found"},
	}
	for _, tt := range tests {
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != tt.contentType || !strings.Contains(string(body), tt.contains) {
			t.Errorf("GET %s = %d %s, want %d %s containing %q", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, tt.contentType, tt.contains)
		}
		if tt.status != 200 {
			continue
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self';") {
			t.Errorf("GET %s: Content-Security-Policy %q", tt.path, csp)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		again, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		again.Body.Close()
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag = %d, want 304", tt.path, again.StatusCode)
		}
	}
}

// TestNothingFromElsewhere: the page loads nothing from another origin (it must work
// offline, behind a proxy, with no CDN).
func TestNothingFromElsewhere(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(string(body), bad) {
				t.Errorf("%s contains %q: the page must load nothing from elsewhere", path, bad)
			}
		}
	}
}
