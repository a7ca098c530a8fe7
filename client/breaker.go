package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater-dev/breakwater/client/internal/retry"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// answer is a cached answer of the control plane about one breaker. It is
// never changed once published; a new answer replaces it.
type answer struct {
	state   State
	allowed bool  // calls may go out with no permit
	gen     int64 // the breaker's generation the answer was given in
	expires int64 // coarse Unix ns; the answer is fresh before it
	retryAt int64 // coarse Unix ns; when refused, when a call may be allowed
	ramp    int64 // 1..99: the percent of calls let through during a slow start; 0 for all
	batch   *outcomeBatch
}

// A Breaker is a circuit breaker kept by the control plane for the whole
// fleet: it opens when the fleet's calls to a dependency fail (or are
// slow) too often, and then refuses calls until the control plane lets
// probes through.
//
// A Breaker decides from the control plane's last answer, cached for that
// answer's cache_ttl_ms: with a fresh "closed" answer, Do makes no
// network call, takes no lock and allocates nothing (Allow allocates only
// the call's done func), and the outcome is added to counters that the
// Client reports in one request for all breakers every flush interval. An open breaker refuses locally until its open
// time ends. When the answer has expired, one caller asks the control
// plane again while concurrent callers keep deciding from the expired
// answer, so no more than one caller per breaker waits on the network. In
// half-open each call asks the control plane for a probe permit, and its
// outcome is reported at once. The event stream updates answers as soon
// as the state changes anywhere in the fleet.
//
// When no control plane answers, a Breaker decides with a local breaker
// (see Config.FailClosed).
//
// Get one with Client.Breaker; the zero value is not usable. Most
// callers want Do; Allow is for calls whose end is not the end of a
// function. A Breaker is a resilience.Policy, so it composes with
// resilience.Retry, Timeout and the others. It is safe for concurrent use.
type Breaker struct {
	c    *core
	name string
	err  error // the name is not valid

	cur    atomic.Pointer[answer]
	slowNS atomic.Int64 // slow_call_duration_ms in ns; 0 until known
	cfg    atomic.Pointer[breakerConfig]
	ovr    atomic.Pointer[override] // from the last GET; nil when none
	faults atomic.Bool              // Do applies the faults of drills (ApplyFaults)

	admitted atomic.Uint64 // calls decided during slow starts: see admit
	budget   retryBudget   // the retries lent to this client

	mu          sync.Mutex // guards the fields below and answer changes
	flight      *flight
	retired     []*outcomeBatch // batches of older generations, to report once more
	local       *localBreaker   // while degraded, and until the next server answer
	fetchingCfg bool
	warned      bool // logged that the breaker is unknown
}

