package ratelimit

import (
	"fmt"
	"time"
)

// refModel is the reference token bucket: what the scripts must do, said
// plainly in Go with int64 arithmetic and none of the scripts' code. It
// holds every limit of one store.
//
// Its clock is the store's: TIME, which may step back, and against which
// keys expire at absolute times, as in Redis (PEXPIREAT).
type refModel struct {
	now    int64 // ms
	limits map[string]*refLimit
}

type refLimit struct {
	capacity int64 // tokens
	rate     int64 // millionths of a token per millisecond
	buckets  map[string]refBucket
}

// refBucket is a bucket as last written by a grant.
type refBucket struct {
	level int64 // millionths of a token
	at    int64 // the store's clock when level was true, ms
	// fullAt is when the bucket is full again, and the store drops it.
	fullAt int64
}

const unit = 1_000_000 // millionths per token

func newRefModel(now time.Time) *refModel {
	return &refModel{now: now.UnixMilli(), limits: map[string]*refLimit{}}
}

// advance moves the clock, forward or back.
func (m *refModel) advance(d time.Duration) { m.setNow(m.now + d.Milliseconds()) }

// setNow sets the clock. A bucket whose clock has reached the time it is
// full is dropped, as the store drops an expired key, and stays dropped if
// the clock then steps back: it was full, and an absent bucket is full.
func (m *refModel) setNow(ms int64) {
	m.now = ms
	for _, l := range m.limits {
		for k, b := range l.buckets {
			if m.now >= b.fullAt {
				delete(l.buckets, k)
			}
		}
	}
}

func (m *refModel) put(name string, cfg Config) (Limit, bool) {
	l, ok := m.limits[name]
	if !ok {
		// a new limit sees none of the buckets of an old one
		l = &refLimit{buckets: map[string]refBucket{}}
		m.limits[name] = l
	}
	l.capacity, l.rate = cfg.Capacity, milliRate(cfg)
	return Limit{Name: name, Config: Config{Capacity: l.capacity, RefillPerSecond: float64(l.rate) / 1000}}, !ok
}

func (m *refModel) delete(name string) error {
	if _, ok := m.limits[name]; !ok {
		return ErrNotFound
	}
	delete(m.limits, name)
	return nil
}

// level is a key's bucket now, and the time it is true at: now, or later
// when the clock stepped back behind the bucket's last write.
func (m *refModel) level(l *refLimit, key string) (level, at int64) {
	full := l.capacity * unit
	b, ok := l.buckets[key]
	if !ok {
		return full, m.now
	}
	level, at = b.level, b.at
	if m.now > at {
		// refill, saturating: elapsed * rate may not fit in an int64
		if elapsed := m.now - at; elapsed >= ceilDiv(full-level, l.rate) {
			level = full
		} else {
			level += elapsed * l.rate
		}
		at = m.now
	}
	return min(level, full), at
}

func (m *refModel) tokens(name, key string) (float64, error) {
	l, ok := m.limits[name]
	if !ok {
		return 0, ErrNotFound
	}
	level, _ := m.level(l, key)
	return float64(level) / 1e6, nil
}

func (m *refModel) take(name string, req TakeRequest) (TakeResult, error) {
	if req.Tokens < 1 || req.Tokens > MaxCapacity {
		return TakeResult{}, tokensError(req.Tokens, MaxCapacity) // checked before the store is asked
	}
	l, ok := m.limits[name]
	if !ok {
		return TakeResult{}, ErrNotFound
	}
	if req.Tokens > l.capacity {
		return TakeResult{}, tokensError(req.Tokens, l.capacity)
	}
	full := l.capacity * unit
	level, at := m.level(l, req.Key)
	res := TakeResult{Limit: l.capacity, Time: time.UnixMilli(m.now).UTC()}
	switch {
	case level >= req.Tokens*unit:
		res.Granted = req.Tokens
	case req.Partial:
		res.Granted = level / unit
	}
	if res.Granted > 0 {
		res.Allowed = true
		level -= res.Granted * unit
		l.buckets[req.Key] = refBucket{level: level, at: at, fullAt: at + ceilDiv(full-level, l.rate)}
	} else {
		res.RetryAfterMS = at - m.now + ceilDiv(req.Tokens*unit-level, l.rate)
	}
	res.Remaining = level / unit
	res.ResetMS = at - m.now + ceilDiv(full-level, l.rate)
	return res, nil
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a-1)/b + 1
}

// takeString shows a take result whole, its header fields and time too.
func takeString(r TakeResult) string {
	return fmt.Sprintf("{allowed %v granted %d remaining %d retry %dms reset %dms limit %d at %d}",
		r.Allowed, r.Granted, r.Remaining, r.RetryAfterMS, r.ResetMS, r.Limit, r.Time.UnixMilli())
}
