package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater-dev/breakwater/client/internal/retry"
	"github.com/breakwater-dev/breakwater/internal/contract"
)

// limitConfig is a rate limit's config as the control plane keeps it.
type limitConfig struct {
	capacity int64
	rate     float64 // tokens per second
}

// limitShared is what the buckets of one limit share: the limit's config
// and the keyed buckets made so far.
type limitShared struct {
	c        *core
	name     string
	root     *Limiter // the empty key
	cfg      atomic.Pointer[limitConfig]
	capacity atomic.Int64 // from the RateLimit-Limit header; 0 until known
	clients  atomic.Int64 // the limit's takers fleet-wide, from Breakwater-Clients; 0 until known
	keys     sync.Map     // key → *Limiter
	nkeys    atomic.Int64
	evicted  evictedLevels // the local levels of keys forgotten while degraded

	mu       sync.Mutex
	fetching bool
	warned   bool
}

func newLimitShared(c *core, name string) *limitShared {
	s := &limitShared{c: c, name: name}
	s.root = newLimiter(s, "")
	return s
}

// A Limiter is a token bucket kept by the control plane for the whole
// fleet: a rate limit's bucket for one key. It starts full, holds at most
// the limit's capacity, and refills at its rate; every call takes a
// token.
//
// A Limiter leases tokens: it takes a batch from the control plane (with
// partial grants) and spends it locally with no network call, lock or
// allocation, so that the control plane sees about one request per
// flush interval per busy replica and key. The lease size follows the
// observed rate, so that a lease lasts about one Config.FlushInterval, and
// a lease not spent within that time expires: its tokens are never given
// back, so the fleet never admits more than the bucket grants, but it may
// admit less (see Config.LeaseSize, where one means exact). When the
// control plane refuses, the Limiter refuses locally until the time it
// said a token would be there.
//
// When no control plane answers, a Limiter decides with a local bucket
// holding a share of the limit (see Config.FailClosed and FleetShare).
//
// Get one with Client.Limiter, and a key's bucket with For; the zero
// value is not usable. Take is what most callers want; Wait blocks until
// a token is there. A Limiter is a resilience.Policy (it refuses without
// waiting) and is safe for concurrent use.
type Limiter struct {
	c      *core
	shared *limitShared
	key    string
	err    error // the name or key is not valid

	lease atomic.Pointer[lease]

	mu     sync.Mutex // guards the fields below
	flight *flight
	size   int64   // the last lease size asked for
	demand float64 // observed rate, tokens per second, smoothed
	local  *localLimiter
}

// lease is tokens taken from the control plane, or a refusal to repeat
// locally, until it expires. Only tokens changes once it is published.
type lease struct {
	tokens  atomic.Int64 // left to spend
	granted int64
	start   int64 // coarse Unix ns
	expires int64
	denied  bool  // a refusal, until expires
	unknown bool  // the limit does not exist: allow until expires
	retryAt int64 // when denied
}

// take takes n tokens if the lease holds them.
func (ls *lease) take(n int64) bool {
	for {
		v := ls.tokens.Load()
		if v < n {
			return false
		}
		if ls.tokens.CompareAndSwap(v, v-n) {
			return true
		}
	}
}

func newLimiter(s *limitShared, key string) *Limiter {
	l := &Limiter{c: s.c, shared: s, key: key}
	switch {
	case !contract.ValidName(s.name):
		l.err = fmt.Errorf("breakwater: rate limit name %q: must match %s", s.name, contract.NamePattern)
	default:
		if err := contract.ValidateKey(key); err != nil {
			l.err = fmt.Errorf("breakwater: rate limit %w", err)
		}
	}
	return l
}

// Name returns the rate limit's name.
func (l *Limiter) Name() string { return l.shared.name }

// Key returns the key of the bucket, "" for the default bucket.
func (l *Limiter) Key() string { return l.key }

// For returns the limiter of the limit's bucket for key; For("") is the
// default bucket, which Client.Limiter returns. Every call with the same
// key returns the same *Limiter while it is remembered: a limit remembers
// Config.MaxKeys keys, and one forgotten (with its lease) is made anew.
func (l *Limiter) For(key string) *Limiter {
	s := l.shared
	if key == "" {
		return s.root
	}
	if v, ok := s.keys.Load(key); ok {
		return v.(*Limiter)
	}
	if s.nkeys.Load() >= int64(s.c.cfg.MaxKeys) {
		s.keys.Range(func(k, v any) bool {
			if s.keys.CompareAndDelete(k, v) {
				s.nkeys.Add(-1)
				s.evicted.forget(k.(string), v.(*Limiter).localNow(), s.c.clock.now())
			}
			return false
		})
	}
	v, loaded := s.keys.LoadOrStore(key, newLimiter(s, key))
	if !loaded {
		s.nkeys.Add(1)
	}
	return v.(*Limiter)
}

