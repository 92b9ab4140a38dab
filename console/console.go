// Package console serves the web console at /console: the prebuilt assets
// in dist/ (the TypeScript console, the TypeScript client and Chart.js,
// bundled by esbuild from console/web; committed, so the server needs no
// Node at run time), embedded in the binary, under a strict
// Content-Security-Policy: scripts, styles and connections to this origin
// only, no inline code, nothing from a CDN.
//
// To rebuild dist/ after changing console/web or clients/typescript:
//
//	go generate ./console
package console

//go:generate sh -c "cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build"

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed dist
var dist embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// CSP is the Content-Security-Policy of every console response: only this
// origin's scripts, styles and API; no inline script or style, no eval, no
// plugins, no framing, no form posts, no base-URI changes.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"

// Assets returns the embedded build (index.html, app.js, style.css).
func Assets() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed directive guarantees dist exists
	}
	return sub
}

// Handler serves the console: GET /console redirects to /console/,
// /console/ is index.html, /console/NAME an asset; anything else under
// /console/ is 404. Every answer carries the CSP and no-sniff headers.
func Handler() http.Handler {
	files := http.FileServerFS(Assets())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok || strings.Contains(name, "/") || (name != "" && path.Ext(name) == "") {
			http.NotFound(w, r)
			return
		}
		// Revalidate every time: the assets change with the binary.
		h.Set("Cache-Control", "no-cache")
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		files.ServeHTTP(w, r2)
	})
}
