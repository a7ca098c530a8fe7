package client

import (
	"sync"
	"time"
)

// localPermit is what localBreaker.allow grants and localBreaker.record
// takes back: the generation (state) the call was let through in and, for
// a half-open probe, the probe's number. The zero localPermit matches no
// generation, so an outcome reported with it is ignored.
type localPermit struct {
	gen   uint64
	probe uint64 // 0 when not a probe
}

// isProbe reports whether p is a half-open probe permit.
func (p localPermit) isProbe() bool { return p.probe != 0 }

// A localBreaker is an in-process circuit breaker with the control plane's
// semantics, for when the control plane cannot be reached. It follows the
// same state machine as the store's scripts, decision for decision:
//
//   - closed: every call is allowed and counted in the window; the breaker
//     opens when ConsecutiveFailures failures come in a row (if set), or,
//     once the window holds MinimumCalls calls, when the failure rate or
//     the slow-call rate reaches its threshold. Opening empties the window.
//   - open: every call is refused with ErrOpen until OpenDurationMS has
//     passed; the first allow after that moves it to half_open.
//   - half_open: at most HalfOpenMaxCalls probe permits are out at once,
//     each given back if not reported within ProbeTimeoutMS. A failed or
//     slow probe opens the breaker again; HalfOpenMaxCalls successful
//     probes close it, with an empty window.
//   - an operator's override (force): forced_open refuses every call,
//     forced_closed allows every call and keeps counting it in the window
//     without ever tripping. The override ends at its expiry, if it has
//     one, and the breaker is then closed with an empty window.
//
// Every transition moves a generation counter, and an outcome reported
// with a permit of another generation is ignored, so calls let through
// under a state that no longer holds never count against the new one.
//
// It is also the reference model the control plane's Lua scripts are
// checked against: a test runs both on the same random sequences of
// acquires, reports, overrides, resets, config changes and time steps,
// and compares every decision and every state (see
// localbreaker_scripts_test.go and docs/local-breaker.md). Where they
// differ by design:
//
//   - the clock: the scripts read Redis TIME in milliseconds; the local
//     breaker takes time as a parameter, in nanoseconds, and never goes
//     back (an earlier time counts as the latest seen);
//   - generations: the local breaker's count from 1 in each local breaker
//     and never leave the process; they are not the control plane's
//     generation of the breaker, and permits are localPermit values, not
//     strings;
//   - the answer's wire fields (retry_after_ms, cache_ttl_ms) are the
//     control plane's; the local breaker says when a call may be allowed
//     in its refusal's RetryAfterError.
//
// Time is a parameter of every method, as in x/time/rate's AllowN(t, n):
// the breaker never reads a clock, and a time earlier than one already
// seen is treated as that time. Make one with newLocalBreaker; it is safe
// for concurrent use.
type localBreaker struct {
	mu sync.Mutex

	// config, changed only by reconfigure
	cfg          breakerConfig
	slowCall     time.Duration
	openDuration time.Duration
	probeTimeout time.Duration

	latest    time.Time // the latest time seen
	state     State     // the state under the override, if any
	override  State     // StateForcedOpen or StateForcedClosed; StateUnknown when none
	ovUntil   time.Time // when the override ends; zero when never
	gen       uint64
	since     time.Time
	openUntil time.Time // while open
	reason    string    // of the last transition

	win    window
	consec int64 // failures in a row, in closed

	probes   []probe // outstanding half-open permits
	probeSeq uint64
	probeOK  int64 // successful probes in this half-open

	transitions map[[2]State]int64 // from, to (effective states); nil until the first

	// slow start (docs/semantics.md): when half-open last closed the
	// breaker (zero: no ramp), and the calls the window held at the last
	// trip from closed
	ssAt   time.Time
	ssBase int64

	// retry budget: retries lent since lentAt, and in the CacheTTLMS
	// before it
	lentA, lentB int64
	lentAt       time.Time
}

type probe struct {
	id      uint64
	expires time.Time
}

