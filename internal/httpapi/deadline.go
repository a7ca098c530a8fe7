package httpapi

import (
	"context"
	"net/http"
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
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

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
