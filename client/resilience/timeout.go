package resilience

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Timeout is a Policy that gives each call a deadline: fn runs with a
// context that ends after Duration, or earlier if the caller's context
// does.
//
// When Timeout's own deadline ended the call and fn failed, Do
// returns an error that matches ErrTimeout and context.DeadlineExceeded
// and wraps fn's error, even if the caller's context ended too while fn
// was returning. When the caller's context ended first, fn's error is
// returned unchanged: the caller gave up, the dependency did not fail.
// When fn succeeds, even late, Do returns nil.
//
// Timeout does not abandon fn: it starts no goroutine and returns only
// when fn does, so fn must honour its context (as net/http, database/sql
// and gRPC calls do) for the deadline to cut a call short.
//
// A Duration of zero or less sets no deadline. A Timeout holds no state
// between calls and is safe for concurrent use.
type Timeout struct {
	// Duration is how long each call may run.
	Duration time.Duration
}

// errTimeoutCause is the cause of contexts that Timeout's deadline ended,
// so Do can tell them from the caller's own deadline.
var errTimeoutCause = errors.New("breakwater: timeout policy deadline")

// Do calls fn once with a context that ends after t.Duration.
func (t Timeout) Do(ctx context.Context, fn func(context.Context) error) error {
	if t.Duration <= 0 {
		return fn(ctx)
	}
	tctx, cancel := context.WithTimeoutCause(ctx, t.Duration, errTimeoutCause)
	defer cancel()
	err := fn(tctx)
	// The cause says which deadline ended tctx first: ours, or the caller's.
	if err == nil || context.Cause(tctx) != errTimeoutCause {
		return err
	}
	return fmt.Errorf("%w after %v: %w", ErrTimeout, t.Duration, err)
}