// Take takes one token and returns nil if it got one. Otherwise it
// returns an error that matches ErrRateLimited, a *RetryAfterError with
// the time until a token may be there, and the call must not be made.
// Take never waits for a token (Wait does), but it may wait for the
// control plane, within ctx: it asks only when its lease is spent or
// expired, and concurrent callers of the same bucket then wait for that
// one request. Unlike x/time/rate's Allow, it reports why it refused.
func (l *Limiter) Take(ctx context.Context) error { return l.TakeN(ctx, 1) }

// TakeN is Take for n tokens at once: it takes all n or none. More than
// a lease holds is asked of the control plane all at once; more than the
// limit's capacity is an error that never succeeds. TakeN(ctx, 0) is
// nil.
func (l *Limiter) TakeN(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	now := l.c.clock.unixNano()
	if ls := l.lease.Load(); ls != nil && now < ls.expires {
		if ls.take(int64(n)) {
			if h := l.c.hooks.OnDecision; h != nil {
				h(KindLimiter, l.shared.name, SourceCache, true)
			}
			return nil
		}
		if ls.denied || ls.unknown {
			return l.fromLease(ls, now, SourceCache)
		}
	}
	return l.allowSlow(ctx, int64(n), now)
}

// fromLease decides from a refusal or an unknown-limit lease.
func (l *Limiter) fromLease(ls *lease, now int64, src Source) error {
	if ls.unknown {
		l.c.decided(KindLimiter, l.shared.name, src, true)
		return nil
	}
	l.c.decided(KindLimiter, l.shared.name, src, false)
	return &RetryAfterError{Err: ErrRateLimited, After: time.Duration(max(ls.retryAt-now, 0))}
}

// Wait takes one token, waiting until one is there or ctx ends; see
// WaitN.
func (l *Limiter) Wait(ctx context.Context) error { return l.WaitN(ctx, 1) }

// WaitN takes n tokens, waiting as long as the control plane says a
// refill takes, again and again while other callers take them first, until
// it gets them or ctx ends. It returns at once, with the refusal, when
// ctx's deadline would pass before tokens could be there, and it returns
// other errors (ErrClosed, ErrUnavailable, n above the capacity) at once.
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	for {
		err := l.TakeN(ctx, n)
		if err == nil || !errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable) {
			return err
		}
		d := max(retryAfter(err), time.Millisecond)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
			return err
		}
		if err := retry.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// Do takes a token with Take and calls fn, so that a Limiter is a
// resilience.Policy; it returns Take's refusal without calling fn.
func (l *Limiter) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := l.Take(ctx); err != nil {
		return err
	}
	return fn(ctx)
}

