package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// APILimitName is the rate limit that caps each token's requests to the
// API itself, fleet-wide, keyed by token name. It lives in the store's
// system space of limits (ratelimit.NewSystemService), which no request
// to the API can name: no token can take from another token's budget.
// Its config is the control plane's flags (Options.APIRate, APIBurst).
const APILimitName = "breakwater-api"

// APILimits keeps the rate limit of the API's own cap; a
// ratelimit.NewSystemService is one.
type APILimits interface {
	Put(ctx context.Context, name string, cfg contract.RateLimitConfig) (l contract.RateLimit, created bool, err error)
	Take(ctx context.Context, name string, req contract.TakeRequest) (contract.TakeResult, error)
}

// apiLimiter caps each token's API requests with our own token buckets.
// Each replica leases a few tokens at a time per token name, so the limit
// costs one store round trip per lease, not per request. A lease lasts
// about a second; unused tokens expire with it.
type apiLimiter struct {
	limits APILimits
	cfg    contract.RateLimitConfig
	lease  int64

	mu         sync.Mutex
	leases     map[string]*apiLease
	configured atomic.Bool
}

type apiLease struct {
	tokens      int64
	expires     time.Time
	deniedUntil time.Time
}

func newAPILimiter(limits APILimits, perSecond float64, burst int64) *apiLimiter {
	lease := max(1, min(burst/10, int64(perSecond/20)))
	return &apiLimiter{limits: limits, cfg: contract.RateLimitConfig{Capacity: burst, RefillPerSecond: perSecond},
		lease: lease, leases: map[string]*apiLease{}}
}

// allow says whether who may make one more request, and if not, when.
func (l *apiLimiter) allow(ctx context.Context, who string) (bool, time.Duration) {
	now := time.Now()
	l.mu.Lock()
	le := l.leases[who]
	if le == nil {
		le = &apiLease{}
		l.leases[who] = le
	}
	if now.Before(le.deniedUntil) {
		l.mu.Unlock()
		return false, le.deniedUntil.Sub(now)
	}
	if le.tokens > 0 && now.Before(le.expires) {
		le.tokens--
		l.mu.Unlock()
		return true, 0
	}
	l.mu.Unlock()

	res, err := l.take(ctx, who)
	if err != nil {
		// The store is unreachable: the request will meet the same outage
		// and get its 503; a limiter must not turn it into 429s.
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if res.Granted == 0 {
		le.deniedUntil = now.Add(time.Duration(res.RetryAfterMS) * time.Millisecond)
		return false, time.Duration(res.RetryAfterMS) * time.Millisecond
	}
	le.tokens, le.expires = res.Granted-1, now.Add(time.Second)
	return true, 0
}

func (l *apiLimiter) take(ctx context.Context, who string) (contract.TakeResult, error) {
	if !l.configured.Load() {
		// This replica's flags: the last replica to start sets them.
		if _, _, err := l.limits.Put(ctx, APILimitName, l.cfg); err != nil {
			return contract.TakeResult{}, err
		}
		l.configured.Store(true)
	}
	req := contract.TakeRequest{Tokens: l.lease, Key: who, Partial: true}
	res, err := l.limits.Take(ctx, APILimitName, req)
	if errors.Is(err, contract.ErrNotFound) {
		if _, _, err := l.limits.Put(ctx, APILimitName, l.cfg); err != nil {
			return res, err
		}
		res, err = l.limits.Take(ctx, APILimitName, req)
	}
	var fe *contract.FieldError
	if errors.As(err, &fe) {
		// An operator made the capacity smaller than our lease: ask for one.
		req.Tokens = 1
		res, err = l.limits.Take(ctx, APILimitName, req)
	}
	return res, err
}

// limitAPI answers 429 to a token over its request rate.
func (a *API) limitAPI(w http.ResponseWriter, r *http.Request) bool {
	if a.apiLimit == nil {
		return true
	}
	who := IdentityFrom(r.Context()).Name
	ok, retry := a.apiLimit.allow(r.Context(), who)
	if ok {
		return true
	}
	setRetryAfter(w, retry.Milliseconds())
	a.writeError(w, r, &requestError{Status: http.StatusTooManyRequests,
		Detail: fmt.Sprintf("token %q is over its API request rate; retry in %d ms", who, retry.Milliseconds())})
	return false
}