// newLocalBreaker returns a closed breaker with an empty window, using cfg
// with its zero fields defaulted (see breakerConfig).
func newLocalBreaker(cfg breakerConfig, now time.Time) *localBreaker {
	cfg = withDefaults(cfg)
	b := &localBreaker{
		latest: now,
		state:  StateClosed,
		gen:    1,
		since:  now,
		win:    newWindow(cfg.Window),
	}
	b.setConfig(cfg)
	b.win.reset(now)
	return b
}

// allow reports whether a call may go out at now. It returns a permit to
// hand back to record with the call's outcome, or an error that matches
// ErrOpen: a *RetryAfterError saying when a call may be allowed (when open
// ends, or when the first outstanding probe permit expires).
func (b *localBreaker) allow(now time.Time) (localPermit, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.tick(now)
	switch b.override {
	case StateForcedOpen:
		var wait time.Duration
		if !b.ovUntil.IsZero() {
			wait = b.ovUntil.Sub(now)
		}
		return localPermit{}, &RetryAfterError{Err: ErrOpen, After: wait}
	case StateForcedClosed:
		return localPermit{gen: b.gen}, nil
	}
	switch b.state {
	case StateClosed:
		return localPermit{gen: b.gen}, nil
	case StateOpen:
		if now.Before(b.openUntil) {
			return localPermit{}, &RetryAfterError{Err: ErrOpen, After: b.openUntil.Sub(now)}
		}
		b.transition(now, StateHalfOpen, "open_duration elapsed")
	}
	// half-open
	live := b.probes[:0]
	for _, p := range b.probes {
		if p.expires.After(now) {
			live = append(live, p)
		}
	}
	clear(b.probes[len(live):])
	b.probes = live
	if int64(len(b.probes)) < b.cfg.HalfOpenMaxCalls {
		b.probeSeq++
		b.probes = append(b.probes, probe{id: b.probeSeq, expires: now.Add(b.probeTimeout)})
		return localPermit{gen: b.gen, probe: b.probeSeq}, nil
	}
	first := b.probes[0].expires
	for _, p := range b.probes[1:] {
		if p.expires.Before(first) {
			first = p.expires
		}
	}
	return localPermit{}, &RetryAfterError{Err: ErrOpen, After: first.Sub(now)}
}

// record reports the outcome of a call allow let through with p: whether
// it succeeded and how long it took. It reports whether the outcome was
// applied; it is ignored when p belongs to another generation, when p is
// a probe permit that expired or was already reported, and when p is the
// zero localPermit.
func (b *localBreaker) record(now time.Time, p localPermit, success bool, dur time.Duration) bool {
	return b.recordN(now, p, success, dur, 1)
}

// recordN is record for n like calls let through with p (n is 1 for a
// probe permit). It applies all n or none.
func (b *localBreaker) recordN(now time.Time, p localPermit, success bool, dur time.Duration, n int64) bool {
	return b.recordRetries(now, p, success, dur, n, 0)
}

// recordRetries is recordN for n like calls of which r (0..n) were
// retries: they count in the window's retries, against the retry budget.
func (b *localBreaker) recordRetries(now time.Time, p localPermit, success bool, dur time.Duration, n, r int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.tick(now)
	if p.gen != b.gen {
		return false
	}
	slow := dur >= b.slowCall
	if p.isProbe() {
		if b.state != StateHalfOpen || !b.settleProbe(now, p.probe) {
			return false
		}
		switch {
		case !success:
			b.transition(now, StateOpen, "probe failed")
		case slow:
			b.transition(now, StateOpen, "probe slow")
		default:
			b.probeOK++
			if b.probeOK >= b.cfg.HalfOpenMaxCalls {
				b.transition(now, StateClosed, "probes succeeded")
			}
		}
		return true
	}
	if b.state != StateClosed && b.override == StateUnknown {
		return false
	}
	b.win.add(now, !success, slow, n, r)
	if success {
		b.consec = 0
	} else {
		b.consec += n
	}
	b.maybeTrip(now)
	return true
}

