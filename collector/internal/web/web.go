// Package web serves the collector's built-in page at /: a fleet overview, ARM against x86
// per region with confidence intervals, power curves, cost and carbon, data freshness per
// host with a drill-down, and the capacity plan as a form. The page is three static files
// embedded in the binary (no build step, nothing fetched from elsewhere); it reads the same
// /api/v1/... JSON the CLI prints and inlines the SVG charts the collector renders, so it
// works offline and behind any proxy that passes the API. docs/web.md describes it.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"time"
)

//go:embed static/index.html static/app.js static/style.css
var static embed.FS

// contentSecurityPolicy allows the page nothing from elsewhere: scripts, styles, images and
// API calls come from the collector itself. Inline style attributes stay allowed because the
// inlined SVG charts may carry them; inline scripts do not, so an SVG can never run one.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// assets maps a path to its embedded file and content type.
var assets = map[string]struct{ file, contentType string }{
	"/":          {"static/index.html", "text/html; charset=utf-8"},
	"/app.js":    {"static/app.js", "text/javascript; charset=utf-8"},
	"/style.css": {"static/style.css", "text/css; charset=utf-8"},
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the page: GET / is index.html, /app.js and /style.css its assets; any
// other path is 404.
func Handler() http.Handler {
	files := map[string]asset{}
	for path, a := range assets {
		b, err := static.ReadFile(a.file)
		if err != nil {
			continue // cannot happen: the embed directive lists the same files
		}
		sum := sha256.Sum256(b)
		files[path] = asset{body: b, contentType: a.contentType, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Revalidate every time (a 304 by ETag costs nothing), so an upgraded collector never
		// runs last version's script against this version's API.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
