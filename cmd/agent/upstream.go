package main

import (
	"net/http"
)

// maxIdlePerUpstream is how many idle connections the agent keeps to each
// upstream. net/http's default, 2, would make a caller with more requests
// than that in flight open a new connection for most of them.
const maxIdlePerUpstream = 256

// newUpstreamTransport returns the transport the proxy sends its requests
// on: http.DefaultTransport's settings (timeouts, proxies from the
// environment, HTTP/2 over TLS), keep-alive with up to maxIdlePerUpstream
// idle connections per upstream, and no compression of its own: the
// caller's Accept-Encoding reaches the upstream as sent, and the
// response's body reaches the caller as the upstream encoded it.
func newUpstreamTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0 // no limit but the one per upstream
	t.MaxIdleConnsPerHost = maxIdlePerUpstream
	t.DisableCompression = true
	return t
}