// unforce ends the override, if any, at now: the breaker is closed with
// an empty window.
func (b *localBreaker) unforce(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.tick(now)
	if b.override != StateUnknown {
		b.endOverride(now, "override ended")
	}
}

// reset closes the breaker at now, ending any override, with an empty
// window, and starts a new generation whatever the state was.
func (b *localBreaker) reset(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.tick(now)
	if from := b.effective(); from != StateClosed {
		b.count(from, StateClosed)
	}
	b.override, b.ovUntil = StateUnknown, time.Time{}
	b.state, b.since, b.reason = StateClosed, now, "reset"
	b.ssAt = time.Time{}
	b.gen++
	b.clearProbes()
	b.openUntil = time.Time{}
	b.win.reset(now)
	b.consec = 0
}

// reconfigure replaces the config at now, keeping the state: the window
// keeps the calls that fit in the new one (none when its type changed),
// and a closed breaker trips at once if they say so.
func (b *localBreaker) reconfigure(now time.Time, cfg breakerConfig) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.tick(now)
	cfg = withDefaults(cfg)
	typeChanged := cfg.Window.Type != b.cfg.Window.Type
	b.setConfig(cfg)
	if typeChanged {
		b.win = newWindow(cfg.Window)
		b.win.reset(now)
		b.consec = 0
	} else {
		b.win = b.win.resized(cfg.Window.Size)
	}
	b.maybeTrip(now)
}

// setConfig sets cfg, with defaults, and what is derived from it. b.mu
// must be held, or b not yet shared.
func (b *localBreaker) setConfig(cfg breakerConfig) {
	b.cfg = cfg
	b.slowCall = ms(cfg.SlowCallDurationMS)
	b.openDuration = ms(cfg.OpenDurationMS)
	b.probeTimeout = ms(cfg.ProbeTimeoutMS)
}

// trip opens the breaker at now until until, whatever its state, as when
// the control plane last said it was open until then. An until not after
// now opens it with OpenDurationMS.
func (b *localBreaker) trip(now, until time.Time, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.tick(now)
	b.transition(now, StateOpen, reason)
	if until.After(now) {
		b.openUntil = until
	}
}

// force sets an operator's override at now: state is
// StateForcedOpen or StateForcedClosed, until its end (zero:
// never). A new override moves the generation, as the control plane's
// does, unless it repeats the one in force.
func (b *localBreaker) force(now time.Time, state State, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.tick(now)
	b.ovUntil = until
	if b.override == state {
		return
	}
	b.count(b.effective(), state)
	b.override = state
	b.state = StateClosed
	b.since = now
	b.reason = "override"
	b.gen++
	b.clearProbes()
	b.openUntil = time.Time{}
}

// endOverride ends the override at now: closed, with an empty window.
// b.mu must be held.
func (b *localBreaker) endOverride(now time.Time, reason string) {
	b.count(b.override, StateClosed)
	b.override, b.ovUntil = StateUnknown, time.Time{}
	b.state, b.since, b.reason = StateClosed, now, reason
	b.ssAt = time.Time{}
	b.gen++
	b.clearProbes()
	b.openUntil = time.Time{}
	b.win.reset(now)
	b.consec = 0
}

// count records a change of the effective state. b.mu must be held.
func (b *localBreaker) count(from, to State) {
	if b.transitions == nil {
		b.transitions = map[[2]State]int64{}
	}
	b.transitions[[2]State{from, to}]++
}

// clearProbes forgets the outstanding probe permits and the probes that
// succeeded. b.mu must be held.
func (b *localBreaker) clearProbes() {
	clear(b.probes)
	b.probes = b.probes[:0]
	b.probeOK = 0
}

