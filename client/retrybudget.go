package client

import (
	"context"
	"sync"
	"time"

	"github.com/breakwater-dev/breakwater/client/internal/retry"
)

// The fleet's retry budget and slow start, as a Breaker applies them.
// See docs/semantics.md ("Slow start", "The fleet's retry budget").

// retryBudget is the retries a client may make to one breaker's
// dependency: the control plane lends some with the answer to each report
// of a breaker with a retry budget. The control plane counts a loan
// against the fleet's budget until the retries spent from it are reported
// or it lapses, which is never before the client drops it, so the client
// keeps every loan until it expires and spends the oldest first. Spending
// makes no network call. The zero retryBudget holds nothing.
type retryBudget struct {
	mu    sync.Mutex
	loans []loan
}

// loan is n retries lent, good until expires (coarse Unix ns).
type loan struct{ n, expires int64 }

// loanLife is how long the client keeps a loan: three quarters of the
// breaker's cache_ttl_ms. The control plane counts a loan against the
// budget for at least cache_ttl_ms after making it; the quarter left
// covers the time the answer took to arrive, so the client never spends
// a loan the control plane has forgotten.
func loanLife(cacheTTLMS int64) time.Duration {
	return ms(cacheTTLMS) * 3 / 4
}

// maxLoans bounds the loans kept; past it the oldest is dropped (never
// more retries than lent).
const maxLoans = 64

// lend adds a loan of n retries, good until expires.
func (r *retryBudget) lend(n, expires int64) {
	if n <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.loans) >= maxLoans {
		r.loans = append(r.loans[:0], r.loans[1:]...)
	}
	r.loans = append(r.loans, loan{n, expires})
}

// spend takes one retry from the loans held at now, oldest first, and
// reports whether there was one.
func (r *retryBudget) spend(now int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := 0
	for i < len(r.loans) && (r.loans[i].expires <= now || r.loans[i].n <= 0) {
		i++
	}
	r.loans = append(r.loans[:0], r.loans[i:]...)
	if len(r.loans) == 0 {
		return false
	}
	r.loans[0].n--
	return true
}

// drop forgets every loan.
func (r *retryBudget) drop() {
	r.mu.Lock()
	r.loans = nil
	r.mu.Unlock()
}

// markRetry joins b's retry budget to the enclosing retry loop's attempts
// (resilience.Retry, a Transport's retries), if any, and marks the call t
// a retry when it is not the loop's first attempt, so that it is
// reported as one.
func (b *Breaker) markRetry(ctx context.Context, t *tracker) {
	if at := retry.FromContext(ctx); at != nil {
		t.retry = at.Join(breakerBudget{b})
	}
}

// breakerBudget is a Breaker as the retry loop's Budget.
type breakerBudget struct{ b *Breaker }

// SpendRetry takes one retry from the breaker's allowance, and reports
// whether the retry may be sent. A breaker without a retry budget always
// says yes. While the client decides locally (degraded mode) the budget
// is this replica's: the retries its local breaker's window allows.
func (bb breakerBudget) SpendRetry() bool {
	b := bb.b
	cfg := b.cfg.Load()
	if cfg == nil || !cfg.HasRetryBudget() {
		return true
	}
	if b.c.degraded.Load() {
		b.mu.Lock()
		l := b.local
		b.mu.Unlock()
		return l == nil || l.retryLeft(b.c.clock.now()) > 0
	}
	return b.budget.spend(b.c.clock.unixNano())
}

// admit reports whether the next call falls in the share pct (1..99)
// let through during a slow start. It admits exactly pct of every 100
// calls, spread evenly, with one atomic add.
func (b *Breaker) admit(pct int64) bool {
	n := b.admitted.Add(1)
	p := uint64(pct)
	return n*p/100 != (n-1)*p/100
}

// budgetMaybe reports whether calls may count against a retry budget:
// the breaker's config has one, or is not known yet.
func (b *Breaker) budgetMaybe() bool {
	cfg := b.cfg.Load()
	return cfg == nil || cfg.HasRetryBudget()
}
