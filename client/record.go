package client

import (
	"fmt"
	"time"
)

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
	c := b.c
	if c.degraded.Load() {
		b.mu.Lock()
		l := b.local
		b.mu.Unlock()
		if l != nil {
			// Counted in the local breaker's current generation: in
			// closed or forced states, as the control plane would.
			now := c.clock.now()
			l.recordN(now, localPermit{gen: l.status(now).gen}, success, d, n)
		}
		return nil
	}
	a := b.cur.Load()
	if a == nil || !a.allowed || a.batch == nil {
		return nil
	}
	t := trackerSeq.Add(1)
	a.batch.addN(c, t, success, int64(d), b.slowNS.Load(), uint64(n))
	return nil
}
