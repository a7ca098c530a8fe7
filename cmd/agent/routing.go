package main

import (
	"net/http"
	"strings"
)

// routeHandler returns the proxy handler of the route that r's path is
// under, or nil when it is under none: it routes exactly as the agent's
// chi router does for the patterns "/NAME" and "/NAME/*" (on the escaped
// path when the request has one, for the methods chi knows), without the
// router's per-request context and path values, which the proxy does not
// read. Other requests go through the router. See docs/performance.md,
// "The agent's proxy".
func routeHandler(routes map[string]http.Handler, r *http.Request) http.Handler {
	if len(routes) == 0 || !routerMethod(r.Method) {
		return nil
	}
	p := r.URL.RawPath
	if p == "" {
		p = r.URL.Path
	}
	if len(p) < 2 || p[0] != '/' {
		return nil
	}
	name, _, _ := strings.Cut(p[1:], "/")
	return routes[name]
}

// routerMethod reports whether chi routes method by its patterns; it
// answers any other method 405 whatever the path.
func routerMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodTrace, http.MethodConnect, "QUERY":
		return true
	}
	return false
}
