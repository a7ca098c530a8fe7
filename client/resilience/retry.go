package resilience

import (
	"context"
	"time"

	"github.com/breakwater-dev/breakwater/client/internal/retry"
)

// Retry is a Policy that calls fn again when it fails, with exponential
// backoff and full jitter: before attempt n+1 (n ≥ 1) it waits a random
// duration in [0, min(MaxDelay, BaseDelay·2^(n-1))), so retries from many
// replicas spread out instead of arriving together.
//
// Retry stops, returning the last error unchanged, when an attempt
// succeeds, when MaxAttempts attempts have been made, when the error is
// not worth retrying (see RetryIf), when ctx has ended, when the error
// asks for a longer wait than MaxDelay (see below), or when ctx has a
// deadline that would pass before the next attempt could start. When ctx
// ends while Retry waits, it returns an error that matches both the last
// error and ctx.Err().
//
// An error whose chain holds a RetryAfter() time.Duration method, such as
// a *client.RetryAfterError from an open breaker, a rate limiter or a
// server's 429 or 503 answer, sets a floor on the wait: Retry waits at
// least that long. When that floor is longer than MaxDelay, Retry returns
// the error at once rather than wait longer than it was told it may, or
// try again sooner than the other side said could work.
//
// When its attempts go through a client.Breaker whose config has a retry
// budget (retry_budget_percent, retry_budget_min_per_second), Retry spends
// one retry of the allowance the control plane lent that breaker before
// each retry; with none left it makes no more attempts and returns the
// last error at once, without waiting. The breaker reports the attempts
// after the first as retries, so that the fleet's retries stay within the
// budget. The two find each other through the attempt's context, so the
// breaker must be called with the context Retry passes to fn.
//
// The zero value is ready to use: 3 attempts, 100 ms base delay, 10 s
// maximum delay, retrying every error but the caller's cancellation and
// errors marked with Permanent. A Retry holds no state between calls, so
// one value can serve any number of concurrent calls as long as its
// function fields are safe for concurrent use.
type Retry struct {
	// MaxAttempts is the number of calls of fn at most, the first one
	// included; 1 means no retry. Zero or less means 3.
	MaxAttempts int

	// BaseDelay is the ceiling of the first wait; each later wait's ceiling
	// doubles, up to MaxDelay. Zero or less means 100 ms.
	BaseDelay time.Duration

	// MaxDelay caps every wait, and the Retry-After an error may ask for.
	// Zero or less means 10 s.
	MaxDelay time.Duration

	// RetryIf reports whether a failed attempt's error is worth another
	// attempt. It is not asked about errors marked with Permanent, nor
	// once ctx has ended: those are never retried. Nil means every other
	// error is retried.
	RetryIf func(err error) bool

	// OnRetry, if set, is called before each wait with the number of the
	// attempt that failed (1 for the first), its error, and the wait.
	OnRetry func(attempt int, err error, wait time.Duration)

	// Test seams, nil in use: sleep waits for d or until ctx ends;
	// jitter returns a number in [0, 1) that scales each wait's ceiling.
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func() float64
}

// Do calls fn until it succeeds or Retry stops, as the type's doc
// describes, and returns the last error.
func (r Retry) Do(ctx context.Context, fn func(context.Context) error) error {
	return retry.Do(ctx, retry.Options{
		MaxAttempts: r.MaxAttempts,
		BaseDelay:   r.BaseDelay,
		MaxDelay:    r.MaxDelay,
		RetryIf:     r.RetryIf,
		OnRetry:     r.OnRetry,
		Sleep:       r.sleep,
		Jitter:      r.jitter,
	}, fn)
}
