package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater-dev/breakwater/client/internal/retry"
	"github.com/breakwater-dev/breakwater/client/resilience"
)

// errAttemptTimeout is the cause of an attempt's context that
// Transport.Timeout ended, so that it is told from the caller's own end.
var errAttemptTimeout = errors.New("breakwater: transport attempt deadline")

// maxDrain is how much of a retried response's body is read before it is
// closed, so that its connection can be reused; a longer body costs the
// connection instead.
const maxDrain = 64 << 10

// drainTimeout bounds the reading of a retried response's body: one that
// has not ended by then is closed, and its connection is not reused.
const drainTimeout = 100 * time.Millisecond

// Transport is an http.RoundTripper that guards the requests to one
// dependency with its policies, in the order resilience.Compose recommends,
// outermost first:
//
//	Retry → Bulkhead → Breaker → Limiter → Timeout → Base
//
// Each attempt is admitted, limited, counted and timed on its own. The
// breaker's cached answer is asked before the limiter, so that an open
// breaker spends none of the fleet's tokens; in half-open the token is
// taken first, so that a probe permit is never left unused by a refused
// token. When the breaker is open, the limiter has no token or the
// bulkhead no slot, the attempt fails with an error matching ErrOpen,
// ErrRateLimited or resilience.ErrBulkheadFull without touching the
// network; when that is the last attempt, RoundTrip returns that error
// (wrapped in a *url.Error by http.Client, so test it with errors.Is).
//
// What counts against the breaker is Failed's call: by default a
// transport error or a 5xx response is a failure and any other response,
// 4xx included, a success, since a 4xx is the dependency working and
// refusing a bad request. The caller's own failures are never failures
// of the dependency: its cancellation (see Breaker.Allow), a request
// body that fails to read, or one still being read when Timeout passes
// (an upload slower than the timeout) end the attempt with an error
// matching ErrCaller, uncounted and not retried. (net/http waits for a
// Read of the request's body that is under way to return: give a body
// that may stall a deadline of its own.) A panic in Base or Failed
// gives back the attempt's bulkhead slot and counts as a failure before
// it goes on up. The outcome is reported
// when the response's headers arrive, and the breaker measures the time
// to them: reading the body is the caller's business, and a body that
// fails half-way is not counted.
//
// Retries. A request is attempted again only if it is safe to send twice
// (see Idempotent) and its body can be sent again: it has none, or
// GetBody is set, as http.NewRequest sets it for in-memory bodies. Other
// requests get exactly one attempt. An attempt is retried, subject to
// Retry's rules (attempts, backoff, RetryIf, the caller's context), when
// it failed (Failed), when the answer was 429 Too Many Requests, or
// when a policy refused it. A 429 or 503 with a Retry-After header sets
// the least wait before the next attempt; when that is longer than
// Retry.MaxDelay, Retry gives up at once. The body of a response that
// is retried is read (up to 64 KiB, for at most 100 ms) and closed
// before the wait: a body that stalls costs its connection, never the
// caller's time. When
// Retry gives up on a response, RoundTrip returns that response, unread,
// with a nil error: the caller sees the dependency's last answer, as
// without retries. Retry.RetryIf and OnRetry see such a response as a
// *ResponseError.
//
// Timeout bounds each attempt until its response headers arrive, not the
// reading of the body, so a long download or a streaming response is not
// cut short; bound the whole exchange with the request's context. An
// attempt that times out fails with an error matching
// resilience.ErrTimeout and
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
	Bulkhead *resilience.Bulkhead

	// Retry, if set, retries failed attempts of requests that are safe
	// XX	// Rand are used as they are. Nil means one attempt per request.
	Retry *resilience.Retry

	// Timeout bounds each attempt until its response headers arrive.
	// Zero or less means no bound but the request's context.
	Timeout time.Duration

	// Failed reports whether an attempt's outcome counts against the
	// breaker and is worth a retry: it gets the response, or the error
	// when there is none (never both). It is not asked about refusals of
	// the policies, which are never failures. Nil means an error or a
	// status of 500 or more.
	Failed func(resp *http.Response, err error) bool

	// IgnoreFaults turns off the faults of drills for this Transport. By
	// default a Transport with a Breaker applies the faults an operator
	// sets for the breaker's name (PUT /v1/faults/{name}): after the
	// policies admit an attempt, a share of attempts wait the fault's
	// delay_ms first (within Timeout, like a slow dependency), and a share
	// are answered abort_status without reaching the network, with the
	// header Breakwater-Fault, counted as failures whatever Failed
	// says. See docs/drills.md.
	IgnoreFaults bool

	// Idempotent reports whether a request may be sent more than once.
	// Nil means: its method is GET, HEAD, OPTIONS, TRACE, PUT or DELETE,
	// or it carries an Idempotency-Key or X-Idempotency-Key header. A
	// request whose body cannot be sent again is never retried, whatever
	// Idempotent says.
	Idempotent func(req *http.Request) bool

	// Test seams of the retry loop, nil in use: see resilience.Retry.
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func() float64
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
	r := t.Retry
	var resp *http.Response
	err := retry.Do(ctx, retry.Options{
		MaxAttempts: r.MaxAttempts,
		BaseDelay:   r.BaseDelay,
		MaxDelay:    r.MaxDelay,
		RetryIf:     r.RetryIf,
		OnRetry: func(attempt int, err error, wait time.Duration) {
			rt.drain() // before the wait, so that the connection is free
			if r.OnRetry != nil {
				r.OnRetry(attempt, err, wait)
			}
		},
		Sleep:  t.sleep,
		Jitter: t.jitter,
	}, func(ctx context.Context) error {
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
	if t.Failed != nil {
		return t.Failed(resp, err)
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
		return nil, retry.Permanent(err)
	}
	resp, err := rt.admitted(ctx, areq)
	if areq.Body != nil && areq.Body != rt.req.Body && !rt.sent {
		areq.Body.Close() // a body from GetBody that never went out
	}
	return resp, err
}

// admitted sends areq if the policies admit it.
//
// Every path out of it, a panic in Base or Failed included, calls the
// breaker's done func exactly once and gives back the bulkhead's slot (or
// hands both to the response's body); a panic is counted as a failure of
// the dependency and then goes on up.
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
	// The attempt's own context: cancelled when the attempt is over (its
	// body closed), so that a body read that stalls can be cut off, and
	// by the timer when Timeout passes.
	actx, cancel := context.WithCancelCause(ctx)
	var freed atomic.Bool
	free := func() {
		if freed.CompareAndSwap(false, true) {
			cancel(context.Canceled)
			releaseNow(release)
		}
	}
	done, reported := noopDone, false
	report := func(err error) {
		reported = true
		done(err)
	}
	var resp *http.Response
	finished := false
	defer func() {
		if finished {
			return
		}
		// A panic: count the attempt, give back what it holds, and let
		// the panic go on.
		if !reported {
			report(errAttemptPanicked)
		}
		if resp != nil {
			resp.Body.Close()
		}
		free()
	}()

	// An open breaker refuses before a token is taken, so that calls that
	// never leave spend none of the fleet's tokens. In half-open the token
	// comes first: a probe permit that a refused token left unused would
	// hold up the fleet's probes until it expires.
	limitFirst := t.Limiter != nil && t.Breaker != nil && t.Breaker.State() == StateHalfOpen
	if limitFirst {
		if err := t.Limiter.Take(ctx); err != nil {
			finished = true
			free()
			return nil, policyError(err)
		}
	}
	if t.Breaker != nil {
		var err error
		// The attempt's context, which ends with the caller's, so that the
		// breaker tells the caller's cancellation from a failure.
		if done, err = t.Breaker.Allow(actx); err != nil {
			finished, reported = true, true
			free()
			return nil, policyError(err)
		}
	}
	if t.Limiter != nil && !limitFirst {
		if err := t.Limiter.Take(ctx); err != nil {
			report(err) // a refusal: not counted
			finished = true
			free()
			return nil, policyError(err)
		}
	}

	sreq := areq.WithContext(actx)
	var body *callerBody
	if areq.Body != nil && areq.Body != http.NoBody {
		body = &callerBody{ReadCloser: areq.Body}
		sreq.Body = body
	}
	var (
		timer      *time.Timer
		slowUpload atomic.Bool
	)
	if t.Timeout > 0 {
		timer = time.AfterFunc(t.Timeout, func() {
			if body != nil && body.reading.Load() {
				slowUpload.Store(true) // still waiting for the caller's bytes
			}
			cancel(errAttemptTimeout)
		})
	}
	rt.sent = true
	if areq.Body == rt.req.Body {
		rt.bodySent = true
	}
	base := t.base()
	var ft *faultTransport
	if t.Breaker != nil && !t.IgnoreFaults {
		if f := t.Breaker.c.fault(t.Breaker.name); f != nil {
			ft = &faultTransport{base: base, name: t.Breaker.name, fault: f}
			base = ft
		}
	}
	var err error
	resp, err = base.RoundTrip(sreq)
	timedOut := timer != nil && !timer.Stop() && context.Cause(actx) == errAttemptTimeout
	if timedOut {
		// The deadline passed before the headers were in (or just as
		// they arrived: the body is cut off either way).
		if resp != nil {
			resp.Body.Close()
			resp = nil
		}
		err = &attemptTimeoutError{d: t.Timeout}
	}
	if err == nil && resp == nil {
		err = errors.New("breakwater: transport returned no response and no error")
	}
	if err != nil {
		if cerr := body.callerError(err, timedOut && slowUpload.Load(), t.Timeout); cerr != nil {
			// The caller's side failed, not the dependency: not counted,
			// not retried.
			cancel(errCallerCause)
			report(context.Canceled)
			err = retry.Permanent(cerr)
		} else if t.isFailure(nil, err) {
			report(err)
		} else {
			report(nil)
		}
		finished = true
		free()
		return nil, err
	}
	resp.Body = newGuardedBody(resp.Body, free)
	if (ft != nil && ft.aborted) || t.isFailure(resp, nil) {
		report(&ResponseError{Response: resp})
	} else {
		report(nil)
		if resp.StatusCode != http.StatusTooManyRequests {
			finished = true
			return resp, nil
		}
	}
	finished = true
	rt.last = resp
	var rerr error = &ResponseError{Response: resp}
	if after, ok := retryAfterHeader(resp); ok {
		rerr = &RetryAfterError{Err: rerr, After: after}
	}
	return resp, rerr
}

