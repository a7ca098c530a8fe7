// Package retry is the retry loop behind resilience.Retry and
// client.Transport, with the clock and the jitter as parameters, so that
// both packages' tests can fix them while neither type exports a seam.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Defaults of Options' zero fields.
const (
	DefaultMaxAttempts = 3
	DefaultBaseDelay   = 100 * time.Millisecond
	DefaultMaxDelay    = 10 * time.Second
)

// Options are resilience.Retry's fields, and the seams.
type Options struct {
	MaxAttempts int
	BaseDelay   time.Duration
	MaxDelay    time.Duration
	RetryIf     func(err error) bool
	OnRetry     func(attempt int, err error, wait time.Duration)

	// Sleep waits for d or until ctx ends, returning ctx's error then.
	// Nil means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a number in [0, 1) that scales each wait's ceiling.
	// Nil means math/rand/v2's Float64.
	Jitter func() float64
}

// Do calls fn until it succeeds or o says to stop, as resilience.Retry's
// doc describes, and returns the last error. When it may make more than
// one attempt, each attempt's context carries an Attempts, and a retry
// that the Budget joined to it refuses is not made: Do returns the last
// error at once, without waiting.
func Do(ctx context.Context, o Options, fn func(context.Context) error) error {
	attempts := o.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	var at *Attempts
	if attempts > 1 {
		at = &Attempts{}
		ctx = context.WithValue(ctx, attemptsKey{}, at)
	}
	for n := 1; ; n++ {
		if at != nil {
			at.n.Store(int64(n))
		}
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if n >= attempts || !o.retryable(ctx, err) {
			return err
		}
		wait, ok := o.wait(n, err)
		if !ok {
			return err
		}
		if deadline, has := ctx.Deadline(); has && time.Until(deadline) < wait {
			return err
		}
		if at != nil && !at.spend() {
			return err // over the retry budget: not sent, and no wait
		}
		if o.OnRetry != nil {
			o.OnRetry(n, err, wait)
		}
		if serr := o.pause(ctx, wait); serr != nil {
			return fmt.Errorf("%w; retry stopped: %w", err, serr)
		}
	}
}

// retryable reports whether err, returned by an attempt made with ctx, may
// be retried.
func (o Options) retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || IsPermanent(err) {
		return false
	}
	return o.RetryIf == nil || o.RetryIf(err)
}

// wait returns the wait after failed attempt n (1-based) with err, and
// false when err asks for a longer wait than MaxDelay.
func (o Options) wait(n int, err error) (time.Duration, bool) {
	maxDelay := o.MaxDelay
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	floor := RetryAfter(err)
	if floor > maxDelay {
		return 0, false
	}
	return max(o.backoff(n, maxDelay), floor), true
}

// backoff returns the jittered wait after failed attempt n (1-based).
func (o Options) backoff(n int, maxDelay time.Duration) time.Duration {
	ceiling := o.BaseDelay
	if ceiling <= 0 {
		ceiling = DefaultBaseDelay
	}
	for i := 1; i < n && ceiling < maxDelay; i++ {
		if ceiling > maxDelay/2 {
			ceiling = maxDelay
			break
		}
		ceiling *= 2
	}
	ceiling = min(ceiling, maxDelay)
	f := rand.Float64
	if o.Jitter != nil {
		f = o.Jitter
	}
	w := max(f(), 0) * float64(ceiling)
	if w >= float64(ceiling) { // also keeps the conversion below 2^63
		return ceiling
	}
	return time.Duration(w)
}

func (o Options) pause(ctx context.Context, d time.Duration) error {
	if o.Sleep != nil {
		return o.Sleep(ctx, d)
	}
	return Sleep(ctx, d)
}

// Sleep waits for d or until ctx ends, and then returns ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryAfterer is what Do looks for in an error's chain.
type retryAfterer interface {
	RetryAfter() time.Duration
}

// RetryAfter returns the wait the first error in err's chain with a
// RetryAfter() time.Duration method asks for, or zero.
func RetryAfter(err error) time.Duration {
	var ra retryAfterer
	if errors.As(err, &ra) {
		return max(ra.RetryAfter(), 0)
	}
	return 0
}

// Permanent marks err as not worth retrying; see resilience.Permanent.
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