func newBreaker(c *core, name string) *Breaker {
	b := &Breaker{c: c, name: name}
	if !contract.ValidName(name) {
		b.err = fmt.Errorf("breakwater: breaker name %q: must match %s", name, contract.NamePattern)
	}
	return b
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// State returns the breaker's state as last learned from the control
// plane, with no network call: StateUnknown before the first answer, and
// StateNotFound when the control plane has no breaker of that name. While
// the client is degraded it is the state of the local breaker.
func (b *Breaker) State() State {
	if b.c.degraded.Load() {
		b.mu.Lock()
		l := b.local
		b.mu.Unlock()
		if l != nil {
			return l.status(b.c.clock.now()).state
		}
	}
	if a := b.cur.Load(); a != nil {
		return a.state
	}
	return StateUnknown
}

// noopDone is the done func of calls whose outcome is not reported.
var noopDone = func(error) {}

// Allow asks whether a call may go out now. When it may, Allow returns a
// nil error and a done func to call once with the call's error when the
// call ends: done measures the call's duration from Allow and counts the
// outcome; calling it again does nothing. When the call must not go out,
// the error matches ErrOpen and is a *RetryAfterError with the time until
// a call may be allowed, if known; done is then a func that does nothing,
// never nil.
//
// A nil error passed to done is a success. A non-nil one is a failure
// unless Config.IsFailure says otherwise, except that these never count:
// context.Canceled when ctx has ended (the caller gave up; a deadline
// that passed does count, since a dependency too slow for its callers is
// failing them), and ErrOpen, ErrRateLimited and resilience.ErrBulkheadFull (the
// call never reached the dependency).
//
// With a fresh cached answer Allow makes no network call. Otherwise it
// may ask the control plane, within ctx; it returns ctx's error if ctx
// ends first. The done func of an allowed call is that call's own (one
// small allocation); Do, which keeps it to itself, allocates nothing.
func (b *Breaker) Allow(ctx context.Context) (done func(error), err error) {
	t, err := b.allow(ctx)
	if t == nil {
		return noopDone, err
	}
	// Handed out: never pooled again, so a second done finds it finished
	// and cannot reach another call.
	t.pooled = false
	return t.done, nil
}

// allow decides, and returns the tracker of an allowed call whose outcome
// counts, taken from the pool, or nil.
func (b *Breaker) allow(ctx context.Context) (*tracker, error) {
	t, err := b.decide(ctx)
	if t != nil && b.budgetMaybe() {
		b.markRetry(ctx, t)
	}
	return t, err
}

// decide is allow without the retry budget.
func (b *Breaker) decide(ctx context.Context) (*tracker, error) {
	now := b.c.clock.unixNano()
	if a := b.cur.Load(); a != nil && now < a.expires {
		if a.allowed && a.batch != nil && a.ramp == 0 {
			t := getTracker()
			t.b, t.ctx, t.batch, t.start, t.mode = b, ctx, a.batch, now, modeBatch
			if h := b.c.hooks.OnDecision; h != nil {
				h(KindBreaker, b.name, SourceCache, true)
			}
			return t, nil
		}
		return b.fromAnswer(ctx, a, now, SourceCache)
	}
	return b.allowSlow(ctx, now)
}

// Do calls fn if the breaker allows it, and counts its outcome: it is
// Allow, fn, done. It returns Allow's error without calling fn, or fn's
// error. A panic in fn counts as a failure (errPanicked, unless
// Config.IsFailure says otherwise) and goes on up, after the outcome is
// counted; so does a panic in Config.IsFailure.
func (b *Breaker) Do(ctx context.Context, fn func(context.Context) error) error {
	t, err := b.allow(ctx)
	if err != nil {
		return err
	}
	if b.faults.Load() {
		if err := b.doFault(ctx); err != nil {
			if t != nil {
				t.finish(err)
			}
			return err
		}
	}
	if t == nil {
		return fn(ctx)
	}
	finished := false
	defer func() {
		if !finished {
			t.finish(errPanicked)
		}
	}()
	err = fn(ctx)
	finished = true
	t.finish(err)
	return err
}

var errPanicked = errors.New("breakwater: call panicked")

// fromAnswer decides from answer a that is not a plain "allowed" one, or
// that is stale: a refusal, an allowance, or an unknown breaker.
func (b *Breaker) fromAnswer(ctx context.Context, a *answer, now int64, src Source) (*tracker, error) {
	if a.allowed && a.ramp > 0 && !b.admit(a.ramp) {
		// Slow start: this call is in the share refused, locally, as if
		// open, until the answer is renewed. Not an outcome.
		b.c.decided(KindBreaker, b.name, src, false)
		return nil, &RetryAfterError{Err: ErrOpen, After: time.Duration(max(a.expires-now, 0))}
	}
	switch {
	case a.allowed && a.batch != nil:
		t := getTracker()
		t.b, t.ctx, t.batch, t.start, t.mode = b, ctx, a.batch, now, modeBatch
		b.c.decided(KindBreaker, b.name, src, true)
		return t, nil
	case a.allowed:
		b.c.decided(KindBreaker, b.name, src, true)
		return nil, nil
	}
	b.c.decided(KindBreaker, b.name, src, false)
	return nil, &RetryAfterError{Err: ErrOpen, After: time.Duration(max(a.retryAt-now, 0))}
}

// allowSlow decides when the cached answer is missing or expired.
func (b *Breaker) allowSlow(ctx context.Context, now int64) (*tracker, error) {
	if b.err != nil {
		return nil, b.err
	}
	c := b.c
	for {
		if c.closed.Load() {
			return nil, ErrClosed
		}
		if c.degraded.Load() {
			return b.allowDegraded(ctx, now)
		}
		b.mu.Lock()
		if a := b.cur.Load(); a != nil && now < a.expires {
			b.mu.Unlock()
			return b.fromAnswer(ctx, a, now, SourceCache)
		}
		if f := b.flight; f != nil {
			local, a := b.local, b.cur.Load()
			b.mu.Unlock()
			// Someone is asking already: decide from what is known.
			if local != nil {
				return b.allowLocal(ctx, local, now)
			}
			if a != nil {
				return b.fromAnswer(ctx, a, now, SourceCache)
			}
			select {
			case <-f.done:
				now = c.clock.unixNano()
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		f := &flight{done: make(chan struct{})}
		b.flight = f
		b.mu.Unlock()
		done, err := b.acquire(ctx)
		b.mu.Lock()
		b.flight = nil
		b.mu.Unlock()
		close(f.done)
		return done, err
	}
}

// acquire asks the control plane whether a call may go out now.
func (b *Breaker) acquire(ctx context.Context) (*tracker, error) {
	c := b.c
	d, err := c.cp.acquire(ctx, b.name)
	now := c.clock.unixNano()
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case isNotFound(err):
		b.forget(now)
		b.setUnknown(now)
		c.decided(KindBreaker, b.name, SourceServer, true)
		return nil, nil
	case isForbidden(err):
		b.setForbidden(now, err)
		c.decided(KindBreaker, b.name, SourceServer, true)
		return nil, nil
	case errors.Is(err, errUnreachable), isUnauthorized(err):
		c.enterDegraded(err)
		return b.allowDegraded(ctx, now)
	default:
		return nil, err
	}
	a := b.apply(d, now)
	if b.cfg.Load() == nil {
		b.fetchConfig()
	}
	if d.Permit != "" {
		c.decided(KindBreaker, b.name, SourceServer, true)
		t := getTracker()
		t.b, t.ctx, t.start, t.mode, t.permit, t.gen = b, ctx, now, modeProbe, d.Permit, d.Generation
		return t, nil
	}
	if d.Allowed {
		if a != nil && a.ramp > 0 && !b.admit(a.ramp) {
			c.decided(KindBreaker, b.name, SourceServer, false)
			return nil, &RetryAfterError{Err: ErrOpen, After: time.Duration(max(a.expires-now, 0))}
		}
		c.decided(KindBreaker, b.name, SourceServer, true)
		if a == nil || a.batch == nil { // an answer older than one already cached
			return nil, nil
		}
		t := getTracker()
		t.b, t.ctx, t.batch, t.start, t.mode = b, ctx, a.batch, now, modeBatch
		return t, nil
	}
	c.decided(KindBreaker, b.name, SourceServer, false)
	return nil, &RetryAfterError{Err: ErrOpen, After: ms(d.RetryAfterMS)}
}

// apply caches the control plane's decision d, received at now, unless an
// answer of a later generation is cached already. It returns the answer
// cached, or nil.
func (b *Breaker) apply(d decision, now int64) *answer {
	c := b.c
	b.mu.Lock()
	cur := b.cur.Load()
	if cur != nil && cur.state != StateNotFound && cur.gen > d.Generation && now < cur.expires {
		// An answer overtaken by a later one still fresh. A lower
		// generation when the cache is stale is a breaker made again
		// (see forget): followed.
		b.mu.Unlock()
		return nil
	}
	a := &answer{state: parseState(d.State), allowed: d.Allowed && d.Permit == "", gen: d.Generation}
	if a.allowed && d.AdmitPercent > 0 && d.AdmitPercent < 100 {
		a.ramp = d.AdmitPercent
	}
	if cfg := b.cfg.Load(); d.RetryAllowance != nil && cfg != nil {
		b.budget.lend(*d.RetryAllowance, now+int64(loanLife(withDefaults(*cfg).CacheTTLMS)))
	}
	ttl := ms(d.CacheTTLMS)
	if a.allowed && c.cfg.CacheTTL > 0 {
		ttl = c.cfg.CacheTTL
	}
	if d.Permit != "" {
		ttl = 0 // a permit is for one call
	}
	a.expires = now + int64(ttl)
	if !d.Allowed || d.Permit != "" {
		a.retryAt = now + int64(ms(d.RetryAfterMS))
	}
	if !a.allowed && d.Permit == "" && cur != nil && !cur.allowed && cur.retryAt > 0 &&
		cur.gen == d.Generation && cur.state == a.state && cur.retryAt < a.retryAt {
		// Two refusals of one generation and state are about one period
		// (each transition bumps the generation), which ends at one time
		// on the store's clock. Each estimate of that end is the wait the
		// control plane gave plus the time the answer took to arrive, so
		// the earliest is the best: answers that arrive out of order (a
		// late outcomes report's after an acquire's) must not push it
		// later (docs/design.md, "Generations never go back").
		a.retryAt = cur.retryAt
		a.expires = min(a.expires, cur.expires)
	}
	if !c.degraded.Load() {
		b.local = nil
	}
	b.publish(cur, a)
	b.mu.Unlock()
	if cur != nil {
		c.stateChanged(b.name, cur.state, a.state)
	}
	b.learnOverride(a.state)
	return a
}

// learnOverride reads the breaker again when it is forced and the
// override's end is not known, so that degraded mode keeps the override
// until then.
func (b *Breaker) learnOverride(state State) {
	if state != StateForcedOpen && state != StateForcedClosed {
		return
	}
	if ov := b.ovr.Load(); ov == nil || ov.state != state {
		b.fetchConfig()
	}
}

// publish replaces the cached answer cur with a, carrying over the
// outcome batch when the generation is the same and retiring it
// otherwise. While the client is degraded or closed, a is published
// stale, so that Allow does not decide from it. b.mu must be held.
func (b *Breaker) publish(cur, a *answer) {
	if b.c.degraded.Load() || b.c.closed.Load() {
		a.expires = 0
	}
	switch {
	case a.state == StateNotFound:
		a.batch = nil
	case cur != nil && cur.batch != nil && cur.gen == a.gen:
		a.batch = cur.batch
	default:
		a.batch = newOutcomeBatch(a.gen)
		if cur != nil && cur.batch != nil {
			b.retire(cur.batch)
		}
	}
	b.cur.Store(a)
}

// maxRetired bounds the batches of older generations kept for the next
// report: the control plane ignores them anyway.
const maxRetired = 8

func (b *Breaker) retire(old *outcomeBatch) {
	if len(b.retired) >= maxRetired {
		copy(b.retired, b.retired[1:])
		b.retired = b.retired[:len(b.retired)-1]
	}
	b.retired = append(b.retired, old)
}

// setUnknown caches that the control plane has no breaker of this name:
// calls are let through and nothing is reported, until asked again.
func (b *Breaker) setUnknown(now int64) {
	ttl := unknownTTL
	if b.c.cfg.CacheTTL > 0 {
		ttl = b.c.cfg.CacheTTL
	}
	b.mu.Lock()
	cur := b.cur.Load()
	a := &answer{state: StateNotFound, allowed: true, expires: now + int64(ttl)}
	b.publish(cur, a)
	warn := !b.warned
	b.warned = true
	b.mu.Unlock()
	if warn {
		b.c.log.Warn("breakwater: the control plane has no such breaker; calls go out unguarded until it is created",
			"breaker", b.name)
	}
}

// setForbidden caches that the token may not decide for this breaker
// (403): a configuration error, not an outage. Calls go out unguarded and
// nothing is reported, as for an unknown breaker, until asked again.
func (b *Breaker) setForbidden(now int64, err error) {
	b.c.warnForbidden(err)
	ttl := unknownTTL
	if b.c.cfg.CacheTTL > 0 {
		ttl = b.c.cfg.CacheTTL
	}
	b.mu.Lock()
	b.publish(b.cur.Load(), &answer{state: StateNotFound, allowed: true, expires: now + int64(ttl)})
	b.mu.Unlock()
}

// forget drops everything cached about the breaker, after the control
// plane deleted it (a breaker.deleted event, or a 404): its answer and
// generation, the outcomes pending for it, and its config and override.
// A breaker made again under the name starts afresh for this client,
// whatever its generation. The next Allow asks the control plane.
func (b *Breaker) forget(now int64) {
	b.mu.Lock()
	cur := b.cur.Load()
	b.retired = nil
	b.cfg.Store(nil)
	b.slowNS.Store(0)
	b.budget.drop()
	b.ovr.Store(nil)
	if cur != nil {
		b.publish(cur, &answer{state: StateNotFound, allowed: true, expires: now})
	}
	b.mu.Unlock()
}

// onStateEvent applies a breaker.state event: the breaker moved to state
// to at generation gen somewhere in the fleet, starting a slow start of
// slowStartMS when above zero.
func (b *Breaker) onStateEvent(to State, gen, slowStartMS int64) {
	c := b.c
	now := c.clock.unixNano()
	b.mu.Lock()
	cur := b.cur.Load()
	if cur == nil || (cur.state != StateNotFound && cur.gen > gen) {
		b.mu.Unlock()
		return
	}
	a := &answer{state: to, gen: gen}
	switch to {
	case StateClosed, StateForcedClosed:
		a.allowed = true
		ttl := time.Duration(0)
		if cfg := b.cfg.Load(); cfg != nil {
			ttl = ms(cfg.CacheTTLMS)
		}
		if c.cfg.CacheTTL > 0 {
			ttl = c.cfg.CacheTTL
		}
		a.expires = now + int64(ttl)
		if to == StateClosed && slowStartMS > 0 {
			// A slow start begins: admit the least share until an
			// acquire says what it is.
			a.ramp, a.expires = 1, now
		}
	default:
		// Refuse at once; the next Allow asks for the exact wait (or a
		// probe permit), while concurrent ones keep refusing.
		a.expires = now
		a.retryAt = now
		if cfg := b.cfg.Load(); cfg != nil && to == StateOpen {
			a.retryAt = now + int64(ms(cfg.OpenDurationMS))
		}
	}
	b.publish(cur, a)
	b.mu.Unlock()
	c.stateChanged(b.name, cur.state, to)
	b.learnOverride(to)
}

// expire makes the cached answer stale, so that the next Allow asks the
// control plane (or, degraded or closed, decides otherwise).
func (b *Breaker) expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.cur.Load(); cur != nil && cur.expires != 0 {
		a := *cur
		a.expires = 0
		b.cur.Store(&a)
	}
}

// fetchConfig reads the breaker's config in the background: its slow-call
// duration classifies outcomes, and the rest serves the local breaker of
// degraded mode.
func (b *Breaker) fetchConfig() {
	b.mu.Lock()
	if b.fetchingCfg {
		b.mu.Unlock()
		return
	}
	b.fetchingCfg = true
	b.mu.Unlock()
	started := b.c.goBackground(func() {
		defer func() {
			b.mu.Lock()
			b.fetchingCfg = false
			b.mu.Unlock()
		}()
		ctx, cancel := b.c.requestCtx()
		defer cancel()
		v, err := b.c.cp.getBreaker(ctx, b.name)
		if err != nil {
			return // asked again after the next answer
		}
		b.setConfig(v.Config)
		var ov *override
		if o := v.Override; o != nil {
			ov = &override{state: parseState(o.State)}
			if o.ExpiresAt != nil {
				ov.until = o.ExpiresAt.UnixNano()
			}
		}
		b.ovr.Store(ov)
	})
	if !started {
		b.mu.Lock()
		b.fetchingCfg = false
		b.mu.Unlock()
	}
}

func (b *Breaker) setConfig(cfg breakerConfig) {
	b.cfg.Store(&cfg)
	b.slowNS.Store(int64(ms(withDefaults(cfg).SlowCallDurationMS)))
}

// tracker carries one allowed call from Allow to done. Trackers are
// pooled, each with its own done func (a method value made once). Do
// takes one from the pool and puts it back after the call, so it
// allocates nothing; a tracker whose done func Allow handed out is never
// put back, so that a second call of that func finds it finished and
// cannot touch another call.
type tracker struct {
	b      *Breaker
	ctx    context.Context
	batch  *outcomeBatch // modeBatch
	retry  bool          // the call is a retry (see markRetry)
	local  *localBreaker // modeLocal
	lp     localPermit   // modeLocal
	permit string        // modeProbe
	gen    int64         // modeProbe
	start  int64         // coarse Unix ns
	mode   uint8
	stripe uint32
	pooled bool        // put back into the pool when finished
	fin    atomic.Bool // finish ran
	done   func(error) // t.finish
}

const (
	modeBatch uint8 = iota + 1 // count in the batch, report later
	modeProbe                  // report at once with the permit
	modeLocal                  // record in the local breaker
)

var (
	trackerSeq atomic.Uint32
	trackers   sync.Pool
)

func init() {
	trackers.New = func() any {
		t := &tracker{stripe: trackerSeq.Add(1)}
		t.done = t.finish
		return t
	}
}

func getTracker() *tracker {
	t := trackers.Get().(*tracker)
	t.pooled = true
	return t
}

// finish is the done func of an allowed call. It counts the outcome once;
// later calls do nothing. When Config.IsFailure panics, the outcome counts
// as a failure and the panic goes on up once the tracker is settled.
func (t *tracker) finish(err error) {
	if t.fin.Swap(true) {
		return
	}
	b := t.b
	c := b.c
	now := c.clock.unixNano()
	dur := now - t.start
	count, success := true, err == nil
	var panicked any
	if err != nil {
		count = c.isFailureSafe(t.ctx, err, &panicked)
	}
	if count {
		switch t.mode {
		case modeBatch:
			t.batch.add(c, t.stripe, success, t.retry, dur, b.slowNS.Load())
		case modeProbe:
			b.reportProbe(t.permit, t.gen, success, dur)
		case modeLocal:
			var r int64
			if t.retry {
				r = 1
			}
			t.local.recordRetries(time.Unix(0, now), t.lp, success, time.Duration(dur), 1, r)
		}
	}
	if t.pooled {
		*t = tracker{stripe: t.stripe, done: t.done}
		trackers.Put(t)
	}
	if panicked != nil {
		panic(panicked)
	}
}

// reportProbe reports a probe's outcome at once, in the background, and
// caches the answer.
func (b *Breaker) reportProbe(permit string, gen int64, success bool, dur int64) {
	c := b.c
	out := []outcome{{Success: success, DurationMS: durationMS(dur), Count: 1, Permit: permit, Generation: gen}}
	c.goBackground(func() {
		ctx, cancel := c.requestCtx()
		defer cancel()
		d, err := c.cp.report(ctx, b.name, newIdempotencyKey(), out)
		switch {
		case err == nil:
			b.apply(d, c.clock.unixNano())
		case isNotFound(err):
			b.forget(c.clock.unixNano())
		case isForbidden(err):
			c.warnForbidden(err)
		case errors.Is(err, errUnreachable), isUnauthorized(err):
			c.enterDegraded(err)
		}
	})
}

// override is an operator's override of a breaker as the control plane
// last showed it (GET): its state and when it ends.
type override struct {
	state State
	until int64 // Unix ns; 0 when it never ends
}

// enterDegraded makes the breaker's local breaker from what the control
// plane last said, and makes the cached answer stale so that every Allow
// decides locally.
func (b *Breaker) enterDegraded(now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cfg := defaultBreakerConfig()
	if p := b.cfg.Load(); p != nil {
		cfg = *p
	}
	t := time.Unix(0, now)
	local := newLocalBreaker(cfg, t)
	if cur := b.cur.Load(); cur != nil {
		switch cur.state {
		case StateOpen:
			local.trip(t, time.Unix(0, max(cur.retryAt, now+1)), "open at the control plane")
		case StateForcedOpen, StateForcedClosed:
			// An operator's override holds until it ends, as the last
			// read of the breaker said; when that is not known, or it
			// never ends, until a control plane answers again.
			var until time.Time
			if ov := b.ovr.Load(); ov != nil && ov.state == cur.state && ov.until != 0 {
				until = time.Unix(0, ov.until)
			}
			local.force(t, cur.state, until)
		}
		a := *cur
		a.expires = 0
		b.cur.Store(&a)
	}
	b.local = local
}

// allowDegraded decides while no control plane answers.
func (b *Breaker) allowDegraded(ctx context.Context, now int64) (*tracker, error) {
	c := b.c
	if c.failClosed(KindBreaker, b.name) {
		c.decided(KindBreaker, b.name, SourceDegraded, false)
		return nil, c.refuseDegradedBreaker
	}
	b.mu.Lock()
	local := b.local
	if local == nil {
		b.mu.Unlock()
		b.enterDegraded(now)
		b.mu.Lock()
		local = b.local
	}
	b.mu.Unlock()
	return b.allowLocal(ctx, local, now)
}

// allowLocal decides with the local breaker.
func (b *Breaker) allowLocal(ctx context.Context, local *localBreaker, now int64) (*tracker, error) {
	p, err := local.allow(time.Unix(0, now))
	if err != nil {
		b.c.decided(KindBreaker, b.name, SourceDegraded, false)
		return nil, err
	}
	b.c.decided(KindBreaker, b.name, SourceDegraded, true)
	t := getTracker()
	t.b, t.ctx, t.local, t.lp, t.start, t.mode = b, ctx, local, p, now, modeLocal
	return t, nil
}

// pending takes the outcomes of the breaker to report: those of retired
// generations first, then the current one's.
func (b *Breaker) pending() []outcome {
	b.mu.Lock()
	retired := b.retired
	b.retired = nil
	cur := b.cur.Load()
	b.mu.Unlock()
	var outs []outcome
	for _, ob := range retired {
		outs = ob.drain(outs)
	}
	if cur != nil && cur.batch != nil {
		outs = cur.batch.drain(outs)
	}
	return outs
}

// urgent reports whether the breaker's pending outcomes must go out at
// the end of this flush interval rather than wait as fast successes only
// (Config.SuccessFlushInterval): a failure, a slow call or a retry is
// pending, or outcomes of a generation that ended.
func (b *Breaker) urgent() bool {
	b.mu.Lock()
	retired := len(b.retired) > 0
	b.mu.Unlock()
	if retired {
		return true
	}
	cur := b.cur.Load()
	return cur != nil && cur.batch != nil && cur.batch.urgent.Load()
}

// report sends outs and caches the answer.
func (b *Breaker) report(outs []outcome) error {
	c := b.c
	for len(outs) > 0 {
		n := min(len(outs), contract.MaxOutcomes)
		ctx, cancel := c.requestCtx() // Close cancels c.ctx only after the last flush
		d, err := c.cp.report(ctx, b.name, newIdempotencyKey(), outs[:n])
		cancel()
		switch {
		case err == nil:
			b.apply(d, c.clock.unixNano())
		case isNotFound(err):
			b.forget(c.clock.unixNano())
			return err
		case isForbidden(err):
			c.warnForbidden(err)
			return err
		case errors.Is(err, errUnreachable), isUnauthorized(err):
			c.enterDegraded(err)
			return err
		default:
			return err
		}
		outs = outs[n:]
	}
	return nil
}

// Record counts n like calls that have already happened, each taking d,
// whose outcome reaches the client without Allow's done func: a sidecar
// relaying what its callers report, say. They join the next batched report
// when the breaker's cached answer lets calls through (closed or forced),
// and the local breaker while the client is degraded; otherwise (open, half
// open, not yet known) they are dropped, as the control plane would ignore
// them. It returns an error only for n < 1 or d < 0.
func (b *Breaker) Record(success bool, d time.Duration, n int64) error {
	if n < 1 || d < 0 {
		return fmt.Errorf("breakwater: Record(%v, %v, %d): want n >= 1 and d >= 0", success, d, n)
	}
	return b.record(success, d, n, 0)
}

// RecordRetries is Record for n calls of which retries (0..n) were
// retries: they count against the breaker's retry budget (see
// docs/semantics.md, "The fleet's retry budget"). It returns an error
// only for n < 1, d < 0 or retries out of 0..n.
func (b *Breaker) RecordRetries(success bool, d time.Duration, n, retries int64) error {
	if n < 1 || d < 0 || retries < 0 || retries > n {
		return fmt.Errorf("breakwater: RecordRetries(%v, %v, %d, %d): want n >= 1, d >= 0 and 0 <= retries <= n", success, d, n, retries)
	}
	return b.record(success, d, n, retries)
}

func (b *Breaker) record(success bool, d time.Duration, n, retries int64) error {
	c := b.c
	if c.degraded.Load() {
		b.mu.Lock()
		l := b.local
		b.mu.Unlock()
		if l != nil {
			// Counted in the local breaker's current generation: in
			// closed or forced states, as the control plane would.
			now := c.clock.now()
			l.recordRetries(now, localPermit{gen: l.status(now).gen}, success, d, n, retries)
		}
		return nil
	}
	a := b.cur.Load()
	if a == nil || !a.allowed || a.batch == nil {
		return nil
	}
	t := trackerSeq.Add(1)
	if n > retries {
		a.batch.addN(c, t, success, false, int64(d), b.slowNS.Load(), uint64(n-retries))
	}
	if retries > 0 {
		a.batch.addN(c, t, success, true, int64(d), b.slowNS.Load(), uint64(retries))
	}
	return nil
}

// ApplyFaults turns on (or off) the faults of drills for Do:
// a call a fault aborts returns a *FaultError without calling fn and
// counts as a failure; a delayed call waits first. A Transport applies
// faults whatever ApplyFaults says. Off by default.
func (b *Breaker) ApplyFaults(on bool) { b.faults.Store(on) }

// doFault applies the fault of b's dependency to a call of Do: it waits
// the delay, and returns the error of an aborted call, or nil.
func (b *Breaker) doFault(ctx context.Context) error {
	f := b.c.fault(b.name)
	if f == nil {
		return nil
	}
	delay, abort := f.roll()
	if delay > 0 {
		if err := retry.Sleep(ctx, delay); err != nil {
			return err
		}
	}
	if abort {
		return &FaultError{Name: b.name, Status: f.abortStatus, Reason: f.reason}
	}
	return nil
}