// localBreakerStatus is what localBreaker.status returns.
type localBreakerStatus struct {
	state     State
	gen       uint64    // moves at every transition
	since     time.Time // of the last transition
	openUntil time.Time // zero unless open
	reason    string    // of the last transition; empty before the first

	calls, failures, slowCalls int64 // in the window
	retries                    int64 // in the window

	admitPercent   int64     // 1..100: below 100 only during a slow start
	slowStartUntil time.Time // when a running slow start ends; zero when none
	probes         int       // outstanding probe permits, expired ones included

	override   State     // the override's state; StateUnknown when none
	ovUntil    time.Time // when the override ends; zero when never or none
	firstProbe time.Time // when the first unexpired probe permit expires; zero when none

	transitions map[[2]State]int64 // changes of the effective state so far
}

// status returns the breaker's state at now, without the transition to
// half_open that the next allow may make.
func (b *localBreaker) status(now time.Time) localBreakerStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tick(now)
	s := localBreakerStatus{
		state:     b.effective(),
		gen:       b.gen,
		since:     b.since,
		reason:    b.reason,
		calls:     b.win.calls,
		failures:  b.win.fails,
		slowCalls: b.win.slows,
		retries:   b.win.rets,
		probes:    len(b.probes),
		override:  b.override,
		ovUntil:   b.ovUntil,
	}
	for _, p := range b.probes {
		if p.expires.After(b.latest) && (s.firstProbe.IsZero() || p.expires.Before(s.firstProbe)) {
			s.firstProbe = p.expires
		}
	}
	if len(b.transitions) > 0 {
		s.transitions = make(map[[2]State]int64, len(b.transitions))
		for k, v := range b.transitions {
			s.transitions[k] = v
		}
	}
	if b.state == StateOpen {
		s.openUntil = b.openUntil
	}
	s.admitPercent = b.admit(b.latest)
	if s.admitPercent < 100 {
		s.slowStartUntil = b.ssAt.Add(ms(b.cfg.SlowStartMS))
	}
	return s
}

// admit is the percent of calls let through at now: 100, but for
// SlowStartMS after half-open closed the breaker, a ramp from the share
// HalfOpenMaxCalls was of the calls the window held at the trip (at
// least 1) up to 100, in whole milliseconds as the scripts count. b.mu
// must be held. See docs/semantics.md ("Slow start").
func (b *localBreaker) admit(now time.Time) int64 {
	ss := b.cfg.SlowStartMS
	if b.effective() != StateClosed || ss <= 0 || b.ssAt.IsZero() {
		return 100
	}
	e := now.UnixMilli() - b.ssAt.UnixMilli()
	if e >= ss {
		return 100
	}
	e = max(e, 0)
	base := max(b.ssBase, 1)
	start := min(max((100*b.cfg.HalfOpenMaxCalls+base-1)/base, 1), 100)
	return start + (100-start)*e/ss
}

// retryLeft is how many more retries the budget allows at now, from this
// breaker's window alone (no loans): what a client that reaches no
// control plane may still retry. It is -1 when there is no budget.
func (b *localBreaker) retryLeft(now time.Time) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tick(now)
	if !b.cfg.HasRetryBudget() {
		return -1
	}
	return max(b.cfg.RetryBudget(b.win.calls)-b.win.rets, 0)
}

// lend settles spent retries against what was lent before and lends the
// reporter of recorded calls its share of the retry budget left at now,
// as the scripts answer a report with retry_allowance: -1 when there is
// no budget. See docs/semantics.md ("The fleet's retry budget").
func (b *localBreaker) lend(now time.Time, recorded, spent int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.tick(now)
	c := &b.cfg
	if !c.HasRetryBudget() {
		return -1
	}
	ttl := c.CacheTTLMS
	switch el := now.UnixMilli() - b.lentAt.UnixMilli(); {
	case b.lentAt.IsZero() || el >= 2*ttl:
		b.lentA, b.lentB, b.lentAt = 0, 0, now
	case el >= ttl:
		b.lentB, b.lentA, b.lentAt = b.lentA, 0, now
	}
	settle := min(spent, b.lentB)
	b.lentB -= settle
	b.lentA = max(b.lentA-(spent-settle), 0)
	budget := c.RetryBudget(b.win.calls)
	left := budget - b.win.rets - b.lentA - b.lentB
	if left <= 0 || recorded == 0 {
		return 0
	}
	calls := max(b.win.calls, recorded)
	share := min((budget*recorded+calls-1)/calls, left)
	b.lentA += share
	return share
}

