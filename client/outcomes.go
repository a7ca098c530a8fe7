package client

import (
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// Outcomes are counted in atomic counters and reported in batches, one
// request per flush interval for every breaker (POST /v1/outcomes), with
// the API's count field; a breaker whose outcomes are all fast successes is
// reported only every SuccessFlushInterval.
//
// Each counter packs a count and a sum of durations into one uint64, so
// that one atomic add records a call: the count in the high countBits
// bits, the sum of the calls' durations in whole milliseconds in the low
// sumBits bits. A flush swaps each counter with zero, so no outcome is
// lost or counted twice, and reports the calls of each kind (success or
// failure, slow or not) as one entry whose duration is their mean, which
// is slow exactly when the calls were.
//
// A packed counter never overflows: an add that would carry out of either
// field moves the counter's content and the add into the batch's spill, a
// pair of wide totals under a mutex (the sum in 128 bits), instead. Only
// very large adds (Record with a huge count or duration) or a counter
// holding more than a flush normally gathers take that path.
//
// Counters are striped, each stripe on its own cache line, and a call
// uses the stripe of its tracker; trackers come from a sync.Pool, which
// keeps them per P, so concurrent calls on different Ps mostly touch
// different cache lines.
const (
	sumBits   = 38 // 2.7e11 ms per flush and counter
	countBits = 64 - sumBits
	sumMask   = 1<<sumBits - 1
	countMax  = 1<<countBits - 1
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
	// While the slow-call duration is unknown: counters per kind
	// (2*retry + failed) and duration bucket, reported with their mean
	// duration.
	hist [4][histBuckets]atomic.Uint64
	// urgent is set when a failure, a slow call or a retry is counted,
	// and cleared when the batch is drained: a batch of fast successes
	// only, none of them retries, may wait longer (see
	// Config.SuccessFlushInterval).
	urgent atomic.Bool

	spillMu sync.Mutex
	spill   map[spillKind]*tally // what would have overflowed a counter
}

// spillKind names a counter's kind: a stripe kind (4*retry + 2*failed +
// slow), or a duration bucket of hist when hist is set.
type spillKind struct {
	hist    bool
	success bool
	retry   bool
	k       int // stripe kind, or hist bucket
}

// tally is a count of calls and the sum of their durations in ms, wide
// enough not to overflow: the count saturates at 2^64-1 calls, the sum is
// 128 bits.
type tally struct {
	n          uint64
	sumHi, sum uint64
}

// add adds n calls whose durations add up to hi:lo ms.
func (t *tally) add(n, hi, lo uint64) {
	var carry uint64
	t.sum, carry = bits.Add64(t.sum, lo, 0)
	t.sumHi += hi + carry
	if t.n+n < t.n {
		t.n = math.MaxUint64
	} else {
		t.n += n
	}
}

// mean returns the mean duration in ms, capped at the API's maximum.
func (t *tally) mean() int64 {
	if t.n == 0 {
		return 0
	}
	if t.sumHi >= t.n {
		return contract.MaxDurationMS
	}
	q, _ := bits.Div64(t.sumHi, t.sum, t.n)
	return int64(min(q, contract.MaxDurationMS))
}

// stripe holds one counter per kind of outcome: index 4*retry +
// 2*failed + slow, one cache line. Retries are reported as entries of
// their own, every call of which is a retry.
type stripe struct {
	v [8]atomic.Uint64
}

func newOutcomeBatch(gen int64) *outcomeBatch {
	return &outcomeBatch{gen: gen, stripes: make([]stripe, stripes)}
}

// add counts one call that took dur ns, slow when at least slowNS (0 when
// not known), and signals the flusher when a counter reaches the
// client's batch trigger.
func (ob *outcomeBatch) add(c *core, s uint32, success, retry bool, dur, slowNS int64) {
	ob.addN(c, s, success, retry, dur, slowNS, 1)
}

// addN counts n like calls of dur ns each, retries when retry is set.
func (ob *outcomeBatch) addN(c *core, s uint32, success, retry bool, dur, slowNS int64, n uint64) {
	if (!success || retry || slowNS > 0 && dur >= slowNS) && !ob.urgent.Load() { // a load first: no write to a shared line per call
		ob.urgent.Store(true)
	}
	msd := uint64(durationMS(dur))
	var ctr *atomic.Uint64
	var kind spillKind
	if slowNS <= 0 {
		i := 0
		if !success {
			i = 1
		}
		if retry {
			i += 2
		}
		j := min(bits.Len64(msd), histBuckets-1)
		ctr, kind = &ob.hist[i][j], spillKind{hist: true, success: success, retry: retry, k: j}
	} else {
		i := 0
		if !success {
			i = 2
		}
		if dur >= slowNS {
			i++
		}
		if retry {
			i += 4
		}
		ctr, kind = &ob.stripes[s&c.stripeMask].v[i], spillKind{success: success, retry: retry, k: i}
	}
	before, after := ob.addTo(ctr, kind, n, msd)
	if before < c.batchTrigger && after >= c.batchTrigger {
		select {
		case c.flushNow <- struct{}{}:
		default:
		}
	}
}

// addTo adds n calls of msd ms each to the packed counter ctr of kind,
// or, when that would overflow a field of it, moves the counter's content
// and the calls to the spill. It returns the calls counted before and
// after, as far as the trigger of an early flush needs them.
func (ob *outcomeBatch) addTo(ctr *atomic.Uint64, kind spillKind, n, msd uint64) (before, after uint64) {
	hi, lo := bits.Mul64(n, msd)
	fits := hi == 0 && n <= countMax && lo <= sumMask
	for {
		v := ctr.Load()
		cnt, sum := v>>sumBits, v&sumMask
		if fits && cnt+n <= countMax && sum+lo <= sumMask {
			if ctr.CompareAndSwap(v, v+(n<<sumBits|lo)) {
				return cnt, cnt + n
			}
			continue
		}
		if ctr.CompareAndSwap(v, 0) {
			ob.spillMu.Lock()
			if ob.spill == nil {
				ob.spill = map[spillKind]*tally{}
			}
			t := ob.spill[kind]
			if t == nil {
				t = &tally{}
				ob.spill[kind] = t
			}
			t.add(cnt, 0, sum)
			t.add(n, hi, lo)
			ob.spillMu.Unlock()
			return 0, math.MaxUint64 // flush soon
		}
	}
}

// drain takes every count out of the batch and appends them to outs as
// report entries, oldest kinds first.
func (ob *outcomeBatch) drain(outs []outcome) []outcome {
	// Cleared before the counters are taken: a failure counted after this
	// sets it again, and one counted before is in this drain.
	ob.urgent.Store(false)
	ob.spillMu.Lock()
	spill := ob.spill
	ob.spill = nil
	ob.spillMu.Unlock()
	var sums [8]tally
	for i := range ob.stripes {
		for k := range 8 {
			if v := ob.stripes[i].v[k].Swap(0); v != 0 {
				sums[k].add(v>>sumBits, 0, v&sumMask)
			}
		}
	}
	for k := range sums {
		if t := spill[spillKind{success: k&2 == 0, retry: k&4 != 0, k: k}]; t != nil {
			sums[k].add(t.n, t.sumHi, t.sum)
		}
		outs = appendOutcome(outs, k&2 == 0, k&4 != 0, sums[k].n, sums[k].mean(), ob.gen)
	}
	for i := range ob.hist {
		for j := range ob.hist[i] {
			var t tally
			if v := ob.hist[i][j].Swap(0); v != 0 {
				t.add(v>>sumBits, 0, v&sumMask)
			}
			if s := spill[spillKind{hist: true, success: i&1 == 0, retry: i&2 != 0, k: j}]; s != nil {
				t.add(s.n, s.sumHi, s.sum)
			}
			outs = appendOutcome(outs, i&1 == 0, i&2 != 0, t.n, t.mean(), ob.gen)
		}
	}
	return outs
}

// appendOutcome appends entries for n calls of mean ms each, all retries
// when retry is set, splitting counts above the API's maximum.
func appendOutcome(outs []outcome, success, retry bool, n uint64, mean int64, gen int64) []outcome {
	for n > 0 {
		k := min(n, contract.MaxOutcomeCount)
		o := outcome{Success: success, DurationMS: mean, Count: int64(k), Generation: gen}
		if retry {
			o.Retries = o.Count
		}
		outs = append(outs, o)
		n -= k
	}
	return outs
}

// flushLoop reports pending outcomes every flush interval, and early when
// a batch fills, at most once per minimum gap, until Close; then it
// reports what is left once more. A flush at the end of an interval
// reports only the breakers with a failure pending, unless
// SuccessFlushInterval has passed since the last flush of all; an early
// flush, or the last, reports all.
func (c *core) flushLoop() {
	defer close(c.flushDone)
	interval := c.cfg.FlushInterval
	gap := interval / 10
	tick := time.NewTicker(interval)
	defer tick.Stop()
	early := time.NewTimer(time.Hour)
	early.Stop()
	last := time.Now()
	lastAll := last
	for {
		all := true
		select {
		case <-tick.C:
			// Ticks come late, never early: half an interval of slack
			// keeps a late tick from pushing the flush of all to the next.
			all = time.Since(lastAll) >= c.cfg.SuccessFlushInterval-interval/2
		case <-c.flushNow:
			if wait := gap - time.Since(last); wait > 0 {
				early.Reset(wait)
				continue
			}
		case <-early.C:
		case <-c.flushStop:
			c.flushErr = c.flush(true)
			return
		}
		last = time.Now()
		if all {
			lastAll = last
		}
		c.flush(all)
	}
}

// durationMS converts coarse nanoseconds to whole milliseconds in the
// API's range.
func durationMS(ns int64) int64 {
	return min(max(ns/int64(time.Millisecond), 0), contract.MaxDurationMS)
}
