package client

import (
	"sync"
	"time"
)

// breakerState is a local breaker's state. String returns the API's name.
type breakerState uint8

const (
	stateClosed breakerState = iota
	stateOpen
	stateHalfOpen
	stateForcedOpenLocal
	stateForcedClosedLocal
)

func (s breakerState) String() string {
	switch s {
	case stateClosed:
		return "closed"
	case stateOpen:
		return "open"
	case stateHalfOpen:
		return "half_open"
	case stateForcedOpenLocal:
		return "forced_open"
	case stateForcedClosedLocal:
		return "forced_closed"
	}
	return "unknown"
}

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
// Time is a parameter of every method, as in x/time/rate's AllowN(t, n):
// the breaker never reads a clock, and a time earlier than one already
// seen is treated as that time. Make one with newLocalBreaker; it is safe
// for concurrent use.
type localBreaker struct {
	mu sync.Mutex

	// config, fixed at creation
	cfg          BreakerConfig
	slowCall     time.Duration
	openDuration time.Duration
	probeTimeout time.Duration

	latest    time.Time    // the latest time seen
	state     breakerState // the state under the override, if any
	override  breakerState // stateForcedOpenLocal or stateForcedClosedLocal; stateClosed when none
	ovUntil   time.Time    // when the override ends; zero when never
	gen       uint64
	since     time.Time
	openUntil time.Time // while open
	reason    string    // of the last transition

	win    window
	consec int64 // failures in a row, in closed

	probes   []probe // outstanding half-open permits
	probeSeq uint64
	probeOK  int64 // successful probes in this half-open
}

type probe struct {
	id      uint64
	expires time.Time
}

// newLocalBreaker returns a closed breaker with an empty window, using cfg
// with its zero fields defaulted (see BreakerConfig).
func newLocalBreaker(cfg BreakerConfig, now time.Time) *localBreaker {
	cfg = cfg.withDefaults()
	b := &localBreaker{
		cfg:          cfg,
		slowCall:     ms(cfg.SlowCallDurationMS),
		openDuration: ms(cfg.OpenDurationMS),
		probeTimeout: ms(cfg.ProbeTimeoutMS),
		latest:       now,
		state:        stateClosed,
		gen:          1,
		since:        now,
		win:          newWindow(cfg.Window),
	}
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
	case stateForcedOpenLocal:
		var wait time.Duration
		if !b.ovUntil.IsZero() {
			wait = b.ovUntil.Sub(now)
		}
		return localPermit{}, &RetryAfterError{Err: ErrOpen, After: wait}
	case stateForcedClosedLocal:
		return localPermit{gen: b.gen}, nil
	}
	switch b.state {
	case stateClosed:
		return localPermit{gen: b.gen}, nil
	case stateOpen:
		if now.Before(b.openUntil) {
			return localPermit{}, &RetryAfterError{Err: ErrOpen, After: b.openUntil.Sub(now)}
		}
		b.transition(now, stateHalfOpen, "open_duration elapsed")
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
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.tick(now)
	if p.gen != b.gen {
		return false
	}
	slow := dur >= b.slowCall
	if p.isProbe() {
		if b.state != stateHalfOpen || !b.settleProbe(now, p.probe) {
			return false
		}
		switch {
		case !success:
			b.transition(now, stateOpen, "probe failed")
		case slow:
			b.transition(now, stateOpen, "probe slow")
		default:
			b.probeOK++
			if b.probeOK >= b.cfg.HalfOpenMaxCalls {
				b.transition(now, stateClosed, "probes succeeded")
			}
		}
		return true
	}
	if b.state != stateClosed && b.override == stateClosed {
		return false
	}
	b.win.add(now, !success, slow)
	if success {
		b.consec = 0
	} else {
		b.consec++
	}
	b.maybeTrip(now)
	return true
}

// trip opens the breaker at now until until, whatever its state, as when
// the control plane last said it was open until then. An until not after
// now opens it with OpenDurationMS.
func (b *localBreaker) trip(now, until time.Time, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.tick(now)
	b.transition(now, stateOpen, reason)
	if until.After(now) {
		b.openUntil = until
	}
}

// force sets an operator's override at now: state is
// stateForcedOpenLocal or stateForcedClosedLocal, until its end (zero:
// never). A new override moves the generation, as the control plane's
// does, unless it repeats the one in force.
func (b *localBreaker) force(now time.Time, state breakerState, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.tick(now)
	b.ovUntil = until
	if b.override == state {
		return
	}
	b.override = state
	b.state = stateClosed
	b.since = now
	b.reason = "override"
	b.gen++
	clear(b.probes)
	b.probes = b.probes[:0]
	b.probeOK = 0
	b.openUntil = time.Time{}
}

