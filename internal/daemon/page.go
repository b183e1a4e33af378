package daemon

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
)

// The status page: one HTML document with its style and script inline, no
// other asset, served on metrics_listen at /. Its script reads
// /status.json every few seconds.
var (
	//go:embed page/status.html
	pageHTML string
	//go:embed page/status.css
	pageCSS string
	//go:embed page/status.js
	pageJS string
)

// statusPage is the rendered page and the Content-Security-Policy that
// lets only its own inline style and script run, and lets the script
// fetch only from the page's origin.
type statusPage struct {
	html []byte
	csp  string
}

func newStatusPage() statusPage {
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	html := strings.NewReplacer("{{CSS}}", pageCSS, "{{JS}}", pageJS).Replace(pageHTML)
	return statusPage{
		html: []byte(html),
		csp: "default-src 'none'; connect-src 'self'; img-src 'self'; style-src " + hash(pageCSS) +
			"; script-src " + hash(pageJS) + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	}
}

// ServeHTTP serves the page at / and nothing else.
func (p statusPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.Write(p.html)
}

// serveStatusJSON serves the status `auditrelay status --json` prints,
// without the sources' cursors: the page shows what /metrics shows, in
// words, and nothing of the events or of the provider's page positions.
func (d *Daemon) serveStatusJSON(w http.ResponseWriter, r *http.Request) {
	st, err := d.status()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	for i := range st.Store.Sources {
		st.Store.Sources[i].Cursor = nil
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(st)
}
