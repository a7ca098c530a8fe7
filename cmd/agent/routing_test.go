package main

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// routeHandler sends a request to a route's proxy exactly when the
// agent's router would: same path (escaped when the request has an
// escaping of its own), same methods.
func TestRouteHandlerRoutesAsTheRouter(t *testing.T) {
	names := []string{"up", "a.b-c", "Pay"}
	mux := chi.NewRouter()
	nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mux.Get("/healthz", nop)
	mux.Post("/v1/breakers/{name}/acquire", nop)
	routes := map[string]http.Handler{}
	for _, n := range names {
		mux.Handle("/"+n, nop)
		mux.Handle("/"+n+"/*", nop)
		routes[n] = namedHandler(n)
	}
	targets := []string{
		"/up", "/up/", "/up/x", "/up/x/y?q=1", "/up//x", "/up%2Fx", "/%75p/x", "/UP/x", "/upx",
		"/up;x", "/up/%2e%2e/x", "/a.b-c/z", "/a.b-c", "/Pay/1", "/pay/1", "/", "//up/x",
		"/healthz", "/v1/breakers/up/acquire", "/nosuch/x", "http://other.example/up/x",
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY", "PURGE", "get"}
	for _, m := range methods {
		for _, target := range targets {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(m + " " + target + " HTTP/1.1\r\nHost: agent\r\n\r\n")))
			if err != nil {
				t.Fatalf("ReadRequest(%s %s): %v", m, target, err)
			}
			path := r.URL.RawPath
			if path == "" {
				path = r.URL.Path
			}
			pattern := ""
			if routerMethod(m) {
				pattern = mux.Find(chi.NewRouteContext(), m, path)
			}
			want := ""
			if name, ok := strings.CutSuffix(strings.TrimPrefix(pattern, "/"), "/*"); ok || routes[name] != nil {
				want = name
			}
			got := ""
			if h := routeHandler(routes, r); h != nil {
				got = string(h.(namedHandler))
			}
			if got != want {
				t.Errorf("routeHandler(%s %s) = route %q, want %q (router pattern %q)", m, target, got, want, pattern)
			}
		}
	}
}

// namedHandler is a route's handler that says which route it is.
type namedHandler string

func (namedHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}
