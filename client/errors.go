package client

import (
	"errors"
	"time"

	"github.com/breakwater-dev/breakwater/client/internal/retry"
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

	// ErrClosed is returned by a Breaker's or Limiter's methods after
	// their Client was closed.
	ErrClosed = errors.New("breakwater: client closed")
)

// RetryAfterError is an error that says when trying again may succeed: a
// breaker that stays open for another 20 s, a rate limit that refills in
// 150 ms, a server's 429 or 503 answer with a Retry-After header.
// resilience.Retry waits at least After before its next attempt.
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

// RetryAfter returns After. resilience.Retry looks for this method, so an
// error type of the caller's own can carry a wait too.
func (e *RetryAfterError) RetryAfter() time.Duration { return e.After }

// retryAfter returns the wait the first error in err's chain with a
// RetryAfter method asks for, or zero.
func retryAfter(err error) time.Duration { return retry.RetryAfter(err) }
