package main

import (
	"bytes"
	"io"
	"net/http"
	"time"
)

// maxBufferedBody is the largest request body the agent holds in memory,
// so that an idempotent request with a body can be sent again. A larger
// body is streamed to the upstream and its request gets one attempt.
const maxBufferedBody = 64 << 10

// prepareBody makes r's body ready for the proxy: every read of it must
// make progress within the route timeout, and a small body of an
// idempotent request is read ahead, so that the request can be retried.
// It answers the caller itself, and returns false, when the body broke
// off or stalled while read ahead: nothing went to the upstream, and
// nothing is counted against it.
func (a *agent) prepareBody(w http.ResponseWriter, r *http.Request, cfg config) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	body := &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: cfg.Timeout}
	r.Body = body
	if cfg.Attempts < 2 || !idempotent(r) || r.ContentLength > maxBufferedBody || r.ContentLength == 0 {
		return true
	}
	buf, err := io.ReadAll(io.LimitReader(body, maxBufferedBody+1))
	if err != nil {
		problem(w, http.StatusRequestTimeout, "", "the request's body did not arrive in time or broke off: "+err.Error())
		return false
	}
	if len(buf) > maxBufferedBody {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), body), body}
		return true
	}
	body.Close()
	r.ContentLength = int64(len(buf))
	r.TransferEncoding = nil
	r.Body = io.NopCloser(bytes.NewReader(buf))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	if len(buf) == 0 {
		r.Body, r.GetBody = http.NoBody, nil
	}
	return true
}

// idempotent reports whether the proxy may send r more than once, by the
// rule of the SDK's Transport: a method safe to repeat, or an idempotency
// key.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Header.Get("Idempotency-Key") != "" || r.Header.Get("X-Idempotency-Key") != ""
}

// idleBody is a request body each read of which must return within idle:
// a caller whose upload stalls gets a read error, not a goroutine held
// forever (net/http waits for a read under way before it gives up on an
// attempt).
type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.rc.SetReadDeadline(time.Time{})
	}
	// After a failed read the deadline stays passed, so that the server
	// gives up on the rest of the body at once and closes the connection.
	return n, err
}
