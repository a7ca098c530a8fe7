package httpapi

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
)

func init() {
	// The console's files are text the spec describes as strings; the
	// validator needs to be told it may read them as such.
	for _, ct := range []string{"text/html", "text/javascript", "text/css", "image/svg+xml"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
}

// TestConsoleFiles checks every file of the console is served with its
// type and the console's security headers, with no token even when auth
// is on. It calls the handler directly: the spec names the page by its
// route, /ui, and /ui/ is the same route (TestRoleMatrix checks every
// file against the spec).
func TestConsoleFiles(t *testing.T) {
	api := New(Options{Tokens: testTokens(t)})
	get := func(path string) response {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	}
	tests := []struct {
		path, ctype, contains string
	}{
		{"/ui/", "text/html; charset=utf-8", "<title>Breakwater console</title>"},
		{"/ui", "text/html; charset=utf-8", "<title>Breakwater console</title>"},
		{"/ui/console.js", "text/javascript; charset=utf-8", "'use strict';"},
		{"/ui/console.css", "text/css; charset=utf-8", "prefers-color-scheme: dark"},
		{"/ui/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, tt := range tests {
		res := get(tt.path)
		if res.Status != http.StatusOK {
			t.Errorf("GET %s = %d, want 200 (body %.200s)", tt.path, res.Status, res.Body)
			continue
		}
		if got := res.Header.Get("Content-Type"); got != tt.ctype {
			t.Errorf("GET %s: Content-Type = %q, want %q", tt.path, got, tt.ctype)
		}
		if got := res.Header.Get("Content-Security-Policy"); got != consoleCSP {
			t.Errorf("GET %s: Content-Security-Policy = %q, want %q", tt.path, got, consoleCSP)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options = %q, want nosniff", tt.path, got)
		}
		if !strings.Contains(string(res.Body), tt.contains) {
			t.Errorf("GET %s: body does not contain %q", tt.path, tt.contains)
		}
	}
	if res := get("/ui/nope.js"); res.Status != http.StatusNotFound {
		t.Errorf("GET /ui/nope.js = %d, want 404", res.Status)
	}
}

// TestConsoleCSP checks the policy forbids what it must, and that the page
// needs nothing it forbids: no inline script or style, no inline event
// handlers, and every file it names is one the console serves.
func TestConsoleCSP(t *testing.T) {
	for _, directive := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(consoleCSP, directive) {
			t.Errorf("consoleCSP = %q, want it to contain %q", consoleCSP, directive)
		}
	}
	if strings.Contains(consoleCSP, "unsafe-") {
		t.Errorf("consoleCSP = %q, want no unsafe- source", consoleCSP)
	}
	page, err := fs.ReadFile(consoleFiles, "ui/index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, tag := range regexp.MustCompile(`<script[^>]*>\s*[^<\s]?`).FindAllString(html, -1) {
		if !strings.Contains(tag, ` src="/ui/`) || !strings.HasSuffix(tag, ">") {
			t.Errorf("index.html has %q, want every script loaded from /ui/ and none inline", tag)
		}
	}
	for _, re := range []string{`<style`, `\sstyle=`, `\son[a-z]+=`, `javascript:`} {
		if m := regexp.MustCompile(re).FindString(html); m != "" {
			t.Errorf("index.html has %q, which the Content-Security-Policy forbids", m)
		}
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="(/ui/[^"]*)"`).FindAllStringSubmatch(html, -1) {
		if _, err := fs.Stat(consoleFiles, "ui/"+strings.TrimPrefix(m[1], "/ui/")); err != nil {
			t.Errorf("index.html names %s, which the console does not have", m[1])
		}
	}
	js, err := fs.ReadFile(consoleFiles, "ui/console.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"innerHTML", "eval(", "new Function", "setAttribute('style'", "new EventSource", "localStorage", "document.cookie"} {
		if strings.Contains(string(js), bad) {
			t.Errorf("console.js uses %s: want DOM nodes and textContent, the token in sessionStorage and a header only", bad)
		}
	}
}