// allowSlow decides when the lease is spent, expired or missing.
func (l *Limiter) allowSlow(ctx context.Context, n, now int64) error {
	if l.err != nil {
		return l.err
	}
	c := l.c
	for {
		if c.closed.Load() {
			return ErrClosed
		}
		if c.degraded.Load() {
			return l.allowDegraded(n, now)
		}
		if c.cfg.LeaseSize == 1 || n > 1 {
			return l.takeExact(ctx, n)
		}
		l.mu.Lock()
		if ls := l.lease.Load(); ls != nil && now < ls.expires {
			if ls.take(n) {
				l.mu.Unlock()
				c.decided(KindLimiter, l.shared.name, SourceCache, true)
				return nil
			}
			if ls.denied || ls.unknown {
				l.mu.Unlock()
				return l.fromLease(ls, now, SourceCache)
			}
		}
		if f := l.flight; f != nil {
			l.mu.Unlock()
			select {
			case <-f.done:
				now = c.clock.unixNano()
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		f := &flight{done: make(chan struct{})}
		l.flight = f
		size := l.nextSize(now)
		l.mu.Unlock()
		err := l.takeLease(ctx, size)
		l.mu.Lock()
		l.flight = nil
		l.mu.Unlock()
		close(f.done)
		return err
	}
}

// nextSize returns the size of the next lease and records it. l.mu must
// be held.
func (l *Limiter) nextSize(now int64) int64 {
	c := l.c
	capacity := l.shared.capacityNow()
	if capacity <= 0 {
		capacity = 1 // learned from the first answer
	}
	if c.cfg.LeaseSize > 1 {
		l.size = min(int64(c.cfg.LeaseSize), capacity)
		return l.size
	}
	if prev := l.lease.Load(); prev != nil && prev.granted > 0 {
		used := prev.granted - max(prev.tokens.Load(), 0)
		elapsed := max(now-prev.start, int64(time.Millisecond))
		rate := float64(used) * float64(time.Second) / float64(elapsed)
		// An average weighted by time: what was seen over a flush
		// interval weighs 63%, over a long pause almost everything.
		if w := -math.Expm1(-float64(elapsed) / float64(c.cfg.FlushInterval)); l.demand == 0 {
			l.demand = rate
		} else {
			l.demand += w * (rate - l.demand)
		}
	}
	want := int64(math.Ceil(l.demand * c.cfg.FlushInterval.Seconds()))
	size := max(want, 1)
	if l.size > 0 {
		size = min(size, 2*l.size) // grow step by step
	}
	l.size = min(size, capacity)
	return l.size
}

// capacityNow returns the limit's capacity as last learned, or 0.
func (s *limitShared) capacityNow() int64 {
	if n := s.capacity.Load(); n > 0 {
		return n
	}
	if lc := s.cfg.Load(); lc != nil {
		return lc.capacity
	}
	return 0
}

// takeLease takes up to size tokens from the control plane, spends one
// and keeps the rest as the lease.
func (l *Limiter) takeLease(ctx context.Context, size int64) error {
	c := l.c
	res, err := l.send(ctx, takeRequest{Tokens: size, Key: l.key, Partial: true})
	if err != nil {
		var se *StatusError
		if size > 1 && errors.As(err, &se) && se.Status == http.StatusBadRequest {
			// The capacity shrank under the lease size: ask for one.
			l.mu.Lock()
			l.size = 1
			l.mu.Unlock()
			size = 1
			res, err = l.send(ctx, takeRequest{Tokens: 1, Key: l.key, Partial: true})
		}
		if err != nil {
			return l.takeFailed(ctx, err, 1)
		}
	}
	now := c.clock.unixNano()
	if res.Granted > 0 {
		ls := &lease{granted: res.Granted, start: now, expires: now + int64(c.cfg.FlushInterval)}
		ls.tokens.Store(res.Granted - 1)
		l.store(ls)
		c.decided(KindLimiter, l.shared.name, SourceServer, true)
		return nil
	}
	return l.denied(res.RetryAfterMS, size, now)
}

// takeExact takes exactly n tokens, all or none, for this call alone.
func (l *Limiter) takeExact(ctx context.Context, n int64) error {
	c := l.c
	res, err := l.send(ctx, takeRequest{Tokens: n, Key: l.key})
	if err != nil {
		return l.takeFailed(ctx, err, n)
	}
	if res.Allowed {
		c.decided(KindLimiter, l.shared.name, SourceServer, true)
		return nil
	}
	return l.denied(res.RetryAfterMS, 1, c.clock.unixNano())
}

// send sends a take and learns the capacity from its answer.
func (l *Limiter) send(ctx context.Context, req takeRequest) (takeResult, error) {
	s := l.shared
	res, ans, err := l.c.cp.take(ctx, s.name, req)
	if ans.capacity > 0 {
		s.capacity.Store(ans.capacity)
	}
	if ans.clients > 0 {
		s.clients.Store(ans.clients)
	}
	if err == nil && s.cfg.Load() == nil {
		s.fetchConfig()
	}
	return res, err
}

// takeFailed handles a take that got no answer of the bucket.
func (l *Limiter) takeFailed(ctx context.Context, err error, n int64) error {
	c := l.c
	now := c.clock.unixNano()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case isNotFound(err):
		l.store(&lease{unknown: true, start: now, expires: now + int64(unknownTTL)})
		l.shared.warnUnknown()
		c.decided(KindLimiter, l.shared.name, SourceServer, true)
		return nil
	case isForbidden(err):
		l.store(&lease{unknown: true, start: now, expires: now + int64(unknownTTL)})
		c.warnForbidden(err)
		c.decided(KindLimiter, l.shared.name, SourceServer, true)
		return nil
	case errors.Is(err, errUnreachable), isUnauthorized(err):
		c.enterDegraded(err)
		return l.allowDegraded(n, now)
	}
	return err
}

// denied caches a refusal of size tokens, whose wait the control plane
// put at retryMS, for as long as one token takes to come back.
func (l *Limiter) denied(retryMS, size, now int64) error {
	wait := ms(retryMS)
	if size > 1 {
		// retry_after_ms is for all size tokens: take off what the other
		// size-1 need.
		if lc := l.shared.cfg.Load(); lc != nil && lc.rate > 0 {
			wait -= time.Duration(float64(size-1) / lc.rate * float64(time.Second))
		} else {
			wait /= time.Duration(size)
		}
		wait = max(wait, 0)
	}
	l.store(&lease{denied: true, start: now, expires: now + int64(wait), retryAt: now + int64(wait)})
	l.c.decided(KindLimiter, l.shared.name, SourceServer, false)
	return &RetryAfterError{Err: ErrRateLimited, After: wait}
}

// store publishes a lease, unless the client went degraded or closed
// meanwhile.
func (l *Limiter) store(ls *lease) {
	if l.c.degraded.Load() || l.c.closed.Load() {
		return
	}
	l.lease.Store(ls)
}

// each calls fn for every bucket of the limit made so far.
func (s *limitShared) each(fn func(*Limiter)) {
	fn(s.root)
	s.keys.Range(func(_, v any) bool {
		fn(v.(*Limiter))
		return true
	})
}

// dropLeases forgets every lease of the limit: the tokens are lost.
func (s *limitShared) dropLeases() {
	s.each(func(l *Limiter) { l.lease.Store(nil) })
}

// exitDegraded forgets the local buckets and leases.
func (s *limitShared) exitDegraded() {
	s.each(func(l *Limiter) {
		l.lease.Store(nil)
		l.mu.Lock()
		l.local = nil
		l.mu.Unlock()
	})
}

// onConfigEvent applies a ratelimit.config or ratelimit.deleted event.
func (s *limitShared) onConfigEvent(deleted bool) {
	s.capacity.Store(0)
	if deleted {
		s.cfg.Store(nil)
	}
	s.each(func(l *Limiter) {
		l.lease.Store(nil)
		l.mu.Lock()
		l.size = 0
		l.local = nil
		l.mu.Unlock()
	})
	if !deleted {
		s.fetchConfig()
	}
}

func (s *limitShared) warnUnknown() {
	s.mu.Lock()
	warn := !s.warned
	s.warned = true
	s.mu.Unlock()
	if warn {
		s.c.log.Warn("breakwater: the control plane has no such rate limit; calls go out unlimited until it is created",
			"ratelimit", s.name)
	}
}

// fetchConfig reads the limit's config in the background.
func (s *limitShared) fetchConfig() {
	s.mu.Lock()
	if s.fetching {
		s.mu.Unlock()
		return
	}
	s.fetching = true
	s.mu.Unlock()
	done := func() {
		s.mu.Lock()
		s.fetching = false
		s.mu.Unlock()
	}
	if !s.c.goBackground(func() {
		defer done()
		ctx, cancel := s.c.requestCtx()
		defer cancel()
		v, err := s.c.cp.getLimit(ctx, s.name)
		if err != nil || v.Config.Capacity <= 0 {
			return
		}
		s.cfg.Store(&limitConfig{capacity: v.Config.Capacity, rate: v.Config.RefillPerSecond})
		s.capacity.Store(v.Config.Capacity)
	}) {
		done()
	}
}

// allowDegraded decides a limiter's call while no control plane answers.
func (l *Limiter) allowDegraded(n int64, now int64) error {
	c := l.c
	if c.failClosed(KindLimiter, l.shared.name) {
		c.decided(KindLimiter, l.shared.name, SourceDegraded, false)
		return c.refuseDegradedLimiter
	}
	l.mu.Lock()
	local := l.local
	if local == nil {
		if lc := l.shared.cfg.Load(); lc != nil {
			share := c.cfg.FleetShare
			if !c.shareSet {
				// A fair share: the limit divided by the clients the
				// control plane last counted taking from it.
				share = 1 / float64(max(l.shared.clients.Load(), 1))
			}
			local = l.shared.evicted.newLocal(l.key, max(float64(lc.capacity)*share, 1), lc.rate*share, time.Unix(0, now))
			l.local = local
		}
	}
	l.mu.Unlock()
	if local == nil { // the limit was never learned: nothing to enforce
		c.decided(KindLimiter, l.shared.name, SourceDegraded, true)
		return nil
	}
	wait, ok := local.reserve(time.Unix(0, now), n, 0)
	if !ok {
		c.decided(KindLimiter, l.shared.name, SourceDegraded, false)
		return &RetryAfterError{Err: ErrRateLimited, After: wait}
	}
	c.decided(KindLimiter, l.shared.name, SourceDegraded, true)
	return nil
}

// localNow returns the local bucket, or nil when there is none.
func (l *Limiter) localNow() *localLimiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.local
}
