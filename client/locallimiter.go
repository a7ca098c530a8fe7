package client

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// Fixed-point units of localLimiter: a token is 1e9 nanotokens, and the
// refill remainder is kept in units of 1e-9 nanotoken.
const nanoPerToken = 1_000_000_000

// Limits of localLimiter's parameters, so its arithmetic cannot overflow.
const (
	maxLimiterCapacity = 1e9 // tokens, as the control plane allows
	maxLimiterRate     = 1e9 // tokens per second
	minLimiterTokens   = -(1 << 62)
)

// A localLimiter is an in-process token bucket with the control plane's
// semantics, for when the control plane cannot be reached: it starts full,
// holds at most capacity tokens, and refills continuously at rate tokens
// per second.
//
// Tokens are counted in fixed point, in billionths of a token, and refill
// keeps its remainder, so no token is gained or lost to rounding however
// often the bucket is asked: refilling in a million small steps adds
// exactly what one step over the same time would. Capacity and rate are
// exact to nine decimal places.
//
// Time is a parameter of every method, as in x/time/rate; a time earlier
// than one already seen refills nothing. take is what most callers want;
// reserve is for waiting. Make one with newLocalLimiter; it is safe for
// concurrent use.
type localLimiter struct {
	mu       sync.Mutex
	capacity int64  // nanotokens
	rate     uint64 // nanotokens per second
	tokens   int64  // nanotokens; below zero while reservations are owed
	frac     uint64 // refill remainder, in 1e-9 nanotokens, below 1e9
	last     time.Time
}

// newLocalLimiter returns a full bucket of capacity tokens that refills at
// rate tokens per second. Capacity is cut to [0, 1e9] and rate to
// [0, 1e9]; a bucket of capacity below one token never grants a whole
// token, and one of rate zero never refills.
func newLocalLimiter(capacity, rate float64, now time.Time) *localLimiter {
	l := &localLimiter{last: now}
	l.set(capacity, rate)
	l.tokens = l.capacity
	return l
}

// setLimit changes the bucket's capacity and rate as of now, keeping the
// tokens it holds (cut to the new capacity).
func (l *localLimiter) setLimit(now time.Time, capacity, rate float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	l.set(capacity, rate)
	l.tokens = min(l.tokens, l.capacity)
}

func (l *localLimiter) set(capacity, rate float64) {
	l.capacity = int64(math.Round(clampFloat(capacity, maxLimiterCapacity) * nanoPerToken))
	l.rate = uint64(math.Round(clampFloat(rate, maxLimiterRate) * nanoPerToken))
}

// clampFloat returns x cut to [0, hi], with NaN as 0.
func clampFloat(x, hi float64) float64 {
	if !(x > 0) {
		return 0
	}
	return min(x, hi)
}

// take takes n tokens at now if the bucket holds them all, and reports
// whether it did. It takes nothing otherwise. Taking n ≤ 0 tokens always
// succeeds.
func (l *localLimiter) take(now time.Time, n int64) bool {
	if n <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	nn, ok := l.nanos(n)
	if !ok || l.tokens < nn {
		return false
	}
	l.tokens -= nn
	return true
}

// reserve takes n tokens at now, going into debt if the bucket holds fewer,
// and returns how long the caller must wait before acting on them: zero if
// the bucket held them, else the time the refill takes to pay the debt
// back, behind any earlier reservations. If that wait would be longer
// than maxWait, or n is more than the capacity (it could never be
// granted), reserve takes nothing and reports false, with the wait it
// would have needed (math.MaxInt64 for never). A caller that gives up
// waiting should return the tokens with putBack.
func (l *localLimiter) reserve(now time.Time, n int64, maxWait time.Duration) (time.Duration, bool) {
	if n <= 0 {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	nn, ok := l.nanos(n)
	if !ok {
		return math.MaxInt64, false
	}
	after := l.tokens - nn
	if after >= 0 {
		l.tokens = after
		return 0, true
	}
	wait := l.timeToRefill(uint64(-after))
	if wait > maxWait || after < minLimiterTokens {
		return wait, false
	}
	l.tokens = after
	return wait, true
}

// putBack returns n tokens that take or reserve took, as when a call that
// waited for them is abandoned. The bucket never holds more than its
// capacity.
func (l *localLimiter) putBack(now time.Time, n int64) {
	if n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	nn, ok := l.nanos(n)
	if !ok {
		nn = l.capacity
	}
	l.tokens = min(l.tokens+nn, l.capacity)
}

// tokensAt returns the tokens the bucket holds at now, negative while
// reservations are owed.
func (l *localLimiter) tokensAt(now time.Time) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	return float64(l.tokens) / nanoPerToken
}