// tick moves the window to now, or to the latest time seen if now is
// earlier, and returns that time. b.mu must be held.
func (b *localBreaker) tick(now time.Time) time.Time {
	if now.Before(b.latest) {
		now = b.latest
	}
	b.latest = now
	if b.override != StateUnknown && !b.ovUntil.IsZero() && !now.Before(b.ovUntil) {
		b.endOverride(now, "override expired")
	}
	b.win.advance(now)
	return now
}

// effective returns the state that decides: the override's, if any.
// b.mu must be held.
func (b *localBreaker) effective() State {
	if b.override != StateUnknown {
		return b.override
	}
	return b.state
}

// maybeTrip opens a closed breaker whose window says so. b.mu must be held.
func (b *localBreaker) maybeTrip(now time.Time) {
	c := &b.cfg
	w := &b.win
	if b.override != StateUnknown || b.state != StateClosed {
		return
	}
	switch {
	case c.ConsecutiveFailures > 0 && b.consec >= c.ConsecutiveFailures:
		b.transition(now, StateOpen, "consecutive_failures")
	case w.calls >= c.MinimumCalls && w.fails*100 >= c.FailureRateThreshold*w.calls:
		b.transition(now, StateOpen, "failure_rate")
	case w.calls >= c.MinimumCalls && w.slows*100 >= c.SlowCallRateThreshold*w.calls:
		b.transition(now, StateOpen, "slow_call_rate")
	}
}

// settleProbe removes the unexpired probe id and reports whether it was
// there. b.mu must be held.
func (b *localBreaker) settleProbe(now time.Time, id uint64) bool {
	for i, p := range b.probes {
		if p.id == id {
			b.probes[i] = b.probes[len(b.probes)-1]
			b.probes[len(b.probes)-1] = probe{}
			b.probes = b.probes[:len(b.probes)-1]
			return p.expires.After(now)
		}
	}
	return false
}

// transition moves the breaker to state to and starts a new generation.
// Opening and closing empty the window. b.mu must be held.
func (b *localBreaker) transition(now time.Time, to State, reason string) {
	from := b.effective()
	if to == StateOpen && from == StateClosed {
		b.ssBase = b.win.calls
	}
	b.ssAt = time.Time{}
	if to == StateClosed && from == StateHalfOpen {
		b.ssAt = now
	}
	b.count(from, to)
	b.state = to
	b.since = now
	b.reason = reason
	b.gen++
	b.clearProbes()
	b.openUntil = time.Time{}
	switch to {
	case StateOpen:
		b.openUntil = now.Add(b.openDuration)
		b.win.reset(now)
		b.consec = 0
	case StateClosed:
		b.win.reset(now)
		b.consec = 0
	}
}

// window counts the calls, failures and slow calls of a sliding window:
// either the last size seconds, in one bucket per second, or the last size
// calls. The zero window is not usable; make one with newWindow.
type window struct {
	size                      int64
	calls, fails, slows, rets int64

	// time window: buckets[s mod size] counts second s, for the seconds
	// in (last-size, last]
	buckets []bucket
	last    int64

	// count window: kinds is a ring of the last calls, 2*failed + slow,
	// next is where the next call goes
	kinds []uint8
	next  int
}

type bucket struct{ calls, fails, slows, rets int64 }

func newWindow(w breakerWindow) window {
	if w.Type == windowCount {
		return window{size: w.Size, kinds: make([]uint8, 0, w.Size)}
	}
	return window{size: w.Size, buckets: make([]bucket, w.Size)}
}

// second returns the Unix second now falls in, rounding down.
func second(now time.Time) int64 { return now.Unix() }

