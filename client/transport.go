package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// maxDrain is how much of a retried response's body is read before it is
// closed, so that its connection can be reused; a longer body costs the
// connection instead.
const maxDrain = 64 << 10

// Transport is an http.RoundTripper that guards the requests to one
// dependency with its policies, in the order Compose recommends,
// outermost first:
//
//	Retry → Bulkhead → Limiter → Breaker → Timeout → Base
//
// Each attempt is admitted, limited, counted and timed on its own. When
// the breaker is open, the limiter has no token or the bulkhead no slot,
// the attempt fails with an error matching ErrOpen, ErrRateLimited or
// ErrBulkheadFull without touching the network; when that is the last
// attempt, RoundTrip returns that error (wrapped in a *url.Error by
// http.Client, so test it with errors.Is).
//
// What counts against the breaker is IsFailure's call: by default a
// transport error or a 5xx response is a failure and any other response,
// 4xx included, a success, since a 4xx is the dependency working and
// refusing a bad request. The caller's own cancellation is never a
// failure of the dependency (see Breaker.Allow). The outcome is reported
// when the response's headers arrive, and the breaker measures the time
// to them: reading the body is the caller's business, and a body that
// fails half-way is not counted.
//
// Retries. A request is attempted again only if it is safe to send twice
// (see Idempotent) and its body can be sent again: it has none, or
// GetBody is set, as http.NewRequest sets it for in-memory bodies. Other
// requests get exactly one attempt. An attempt is retried, subject to
// Retry's rules (attempts, backoff, RetryIf, the caller's context), when
// it failed (IsFailure), when the answer was 429 Too Many Requests, or
// when a policy refused it. A 429 or 503 with a Retry-After header sets
// the least wait before the next attempt; when that is longer than
// Retry.MaxDelay, Retry gives up at once. The body of a response that
// is retried is read (up to 64 KiB) and closed before the wait. When
// Retry gives up on a response, RoundTrip returns that response, unread,
// with a nil error: the caller sees the dependency's last answer, as
// without retries. Retry.RetryIf and OnRetry see such a response as a
// *ResponseError.
//
// Timeout bounds each attempt until its response headers arrive, not the
// reading of the body, so a long download or a streaming response is not
// cut short; bound the whole exchange with the request's context. An
// attempt that times out fails with an error matching ErrTimeout and
// context.DeadlineExceeded, which the breaker counts.
//
// The zero value sends every request once through http.DefaultTransport,
// as if no Transport were there. A Transport holds no state of its own
// (its Breaker, Limiter and Bulkhead do), so it is safe for concurrent
// use; its fields must not change once it is in use.
type Transport struct {
	// Base sends each attempt. Nil means http.DefaultTransport.
	Base http.RoundTripper

	// Breaker, if set, admits each attempt and counts its outcome. Nil
	// means none.
	Breaker *Breaker

	// Limiter, if set, takes a token for each attempt, without waiting:
	// a refusal fails the attempt, and Retry may try again after the
	// refusal's Retry-After. Nil means none.
	Limiter *Limiter

	// Bulkhead, if set, bounds the attempts in flight: a slot is taken
	// before each attempt and given back when its response's body has
	// been read to the end or closed, or at once when the attempt fails.
	// Nil means none.
	Bulkhead *Bulkhead

	// Retry, if set, retries failed attempts of requests that are safe
	// to repeat, as the type's doc describes. Its OnRetry, Sleep and
	// Rand are used as they are. Nil means one attempt per request.
	Retry *Retry

	// Timeout bounds each attempt until its response headers arrive.
	// Zero or less means no bound but the request's context.
	Timeout time.Duration

	// IsFailure reports whether an attempt's outcome counts against the
	// breaker and is worth a retry: it gets the response, or the error
	// when there is none (never both). It is not asked about refusals of
	// the policies, which are never failures. Nil means an error or a
	// status of 500 or more.
	IsFailure func(resp *http.Response, err error) bool

	// Idempotent reports whether a request may be sent more than once.
	// Nil means: its method is GET, HEAD, OPTIONS, TRACE, PUT or DELETE,
	// or it carries an Idempotency-Key or X-Idempotency-Key header. A
	// request whose body cannot be sent again is never retried, whatever
	// Idempotent says.
	Idempotent func(req *http.Request) bool
}

// Client returns an *http.Client that sends its requests through t, with
// no Timeout of its own (see Transport.Timeout) and the default redirect
// policy: each request of a redirect chain is an attempt of its own.
func (t *Transport) Client() *http.Client { return &http.Client{Transport: t} }

