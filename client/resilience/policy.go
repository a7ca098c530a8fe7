package resilience

import "context"

// A Policy runs a call under some rule: retry it, bound its time, bound how
// many run at once, replace its failure. Retry, Timeout, *Bulkhead and
// Fallback are policies, and so is a composition of them; so are package
// client's *Breaker and *Limiter.
//
// Do calls fn zero or more times with a context derived from ctx and
// returns the error the policy settles on. Implementations must be safe for
// concurrent use, must not keep ctx after Do returns, and must let the
// caller's own cancellation through: once ctx has ended, a policy starts no
// new attempt, wait or fallback, and does not dress the caller's
// cancellation up as a failure of the dependency.
type Policy interface {
	Do(ctx context.Context, fn func(context.Context) error) error
}

// PolicyFunc adapts an ordinary function to a Policy, as http.HandlerFunc
// adapts a function to an http.Handler.
type PolicyFunc func(ctx context.Context, fn func(context.Context) error) error

// Do returns f(ctx, fn).
func (f PolicyFunc) Do(ctx context.Context, fn func(context.Context) error) error {
	return f(ctx, fn)
}

// Compose returns a Policy that applies policies in order, the first one
// outermost: Compose(a, b).Do(ctx, fn) is
// a.Do(ctx, func(ctx) error { return b.Do(ctx, fn) }). Nil
// entries are skipped; with none left, the Policy just calls fn.
//
// The order matters. For a call to a dependency, this order is
// recommended, outermost first:
//
//	Fallback → Retry → Bulkhead → rate limiter → circuit breaker → Timeout → call
//
// Each place has its reason:
//
//   - Fallback outermost, so it replaces only the final failure, after
//     every retry, and also covers refusals (client.ErrOpen, client.ErrRateLimited,
//     ErrBulkheadFull).
//   - Retry outside everything that guards a single attempt, so each
//     attempt is admitted, limited, counted and timed on its own. When the
//     breaker opens, later attempts fail fast with client.ErrOpen and the open
//     time as a Retry-After, which Retry honours or, when it is longer than
//     its MaxDelay, gives up on; the retries never reach the dependency.
//     Nothing is held while Retry sleeps between attempts.
//   - Bulkhead outside the limiter and the breaker, so a call refused for
//     lack of a slot costs no rate-limit token and is not reported to the
//     breaker (a full bulkhead is local overload, not a failure of the
//     dependency), and so the bulkhead also bounds how many calls wait for
//     a token.
//   - The rate limiter outside the breaker, so that time spent waiting for
//     a token is not measured as the dependency's latency (it would count
//     towards the slow-call rate), a half-open probe permit is never held
//     while waiting for a token, and client.ErrRateLimited never reaches the
//     breaker as a failure.
//   - Timeout innermost, a deadline for each attempt: a call that runs out
//     of time fails with ErrTimeout inside the breaker, which counts it as
//     a failure (and as slow, when the timeout is at least the breaker's
//     slow-call duration).
//
// This is resilience4j's order (Retry, CircuitBreaker, RateLimiter,
// TimeLimiter, Bulkhead, outermost first) with two changes: the fallback
// is explicit and outermost, and the bulkhead and the rate limiter move
// outside the breaker so that neither local refusals nor local waits reach
// the fleet-wide breaker's statistics. For a deadline on the whole call,
// retries included, give ctx a deadline (Retry does not start a wait that
// would outlast it) or put a second Timeout before Retry.
func Compose(policies ...Policy) Policy {
	ps := make(composed, 0, len(policies))
	for _, p := range policies {
		switch p := p.(type) {
		case nil:
		case composed:
			ps = append(ps, p...)
		default:
			ps = append(ps, p)
		}
	}
	return ps
}

// composed is the Policy that Compose returns.
type composed []Policy

func (ps composed) Do(ctx context.Context, fn func(context.Context) error) error {
	if len(ps) == 0 {
		return fn(ctx)
	}
	if len(ps) == 1 {
		return ps[0].Do(ctx, fn)
	}
	rest := ps[1:]
	return ps[0].Do(ctx, func(ctx context.Context) error {
		return rest.Do(ctx, fn)
	})
}

// Call runs fn under p and returns its value: the value of the attempt that
// succeeded, or T's zero value with the error p settles on.
//
// A Fallback inside p can replace the error but not the value: when its
// Func succeeds, Call returns T's zero value and a nil error. For a
// fallback value, handle Call's error instead, which is the outermost
// place a fallback belongs anyway:
//
//	items, err := resilience.Call(ctx, p, fetchRecommendations)
//	if err != nil && ctx.Err() == nil {
//		items, err = popularItems(), nil
//	}
func Call[T any](ctx context.Context, p Policy, fn func(context.Context) (T, error)) (T, error) {
	var out T
	err := p.Do(ctx, func(ctx context.Context) error {
		v, err := fn(ctx)
		if err == nil {
			out = v
		}
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}
