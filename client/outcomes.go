package client

import (
	"errors"
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"
)

// Outcomes are counted in atomic counters and reported in batches, one
// request per breaker and flush interval, with the API's count field.
//
// Each counter packs a count and a sum of durations into one uint64, so
// that one atomic add records a call: the count in the high countBits
// bits, the sum of the calls' durations in whole milliseconds in the low
// sumBits bits. A flush swaps each counter with zero, so no outcome is
// lost or counted twice, and reports the calls of each kind (success or
// failure, slow or not) as one entry whose duration is their mean, which
// is slow exactly when the calls were.
//
// Counters are striped, each stripe on its own cache line, and a call
// uses the stripe of its tracker; trackers come from a sync.Pool, which
// keeps them per P, so concurrent calls on different Ps mostly touch
// different cache lines.
const (
	sumBits   = 38 // 2.7e11 ms per flush and counter
	countBits = 64 - sumBits
	sumMask   = 1<<sumBits - 1
)

// stripes is the number of counter stripes of a batch: four times
// GOMAXPROCS at start, rounded up to a power of two, at most 256. More
// stripes than Ps make it rare that trackers in use on two Ps share one.
var stripes = func() int {
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) && n < 256 {
		n *= 2
	}
	return n
}()

// histBuckets is the number of duration buckets used while a breaker's
// slow-call duration is not known yet: bucket i holds durations of
// bits.Len64(ms) == i.
const histBuckets = 28

// outcomeBatch counts the outcomes of the calls let through under one
// generation of a breaker. It is safe for concurrent use.
type outcomeBatch struct {
	gen     int64
	stripes []stripe
	// While the slow-call duration is unknown: counters per success and
	// duration bucket, reported with their mean duration.
	hist [2][histBuckets]atomic.Uint64
}

// stripe holds one counter per kind of outcome: index 2*failed + slow.
type stripe struct {
	v [4]atomic.Uint64
	_ [64 - 4*8]byte
}

func newOutcomeBatch(gen int64) *outcomeBatch {
	return &outcomeBatch{gen: gen, stripes: make([]stripe, stripes)}
}

// add counts one call that took dur ns, slow when at least slowNS (0 when
// not known), and signals the flusher when a counter reaches the
// client's batch trigger.
func (ob *outcomeBatch) add(c *Client, s uint32, success bool, dur, slowNS int64) {
	ob.addN(c, s, success, dur, slowNS, 1)
}

// addN counts n like calls of dur ns each.
func (ob *outcomeBatch) addN(c *Client, s uint32, success bool, dur, slowNS int64, n uint64) {
	msd := uint64(durationMS(dur))
	inc := n<<sumBits | n*msd
	var v uint64
	if slowNS <= 0 {
		i := 0
		if !success {
			i = 1
		}
		v = ob.hist[i][min(bits.Len64(msd), histBuckets-1)].Add(inc)
	} else {
		i := 0
		if !success {
			i = 2
		}
		if dur >= slowNS {
			i++
		}
		v = ob.stripes[s&c.stripeMask].v[i].Add(inc)
	}
	if before := (v - inc) >> sumBits; before < c.batchTrigger && v>>sumBits >= c.batchTrigger {
		select {
		case c.flushNow <- struct{}{}:
		default:
		}
	}
}

// drain takes every count out of the batch and appends them to outs as
// report entries, oldest kinds first.
func (ob *outcomeBatch) drain(outs []outcome) []outcome {
	var sums [4]struct{ n, ms uint64 }
	for i := range ob.stripes {
		for k := range 4 {
			if v := ob.stripes[i].v[k].Swap(0); v != 0 {
				sums[k].n += v >> sumBits
				sums[k].ms += v & sumMask
			}
		}
	}
	for k, s := range sums {
		outs = appendOutcome(outs, k&2 == 0, s.n, s.ms, ob.gen)
	}
	for i := range ob.hist {
		for j := range ob.hist[i] {
			if v := ob.hist[i][j].Swap(0); v != 0 {
				outs = appendOutcome(outs, i == 0, v>>sumBits, v&sumMask, ob.gen)
			}
		}
	}
	return outs
}

// maxCount is the most calls one report entry may stand for.
const maxCount = 1_000_000

// appendOutcome appends entries for n calls whose durations add up to
// sumMS, splitting counts above the API's maximum.
func appendOutcome(outs []outcome, success bool, n, sumMS uint64, gen int64) []outcome {
	if n == 0 {
		return outs
	}
	mean := int64(min(sumMS/n, maxDurationMS))
	for n > 0 {
		k := min(n, maxCount)
		outs = append(outs, outcome{Success: success, DurationMS: mean, Count: int64(k), Generation: gen})
		n -= k
	}
	return outs
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

// maxEntries is the most entries one report may hold.
const maxEntries = 1000

// flushLoop reports pending outcomes every flush interval, and early when
// a batch fills, at most once per minimum gap, until Close; then it
// reports what is left once more.
func (c *Client) flushLoop() {
	defer close(c.flushDone)
	interval := c.cfg.FlushInterval
	gap := interval / 10
	tick := time.NewTicker(interval)
	defer tick.Stop()
	early := time.NewTimer(time.Hour)
	early.Stop()
	last := time.Now()
	for {
		select {
		case <-tick.C:
		case <-c.flushNow:
			if wait := gap - time.Since(last); wait > 0 {
				early.Reset(wait)
				continue
			}
		case <-early.C:
		case <-c.flushStop:
			c.flushErr = c.flushAll()
			return
		}
		last = time.Now()
		c.flushAll()
	}
}

// flushAll reports every breaker's pending outcomes and returns the last
// error. While degraded the outcomes are dropped: calls let through under
// the control plane's answers before the switch would be ignored by now,
// and calls decided locally stay local.
func (c *Client) flushAll() error {
	var last error
	for _, b := range c.breakersNow() {
		outs := b.pending()
		if len(outs) == 0 || c.degraded.Load() {
			continue
		}
		if err := b.report(outs); err != nil {
			last = err
		}
	}
	return last
}

// report sends outs and caches the answer.
func (b *Breaker) report(outs []outcome) error {
	c := b.c
	for len(outs) > 0 {
		n := min(len(outs), maxEntries)
		ctx, cancel := c.requestCtx() // Close cancels c.ctx only after the last flush
		d, err := c.cp.report(ctx, b.name, outs[:n])
		cancel()
		switch {
		case err == nil:
			b.apply(d, c.clock.unixNano())
		case isNotFound(err):
			b.setUnknown(c.clock.unixNano())
			return err
		case errors.Is(err, errUnreachable), isAuthError(err):
			c.enterDegraded(err)
			return err
		default:
			return err
		}
		outs = outs[n:]
	}
	return nil
}