// ResponseError is an HTTP response that a Transport took as a failed
// attempt (or a 429), as Retry.RetryIf and Retry.OnRetry and a
// Breaker's Config.IsFailure see it. RoundTrip itself never returns one:
// when it gives up, the caller gets the response.
type ResponseError struct {
	// Response is the response. Its body belongs to the Transport, which
	// drains it or returns it to the caller: do not read it.
	Response *http.Response
}

// Error returns the request and the status, as in
// "GET http://inventory/items/42: 503 Service Unavailable". The URL's
// password, if any, is masked.
func (e *ResponseError) Error() string {
	r := e.Response
	msg := r.Status
	if msg == "" {
		msg = strconv.Itoa(r.StatusCode)
	}
	if req := r.Request; req != nil && req.URL != nil {
		msg = req.Method + " " + req.URL.Redacted() + ": " + msg
	}
	return "breakwater: " + msg
}

// RoundTrip sends req as the type's doc describes. It returns the
// response of the last attempt, or the error of the last attempt when it
// got no response.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	rt := &roundTrip{t: t, req: req}
	if t.Retry == nil || !t.replayable(req) {
		resp, err := rt.attempt(ctx)
		return rt.finish(resp, err)
	}
	r := *t.Retry
	onRetry := r.OnRetry
	r.OnRetry = func(attempt int, err error, wait time.Duration) {
		rt.drain() // before the wait, so that the connection is free
		if onRetry != nil {
			onRetry(attempt, err, wait)
		}
	}
	var resp *http.Response
	err := r.Execute(ctx, func(ctx context.Context) error {
		var err error
		resp, err = rt.attempt(ctx)
		return err
	})
	return rt.finish(resp, err)
}