// localBreakerStatus is what localBreaker.status returns.
type localBreakerStatus struct {
	state     breakerState
	gen       uint64    // moves at every transition
	since     time.Time // of the last transition
	openUntil time.Time // zero unless open
	reason    string    // of the last transition; empty before the first

	calls, failures, slowCalls int64 // in the window
	probes                     int   // outstanding probe permits, expired ones included
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
		probes:    len(b.probes),
	}
	if b.state == stateOpen {
		s.openUntil = b.openUntil
	}
	return s
}

// tick moves the window to now, or to the latest time seen if now is
// earlier, and returns that time. b.mu must be held.
func (b *localBreaker) tick(now time.Time) time.Time {
	if now.Before(b.latest) {
		now = b.latest
	}
	b.latest = now
	if b.override != stateClosed && !b.ovUntil.IsZero() && !now.Before(b.ovUntil) {
		b.override = stateClosed
		b.ovUntil = time.Time{}
		b.transition(now, stateClosed, "override expired")
	}
	b.win.advance(now)
	return now
}

// effective returns the state that decides: the override's, if any.
// b.mu must be held.
func (b *localBreaker) effective() breakerState {
	if b.override != stateClosed {
		return b.override
	}
	return b.state
}

// maybeTrip opens a closed breaker whose window says so. b.mu must be held.
func (b *localBreaker) maybeTrip(now time.Time) {
	c := &b.cfg
	w := &b.win
	if b.override != stateClosed || b.state != stateClosed {
		return
	}
	switch {
	case c.ConsecutiveFailures > 0 && b.consec >= c.ConsecutiveFailures:
		b.transition(now, stateOpen, "consecutive_failures")
	case w.calls >= c.MinimumCalls && w.fails*100 >= c.FailureRateThreshold*w.calls:
		b.transition(now, stateOpen, "failure_rate")
	case w.calls >= c.MinimumCalls && w.slows*100 >= c.SlowCallRateThreshold*w.calls:
		b.transition(now, stateOpen, "slow_call_rate")
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
func (b *localBreaker) transition(now time.Time, to breakerState, reason string) {
	b.state = to
	b.since = now
	b.reason = reason
	b.gen++
	clear(b.probes)
	b.probes = b.probes[:0]
	b.probeOK = 0
	b.openUntil = time.Time{}
	switch to {
	case stateOpen:
		b.openUntil = now.Add(b.openDuration)
		b.win.reset(now)
		b.consec = 0
	case stateClosed:
		b.win.reset(now)
		b.consec = 0
	}
}

// window counts the calls, failures and slow calls of a sliding window:
// either the last size seconds, in one bucket per second, or the last size
// calls. The zero window is not usable; make one with newWindow.
type window struct {
	size                int64
	calls, fails, slows int64

	// time window: buckets[s mod size] counts second s, for the seconds
	// in (last-size, last]
	buckets []bucket
	last    int64

	// count window: kinds is a ring of the last calls, 2*failed + slow,
	// next is where the next call goes
	kinds []uint8
	next  int
}

type bucket struct{ calls, fails, slows int64 }

func newWindow(w BreakerWindow) window {
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
		w.calls, w.fails, w.slows = 0, 0, 0
	} else {
		for s := w.last + 1; s <= cur; s++ {
			bk := &w.buckets[mod(s, w.size)]
			w.calls -= bk.calls
			w.fails -= bk.fails
			w.slows -= bk.slows
			*bk = bucket{}
		}
	}
	w.last = cur
}

// add counts one call at now, which advance has moved the window to.
func (w *window) add(now time.Time, failed, slow bool) {
	var f, s int64
	if failed {
		f = 1
	}
	if slow {
		s = 1
	}
	if w.buckets != nil {
		bk := &w.buckets[mod(w.last, w.size)]
		bk.calls++
		bk.fails += f
		bk.slows += s
	} else {
		kind := uint8(2*f + s)
		if int64(len(w.kinds)) < w.size {
			w.kinds = append(w.kinds, kind)
		} else {
			old := w.kinds[w.next]
			w.calls--
			w.fails -= int64(old >> 1)
			w.slows -= int64(old & 1)
			w.kinds[w.next] = kind
			w.next = (w.next + 1) % int(w.size)
		}
	}
	w.calls++
	w.fails += f
	w.slows += s
}

// reset empties the window as of now.
func (w *window) reset(now time.Time) {
	w.calls, w.fails, w.slows = 0, 0, 0
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
