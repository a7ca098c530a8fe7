package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// withDeadline gives each request one deadline, d from when it arrives,
// that every store call it makes shares (the store gives a call the
// earlier of its context's deadline and its own timeout): a request that
// reads a config and then a bucket, or lists many objects, answers within
// d too. See docs/design.md, "One deadline per call".
func withDeadline(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if d <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := newRequestContext(r.Context(), time.Now().Add(d))
			defer rc.cancel()
			next.ServeHTTP(w, r.WithContext(rc))
		})
	}
}

// requestContext is a request's context with its deadline: what
// context.WithDeadline makes, except that its timer starts only when
// something waits on Done. The store waits on StoreContext instead: it
// bounds each call by the deadline with timers of its own, so a request
// whose every wait is a store call costs no timer and no cancel context
// (four allocations a decision, and a runtime timer added to and taken
// from the timer heap under its lock). It also carries the request's
// identity, so that an authenticated request needs no context of its own
// for it: the store recognizes the request context itself, and any
// context wrapped around it hides it (the store then waits on Done, and
// the timer starts after all). Middleware that adds a value on the hot
// path puts it here.
//
// It is context.WithDeadline's to every other use: Done closes at the
// deadline, when the parent is done, or at cancel, whichever is first, and
// Err says which.
type requestContext struct {
	parent   context.Context
	deadline time.Time
	id       Identity
	hasID    bool

	mu    sync.Mutex
	done  chan struct{} // made by the first Done, or closed by then
	err   error
	timer *time.Timer // armed by the first Done
	stop  func() bool // stops the parent's AfterFunc, once armed
}

func newRequestContext(parent context.Context, deadline time.Time) *requestContext {
	if pd, ok := parent.Deadline(); ok && pd.Before(deadline) {
		deadline = pd
	}
	return &requestContext{parent: parent, deadline: deadline}
}

func (c *requestContext) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *requestContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	if c.err == nil {
		c.err = c.ended()
	}
	if c.err != nil {
		close(c.done)
		return c.done
	}
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
	c.stop = context.AfterFunc(c.parent, func() { c.end(c.parent.Err()) })
	return c.done
}

func (c *requestContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		if c.err = c.ended(); c.err != nil && c.done != nil {
			close(c.done)
		}
	}
	return c.err
}

// ended is why the context is over by now, or nil. It does not wait for
// the timer: Err answers from the clock, and closes Done with it, so that
// the two always agree.
func (c *requestContext) ended() error {
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *requestContext) Value(key any) any {
	if _, ok := key.(identityKey); ok && c.hasID {
		return c.id
	}
	return c.parent.Value(key)
}

// end ends the context with err unless it has ended already.
func (c *requestContext) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		if c.done != nil {
			close(c.done)
		}
	}
}

// cancel ends the context, when its request has been answered, and stops
// its timers.
func (c *requestContext) cancel() {
	c.end(context.Canceled)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.stop()
	}
}

// StoreContext is the context the store waits on and hands Redis: the same
// deadline and values, and a Done that closes when the parent is done (the
// client went away) but not at the deadline, which the store enforces
// itself. See store.StoreContexter.
func (c *requestContext) StoreContext() context.Context { return (*storeContext)(c) }

// storeContext is a requestContext as the store sees it: the same memory,
// so handing it over costs nothing.
type storeContext requestContext

func (c *storeContext) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *storeContext) Done() <-chan struct{}       { return c.parent.Done() }
func (c *storeContext) Err() error                  { return c.parent.Err() }
func (c *storeContext) Value(key any) any           { return (*requestContext)(c).Value(key) }

// detach returns a context that ctx's cancel does not reach but its
// deadline still bounds (the one withDeadline set), for an action that,
// once started, runs to its end within the request's time.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	dctx := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(dctx, d)
	}
	return dctx, func() {}
}
