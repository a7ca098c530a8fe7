package main

import (
	"net/http"
	"sync"
	"time"
)

// headerFlushDelay is how long the headers of a proxied response wait for
// the first bytes of its body, so that both leave the agent in one write:
// headers whose body has not begun by then are sent alone.
const headerFlushDelay = time.Millisecond

// streamWriter is the http.ResponseWriter the proxy writes a response
// to. Each write of the body is flushed at once, so that a response
// reaches the caller as the upstream writes it; the headers go out with
// the body's first bytes, or alone once headerFlushDelay has passed
// without any. A short answer thus leaves in one write, with no timer
// fired and no goroutine started for it (httputil.ReverseProxy's own
// immediate flushing, FlushInterval -1, starts one per response and
// sends the headers apart). See docs/performance.md, "The agent's proxy".
//
// Responses that httputil.ReverseProxy always flushes at once (server-sent
// events, a body of unknown length) are flushed by it through Flush, as
// before. finish must be called when the proxy is done with the response.
type streamWriter struct {
	w http.ResponseWriter
	f flushErrorer // w's own flush, or nil when w cannot flush

	mu      sync.Mutex
	timer   *time.Timer
	pending bool // headers written and not yet flushed
	done    bool // the handler is over: w must not be used
}

// flushErrorer is what net/http's own ResponseWriter implements to flush.
type flushErrorer interface{ FlushError() error }

// newStreamWriter returns a streamWriter over w.
func newStreamWriter(w http.ResponseWriter) *streamWriter {
	s := &streamWriter{w: w}
	s.f, _ = w.(flushErrorer)
	return s
}

// flush sends what was written so far. The caller holds s.mu.
func (s *streamWriter) flush() error {
	s.pending = false
	if s.f == nil {
		return http.NewResponseController(s.w).Flush()
	}
	return s.f.FlushError()
}

func (s *streamWriter) Header() http.Header { return s.w.Header() }

// Unwrap gives http.ResponseController the writer underneath, for
// Hijack (protocol upgrades) and deadlines.
func (s *streamWriter) Unwrap() http.ResponseWriter { return s.w }

func (s *streamWriter) WriteHeader(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w.WriteHeader(code)
	if code < 200 || s.timer != nil {
		return // informational headers are sent at once by net/http
	}
	s.pending = true
	s.timer = time.AfterFunc(headerFlushDelay, s.flushHeaders)
}

func (s *streamWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.w.Write(p)
	if err != nil {
		s.pending = false // the connection is gone: nothing to flush
		return n, err
	}
	return n, s.flush()
}

// FlushError flushes what was written; http.ResponseController uses it.
func (s *streamWriter) FlushError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flush()
}

// Flush is FlushError for callers that assert http.Flusher.
func (s *streamWriter) Flush() { s.FlushError() }

func (s *streamWriter) flushHeaders() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending && !s.done {
		s.flush()
	}
}

// finish ends the writer's use of the response: a header flush still
// due is not made, since the handler's return sends what is left.
func (s *streamWriter) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	if s.timer != nil {
		s.timer.Stop()
	}
}