// replayable reports whether req may be sent more than once.
func (t *Transport) replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	if t.Idempotent != nil {
		return t.Idempotent(req)
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

func (t *Transport) isFailure(resp *http.Response, err error) bool {
	if t.IsFailure != nil {
		return t.IsFailure(resp, err)
	}
	return err != nil || resp.StatusCode >= 500
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// roundTrip is one call of RoundTrip: its attempts, and the response of
// the last one while it may still be retried.
type roundTrip struct {
	t        *Transport
	req      *http.Request
	bodySent bool           // req.Body was handed to Base
	sent     bool           // the current attempt was handed to Base
	last     *http.Response // a response whose attempt failed, not yet drained
}

// attempt makes one attempt. It returns a response with a nil error when
// the response is final, a response with a *ResponseError when the
// attempt failed or was a 429 (and may be retried), or an error alone.
func (rt *roundTrip) attempt(ctx context.Context) (*http.Response, error) {
	rt.drain()
	areq, err := rt.attemptRequest(ctx)
	if err != nil {
		return nil, Permanent(err)
	}
	resp, err := rt.admitted(ctx, areq)
	if areq.Body != nil && areq.Body != rt.req.Body && !rt.sent {
		areq.Body.Close() // a body from GetBody that never went out
	}
	return resp, err
}

// admitted sends areq if the policies admit it.
func (rt *roundTrip) admitted(ctx context.Context, areq *http.Request) (*http.Response, error) {
	t := rt.t
	rt.sent = false
	var release func()
	if bh := t.Bulkhead; bh != nil {
		if err := bh.Acquire(ctx); err != nil {
			return nil, err
		}
		release = bh.Release
	}
	if t.Limiter != nil {
		if err := t.Limiter.Allow(ctx); err != nil {
			releaseNow(release)
			return nil, policyError(err)
		}
	}
	done := noopDone
	if t.Breaker != nil {
		var err error
		// The caller's context, so that the breaker tells the caller's
		// cancellation from a failure.
		if done, err = t.Breaker.Allow(ctx); err != nil {
			releaseNow(release)
			return nil, policyError(err)
		}
	}

	var (
		timer  *time.Timer
		cancel context.CancelCauseFunc
	)
	if t.Timeout > 0 {
		var actx context.Context
		actx, cancel = context.WithCancelCause(ctx)
		timer = time.AfterFunc(t.Timeout, func() { cancel(errTimeoutCause) })
		areq = areq.WithContext(actx)
	}
	rt.sent = true
	if areq.Body == rt.req.Body {
		rt.bodySent = true
	}
	resp, err := t.base().RoundTrip(areq)
	if timer != nil && !timer.Stop() && context.Cause(areq.Context()) == errTimeoutCause {
		// The deadline passed before the headers were in (or just as
		// they arrived: the body is cut off either way).
		if resp != nil {
			resp.Body.Close()
			resp = nil
		}
		err = &attemptTimeoutError{d: t.Timeout}
	}
	if err != nil || resp == nil {
		if err == nil {
			err = errors.New("breakwater: transport returned no response and no error")
		}
		if t.isFailure(nil, err) {
			done(err)
		} else {
			done(nil)
		}
		if cancel != nil {
			cancel(context.Canceled)
		}
		releaseNow(release)
		return nil, err
	}
	if cancel != nil || release != nil {
		resp.Body = newGuardedBody(resp.Body, func() {
			if cancel != nil {
				cancel(context.Canceled)
			}
			releaseNow(release)
		})
	}
	if t.isFailure(resp, nil) {
		done(&ResponseError{Response: resp})
	} else {
		done(nil)
		if resp.StatusCode != http.StatusTooManyRequests {
			return resp, nil
		}
	}
	rt.last = resp
	var rerr error = &ResponseError{Response: resp}
	if after, ok := retryAfterHeader(resp); ok {
		rerr = &RetryAfterError{Err: rerr, After: after}
	}
	return resp, rerr
}

// attemptRequest returns the request to send for one attempt: req itself
// while its body has not gone out, a shallow copy with a new body from
// GetBody after that.
func (rt *roundTrip) attemptRequest(ctx context.Context) (*http.Request, error) {
	req := rt.req
	if !rt.bodySent || req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	r := req.WithContext(ctx)
	r.Body = body
	return r, nil
}

// drain reads and closes the body of the last failed response, if any.
func (rt *roundTrip) drain() {
	if rt.last == nil {
		return
	}
	io.CopyN(io.Discard, rt.last.Body, maxDrain)
	rt.last.Body.Close()
	rt.last = nil
}

// finish returns the result of RoundTrip from the last attempt's.
func (rt *roundTrip) finish(resp *http.Response, err error) (*http.Response, error) {
	if !rt.bodySent && rt.req.Body != nil {
		rt.req.Body.Close() // a RoundTripper closes the body, sent or not
	}
	if rt.last != nil && rt.last == resp {
		// Retry gave up on a failed response: the caller gets it.
		rt.last = nil
		return resp, nil
	}
	rt.drain()
	if err == nil && resp == nil {
		err = errors.New("breakwater: no attempt was made")
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// policyError returns the error of an attempt that a breaker or a limiter
// did not admit: their refusals as they are, so that Retry honours their
// Retry-After; other errors (a closed client, an invalid name) marked
// Permanent, since another attempt would meet them again.
func policyError(err error) error {
	if errors.Is(err, ErrOpen) || errors.Is(err, ErrRateLimited) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return Permanent(err)
}

func releaseNow(release func()) {
	if release != nil {
		release()
	}
}

// retryAfterHeader returns the wait a 429 or 503 response asks for in its
// Retry-After header, as seconds or as an HTTP date.
func retryAfterHeader(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0, false
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(at), 0), maxRetryAfter), true
	}
	return 0, false
}

// maxRetryAfter caps a Retry-After header's wait, to keep it in range.
const maxRetryAfter = 24 * time.Hour

// attemptTimeoutError is the error of an attempt whose response headers
// did not arrive within Transport.Timeout. It matches ErrTimeout and
// context.DeadlineExceeded, and its Timeout method reports true.
type attemptTimeoutError struct{ d time.Duration }

func (e *attemptTimeoutError) Error() string {
	return "breakwater: timeout: no response headers within " + e.d.String()
}
func (e *attemptTimeoutError) Unwrap() error { return ErrTimeout }
func (e *attemptTimeoutError) Timeout() bool { return true }

// guardedBody is a response body that calls release once, when it has
// been read to the end or closed.
type guardedBody struct {
	io.ReadCloser
	released atomic.Bool
	release  func()
}

// guardedRWBody is a guardedBody over a body that can also be written
// to: a 101 Switching Protocols response's connection.
type guardedRWBody struct {
	*guardedBody
	w io.Writer
}

func (b guardedRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }

func newGuardedBody(body io.ReadCloser, release func()) io.ReadCloser {
	g := &guardedBody{ReadCloser: body, release: release}
	if w, ok := body.(io.Writer); ok {
		return guardedRWBody{guardedBody: g, w: w}
	}
	return g
}

func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.done()
	}
	return n, err
}

func (b *guardedBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

func (b *guardedBody) done() {
	if b.released.CompareAndSwap(false, true) {
		b.release()
	}
}
