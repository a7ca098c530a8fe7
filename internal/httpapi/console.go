package httpapi

import (
	"bytes"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"

	"github.com/go-chi/chi/v5"
)

// consoleFiles are the operator console: plain HTML, CSS and JavaScript,
// served as they are, with no build step (docs/console.md).
//
//go:embed ui
var consoleFiles embed.FS

// consoleCSP is the Content-Security-Policy of every console response:
// scripts, styles and API calls from this origin only, nothing inline,
// no frames, no forms posted anywhere, no plugins.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// consoleModTime is when this binary started: the files cannot change
// while it runs, so a browser may revalidate against it.
var consoleModTime = time.Now()

// consoleRoutes serves the console under /ui: index.html at /ui and /ui/,
// and each other file at its own path, so that the router (and so the
// spec) lists every file. Loading the console needs no token; every API
// call it makes carries the one the operator enters.
func consoleRoutes(r chi.Router) {
	files, err := fs.Sub(consoleFiles, "ui")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	r.Route("/ui", func(r chi.Router) {
		r.Get("/", serveConsoleFile(files, "index.html"))
		fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && p != "index.html" {
				r.Get("/"+p, serveConsoleFile(files, p))
			}
			return err
		})
	})
}

// serveConsoleFile serves one embedded file with the console's security
// headers.
func serveConsoleFile(files fs.FS, name string) http.HandlerFunc {
	body, err := fs.ReadFile(files, name)
	if err != nil {
		panic(err) // listed by WalkDir a moment ago
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, name, consoleModTime, bytes.NewReader(body))
	}
}