var (
	errAttemptPanicked = errors.New("breakwater: the attempt panicked")
	errCallerCause     = errors.New("breakwater: the caller's request failed")
	errSlowUpload      = errors.New("upload too slow")
)

// ErrCaller matches the error of an attempt that failed on the caller's
// side rather than the dependency's: the request's body could not be read
// (an upload that broke off), or was still being read when Transport's
// Timeout passed (an upload slower than the timeout). Such an attempt is
// neither counted against the breaker nor retried.
var ErrCaller = errors.New("breakwater: the caller's request failed")

// callerBody is a request body that remembers whether reading it failed,
// and whether a read of it is under way.
type callerBody struct {
	io.ReadCloser
	reading atomic.Bool
	mu      sync.Mutex
	err     error // the first read error other than io.EOF
}

func (b *callerBody) Read(p []byte) (int, error) {
	b.reading.Store(true)
	n, err := b.ReadCloser.Read(p)
	b.reading.Store(false)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

// callerError returns the caller's failure behind an attempt's error err,
// or nil when the caller is not to blame. b may be nil (no body).
func (b *callerBody) callerError(err error, slowUpload bool, timeout time.Duration) error {
	if b == nil {
		return nil
	}
	if slowUpload {
		return &callerError{msg: "the request's body was still being sent when the timeout of " + timeout.String() + " passed", err: errSlowUpload}
	}
	b.mu.Lock()
	rerr := b.err
	b.mu.Unlock()
	if rerr == nil {
		return nil
	}
	return &callerError{msg: "reading the request's body: " + rerr.Error(), err: rerr}
}

// callerError is an attempt's failure on the caller's side. It matches
// ErrCaller and the error it wraps.
type callerError struct {
	msg string
	err error
}

func (e *callerError) Error() string   { return "breakwater: " + e.msg }
func (e *callerError) Unwrap() []error { return []error{ErrCaller, e.err} }

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

// drain reads and closes the body of the last failed response, if any,
// within maxDrain bytes and drainTimeout: a body that stalls is cut off
// (closing it ends its attempt's context) and costs its connection, not
// the caller's time.
func (rt *roundTrip) drain() {
	if rt.last == nil {
		return
	}
	body := rt.last.Body
	rt.last = nil
	stop := time.AfterFunc(drainTimeout, func() { body.Close() })
	io.CopyN(io.Discard, body, maxDrain)
	stop.Stop()
	body.Close()
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
	return retry.Permanent(err)
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
// did not arrive within Transport.Timeout. It matches
// resilience.ErrTimeout and
// context.DeadlineExceeded, and its Timeout method reports true.
type attemptTimeoutError struct{ d time.Duration }

func (e *attemptTimeoutError) Error() string {
	return "breakwater: timeout: no response headers within " + e.d.String()
}
func (e *attemptTimeoutError) Unwrap() error { return resilience.ErrTimeout }
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
