package retry

import (
	"context"
	"sync/atomic"
)

// A Budget limits retries: Do asks it before each retry and sends no
// retry it refuses. Package client's breakers with a retry budget are
// budgets (see docs/semantics.md, "The fleet's retry budget").
type Budget interface {
	// SpendRetry takes one retry and reports whether there was one. It
	// must not wait on the network.
	SpendRetry() bool
}

// Attempts is how Do and the budgets its attempts go through find each
// other: Do puts one in the context of every attempt when it may make
// more than one, a budget that lets an attempt through joins it (Join),
// and Do then spends from that budget before each further attempt.
type Attempts struct {
	n      atomic.Int64             // the attempt under way, 1 for the first
	budget atomic.Pointer[budgetOf] // the first budget joined; nil when none
}

type budgetOf struct{ Budget }

type attemptsKey struct{}

// FromContext returns the Attempts of the Do whose attempt ctx is the
// context of, or nil.
func FromContext(ctx context.Context) *Attempts {
	a, _ := ctx.Value(attemptsKey{}).(*Attempts)
	return a
}

// Join makes b the budget of the retries that follow, unless another
// joined first, and reports whether the attempt under way is a retry.
func (a *Attempts) Join(b Budget) (retry bool) {
	if a.budget.Load() == nil {
		a.budget.CompareAndSwap(nil, &budgetOf{b})
	}
	return a.n.Load() > 1
}

// spend takes one retry from the budget joined, and reports whether the
// retry may be sent: always, when none joined.
func (a *Attempts) spend() bool {
	b := a.budget.Load()
	return b == nil || b.SpendRetry()
}