// nanos converts n > 0 tokens to nanotokens, and reports false when n is
// more than the capacity. l.mu must be held.
func (l *localLimiter) nanos(n int64) (int64, bool) {
	if n > l.capacity/nanoPerToken {
		return 0, false
	}
	return n * nanoPerToken, true
}

// refill adds the tokens that accrued between l.last and now. l.mu must be
// held.
func (l *localLimiter) refill(now time.Time) {
	if !now.After(l.last) {
		return
	}
	elapsed := uint64(now.Sub(l.last)) // ns; Sub saturates, so never negative
	l.last = now
	if l.tokens >= l.capacity {
		l.tokens, l.frac = l.capacity, 0
		return
	}
	// added nanotokens = (elapsed·rate + frac) / 1e9, remainder kept in frac
	hi, lo := bits.Mul64(elapsed, l.rate)
	var carry uint64
	lo, carry = bits.Add64(lo, l.frac, 0)
	hi += carry
	need := uint64(l.capacity - l.tokens)
	if hi >= nanoPerToken {
		l.tokens, l.frac = l.capacity, 0
		return
	}
	q, r := bits.Div64(hi, lo, nanoPerToken)
	if q >= need {
		l.tokens, l.frac = l.capacity, 0
		return
	}
	l.tokens += int64(q)
	l.frac = r
}

// timeToRefill returns how long the refill takes to add debt nanotokens,
// counting the remainder already accrued, rounded up to the nanosecond, or
// math.MaxInt64 if it never will. l.mu must be held.
func (l *localLimiter) timeToRefill(debt uint64) time.Duration {
	if l.rate == 0 {
		return math.MaxInt64
	}
	// smallest t with t·rate + frac ≥ debt·1e9
	hi, lo := bits.Mul64(debt, nanoPerToken)
	var borrow uint64
	lo, borrow = bits.Sub64(lo, l.frac, 0)
	hi -= borrow
	if hi >= l.rate {
		return math.MaxInt64
	}
	q, r := bits.Div64(hi, lo, l.rate)
	if r > 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(q)
}

// evictedSlots is how many evicted keys' levels a limit remembers, by a
// hash of the key; keys whose hashes collide share the most conservative
// level of them.
const evictedSlots = 4096

// evictedLevels remembers the levels of the local buckets of keys that a
// limit forgot past Config.MaxKeys while degraded, so that such a key is
// not made anew with a full bucket: with more active keys than the cap
// (per-IP keys, say), that would loosen the limit during an outage. For
// each slot it keeps when the buckets evicted into it are full again; a
// bucket made for a key of that slot starts with what it would hold then.
// The zero value is ready to use, and it is safe for concurrent use.
type evictedLevels struct {
	mu     sync.Mutex
	fullAt []int64 // Unix ns, by slot; nil until a bucket is evicted
}

func evictedSlot(key string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return int(h % evictedSlots)
}

// forget records the level of local, the local bucket of key, as key is
// forgotten at now; local is nil when the key had none.
func (e *evictedLevels) forget(key string, local *localLimiter, now time.Time) {
	if local == nil {
		return // not degraded: the control plane keeps the level
	}
	local.mu.Lock()
	local.refill(now)
	full := now
	if local.tokens < local.capacity {
		full = now.Add(local.timeToRefill(uint64(local.capacity - local.tokens)))
	}
	local.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fullAt == nil {
		e.fullAt = make([]int64, evictedSlots)
	}
	if i := evictedSlot(key); full.UnixNano() > e.fullAt[i] {
		e.fullAt[i] = full.UnixNano()
	}
}

// newLocal returns the local bucket for key: full, unless a bucket of its
// slot was evicted and is not full again by now, in which case it holds
// what that bucket would.
func (e *evictedLevels) newLocal(key string, capacity, rate float64, now time.Time) *localLimiter {
	l := newLocalLimiter(capacity, rate, now)
	e.mu.Lock()
	var fullAt int64
	if e.fullAt != nil {
		fullAt = e.fullAt[evictedSlot(key)]
	}
	e.mu.Unlock()
	if wait := fullAt - now.UnixNano(); wait > 0 {
		// tokens = capacity - wait·rate, at least none
		hi, lo := bits.Mul64(uint64(wait), l.rate)
		missing, _ := bits.Div64(min(hi, nanoPerToken-1), lo, nanoPerToken)
		if hi >= nanoPerToken || missing >= uint64(l.capacity) {
			l.tokens = 0
		} else {
			l.tokens = l.capacity - int64(missing)
		}
	}
	return l
}