// advance drops from a time window the seconds that are out of it at now.
// Times before the latest one seen change nothing.
func (w *window) advance(now time.Time) {
	if w.buckets == nil {
		return
	}
	cur := second(now)
	if cur <= w.last {
		return
	}
	if cur-w.last >= w.size {
		clear(w.buckets)
		w.calls, w.fails, w.slows, w.rets = 0, 0, 0, 0
	} else {
		for s := w.last + 1; s <= cur; s++ {
			bk := &w.buckets[mod(s, w.size)]
			w.calls -= bk.calls
			w.fails -= bk.fails
			w.slows -= bk.slows
			w.rets -= bk.rets
			*bk = bucket{}
		}
	}
	w.last = cur
}

// add counts n like calls at now, which advance has moved the window to,
// r of them retries: in a count window the n-r others come first.
func (w *window) add(now time.Time, failed, slow bool, n, r int64) {
	var f, s int64
	if failed {
		f = 1
	}
	if slow {
		s = 1
	}
	if w.buckets != nil {
		bk := &w.buckets[mod(w.last, w.size)]
		bk.calls += n
		bk.fails += f * n
		bk.slows += s * n
		bk.rets += r
		w.calls += n
		w.fails += f * n
		w.slows += s * n
		w.rets += r
		return
	}
	kind := uint8(2*f + s)
	w.addRun(kind, n-r)
	w.addRun(kind|4, r)
}

// addRun adds n calls of one kind to a count window: only the last size
// calls stay.
func (w *window) addRun(kind uint8, n int64) {
	for range min(n, w.size) {
		if int64(len(w.kinds)) < w.size {
			w.kinds = append(w.kinds, kind)
		} else {
			w.drop(w.kinds[w.next])
			w.kinds[w.next] = kind
			w.next = (w.next + 1) % int(w.size)
		}
		w.count(kind)
	}
}

// count and drop add and remove one call of a count window's kind.
func (w *window) count(k uint8) {
	w.calls++
	w.fails += int64(k >> 1 & 1)
	w.slows += int64(k & 1)
	w.rets += int64(k >> 2)
}

func (w *window) drop(k uint8) {
	w.calls--
	w.fails -= int64(k >> 1 & 1)
	w.slows -= int64(k & 1)
	w.rets -= int64(k >> 2)
}

// resized returns the window with size as its size, of the same type,
// holding the calls of w that fit: the seconds in (last-size, last] of a
// time window, the last size calls of a count window.
func (w *window) resized(size int64) window {
	if w.buckets != nil {
		nw := window{size: size, buckets: make([]bucket, size), last: w.last}
		for s := w.last - min(size, w.size) + 1; s <= w.last; s++ {
			bk := w.buckets[mod(s, w.size)]
			nw.buckets[mod(s, size)] = bk
			nw.calls += bk.calls
			nw.fails += bk.fails
			nw.slows += bk.slows
			nw.rets += bk.rets
		}
		return nw
	}
	// The calls oldest first, then the last size of them.
	calls := make([]uint8, 0, len(w.kinds))
	if int64(len(w.kinds)) < w.size {
		calls = append(calls, w.kinds...)
	} else {
		calls = append(calls, w.kinds[w.next:]...)
		calls = append(calls, w.kinds[:w.next]...)
	}
	if int64(len(calls)) > size {
		calls = calls[int64(len(calls))-size:]
	}
	nw := window{size: size, kinds: make([]uint8, 0, size)}
	for _, k := range calls {
		nw.kinds = append(nw.kinds, k)
		nw.count(k)
	}
	if int64(len(nw.kinds)) == size {
		nw.next = 0
	}
	return nw
}

// reset empties the window as of now.
func (w *window) reset(now time.Time) {
	w.calls, w.fails, w.slows, w.rets = 0, 0, 0, 0
	clear(w.buckets)
	w.last = second(now)
	w.kinds = w.kinds[:0]
	w.next = 0
}

// mod returns a mod n in [0, n).
func mod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}
