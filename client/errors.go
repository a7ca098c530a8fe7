package client

import (
	"context"
	"errors"
	"time"
)

// Errors the package returns. Test for them with errors.Is: they usually
// arrive wrapped, in a *RetryAfterError or with the error of the call that
// failed.
var (
	// ErrOpen means a circuit breaker is open (or every half-open probe is
	// out): the call was not made and must not be.
	ErrOpen = errors.New("breakwater: circuit breaker is open")

	// ErrRateLimited means a rate limiter had no token for the call: the
	// call was not made.
	ErrRateLimited = errors.New("breakwater: rate limited")

	// ErrTimeout means a Timeout policy's own deadline ended the call. An
	// error that matches ErrTimeout also matches context.DeadlineExceeded,
	// and its Timeout method reports true, like a net.Error's.
	ErrTimeout error = timeoutError{}

	// ErrBulkheadFull means a Bulkhead had no free slot within its wait:
	// the call was not made.
	ErrBulkheadFull = errors.New("breakwater: bulkhead full")
)

// ErrClosed is returned by a Breaker's or Limiter's methods after their
// Client was closed.
var ErrClosed = errors.New("breakwater: client closed")

// timeoutError is the type of ErrTimeout. It matches
// context.DeadlineExceeded, so code that checks for the context's error
// keeps working when a Timeout policy is added in front of it.
type timeoutError struct{}

func (timeoutError) Error() string   { return "breakwater: timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// Is reports whether target is context.DeadlineExceeded.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// RetryAfterError is an error that says when trying again may succeed: a
// breaker that stays open for another 20 s, a rate limit that refills in
// 150 ms, a server's 429 or 503 answer with a Retry-After header. Retry
// waits at least After before its next attempt.
//
// Err is the reason (ErrOpen, ErrRateLimited, or an error of the caller's
// own), so errors.Is(err, ErrOpen) holds for a *RetryAfterError that wraps
// ErrOpen.
type RetryAfterError struct {
	// Err is the reason the call failed or was refused.
	Err error
	// After is how long to wait before trying again; zero when unknown.
	After time.Duration
}

// Error returns Err's message followed by the wait, for example
// "breakwater: circuit breaker is open (retry after 1.5s)".
func (e *RetryAfterError) Error() string {
	msg := "<nil>"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	if e.After <= 0 {
		return msg
	}
	return msg + " (retry after " + e.After.String() + ")"
}

// Unwrap returns Err.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns After. Retry looks for this method, so an error type of
// the caller's own can carry a wait too.
func (e *RetryAfterError) RetryAfter() time.Duration { return e.After }

// retryAfterer is what Retry looks for in an error's chain.
type retryAfterer interface {
	RetryAfter() time.Duration
}

// retryAfter returns the wait the first retryAfterer in err's chain asks
// for, or zero.
func retryAfter(err error) time.Duration {
	var ra retryAfterer
	if errors.As(err, &ra) {
		return max(ra.RetryAfter(), 0)
	}
	return 0
}

// Permanent marks err as not worth retrying: Retry returns it at once,
// whatever its RetryIf says. The result matches err with errors.Is and
// errors.As and has the same message. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }
