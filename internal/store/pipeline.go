package store

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The store pipelines script runs automatically. Run hands its call to one
// of a few senders; a sender takes every call that is waiting and writes
// them to Redis as one pipeline: one write and one read for the batch. Idle,
// a call goes out alone at once, so nothing waits for a batch to fill; busy,
// concurrent decisions share round trips, which saves Redis and the control
// plane a system call pair per decision. Each script still runs atomically
// on its own, and in the order Redis receives it.

// maxBatch bounds the calls in one pipeline.
const maxBatch = 128

// A call refused with MOVED is sent again up to maxMoved times, after
// movedBackoff, twice that, and so on, within its deadline.
const (
	maxMoved     = 3
	movedBackoff = 5 * time.Millisecond
)

// isMoved reports a Cluster's MOVED refusal: the call did not run.
func isMoved(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "MOVED ")
}

// sleepCtx waits d, or less if ctx ends first; it reports whether ctx is
// still live. It does not wait past ctx's deadline.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// call is one script run waiting for its reply.
type call struct {
	ctx      context.Context
	sc       *Script
	keys     []string
	args     []any
	deadline time.Time
	done     chan struct{}
	val      any
	err      error
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// timerPool holds stopped timers for callers to wait with. Since Go 1.23 a
// stopped timer delivers nothing old after Reset, so a pooled timer is as
// good as a new one.
var timerPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

func stopTimer(t *time.Timer) {
	t.Stop()
	timerPool.Put(t)
}

type pipeliner struct {
	s     *Store
	queue chan *call
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newPipeliner(s *Store, senders int) *pipeliner {
	p := &pipeliner{s: s, queue: make(chan *call, 4096), stop: make(chan struct{})}
	for range senders {
		p.wg.Add(1)
		go p.send()
	}
	return p
}

func (p *pipeliner) close() {
	close(p.stop)
	p.wg.Wait()
}

// send is one sender's loop.
func (p *pipeliner) send() {
	defer p.wg.Done()
	batch := make([]*call, 0, maxBatch)
	for {
		select {
		case <-p.stop:
			return
		case c := <-p.queue:
			batch = append(batch[:0], c)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case c := <-p.queue:
				batch = append(batch, c)
			default:
				break drain
			}
		}
		p.run(batch)
	}
}

// run sends a batch and hands every call its reply.
func (p *pipeliner) run(batch []*call) {
	// A call whose deadline passed while it was queued is not sent: its
	// caller has stopped waiting (see runPipelined), and a Redis that comes
	// back should not be handed work nobody waits for.
	now := time.Now()
	live := batch[:0]
	for _, c := range batch {
		if now.Before(c.deadline) {
			live = append(live, c)
			continue
		}
		c.err = context.DeadlineExceeded
		c.done <- struct{}{}
	}
	if batch = live; len(batch) == 0 {
		return
	}
	ctx, cancel := batchContext(batch)
	defer cancel()
	start := time.Now()
	if len(batch) == 1 {
		c := batch[0]
		c.val, c.err = c.sc.run(ctx, p.s.rdb, c.keys, c.args)
		for try := 1; try <= maxMoved && isMoved(c.err); try++ {
			// The Cluster moved the slot and refused the call without
			// running it; go-redis reloads the slot map on MOVED.
			if !sleepCtx(ctx, time.Duration(try)*movedBackoff) {
				break
			}
			c.val, c.err = c.sc.run(ctx, p.s.rdb, c.keys, c.args)
		}
		if obs := p.s.observer; obs != nil {
			obs(c.sc.name, time.Since(start), c.err)
		}
		c.done <- struct{}{}
		return
	}
	pipe := p.s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		cmds[i] = c.sc.cmd(ctx, false, c.keys, c.args)
		_ = pipe.Process(ctx, cmds[i]) // queued
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	var retry []int
	for i, cmd := range cmds {
		if err := cmd.Err(); isNoScript(err) || isMoved(err) {
			retry = append(retry, i) // not run: safe to send again
			continue
		}
		batch[i].val, batch[i].err = cmd.Result()
	}
	for try := 1; len(retry) > 0; try++ {
		// Redis restarted or flushed its scripts (EVAL loads them), or a
		// Cluster moved a slot (go-redis reloads the slot map on MOVED).
		if try > 1 && !sleepCtx(ctx, time.Duration(try)*movedBackoff) {
			break
		}
		pipe := p.s.rdb.Pipeline()
		for _, i := range retry {
			c := batch[i]
			cmds[i] = c.sc.cmd(ctx, true, c.keys, c.args)
			_ = pipe.Process(ctx, cmds[i])
		}
		_, _ = pipe.Exec(ctx)
		again := retry[:0]
		for _, i := range retry {
			batch[i].val, batch[i].err = cmds[i].Result()
			if isMoved(batch[i].err) && try <= maxMoved {
				again = append(again, i)
			}
		}
		retry = again
	}
	if obs := p.s.observer; obs != nil {
		d := time.Since(start)
		for _, c := range batch {
			obs(c.sc.name, d, c.err)
		}
	}
	for _, c := range batch {
		c.done <- struct{}{}
	}
}

// batchContext is the context a batch runs under: the latest of its
// calls' deadlines, so that a caller whose own deadline passes first stops
// waiting (see runPipelined) and the batch is not cut short for the
// others. A batch of one call runs under that call's context when that
// carries the call's deadline (a request's context does, as the store sees
// it: see StoreContexter): the call is the batch, and a new context would
// cost four allocations a decision when the store is idle. go-redis bounds
// the round trip by the deadline itself (connection deadlines, with
// ContextTimeoutEnabled; a wait for a connection by PoolTimeout), and the
// caller leaves at its deadline on its own timer (runPipelined).
func batchContext(batch []*call) (context.Context, context.CancelFunc) {
	if c := batch[0]; len(batch) == 1 {
		if d, ok := c.ctx.Deadline(); ok && !d.After(c.deadline) {
			return c.ctx, noCancel
		}
	}
	deadline := batch[0].deadline
	for _, c := range batch[1:] {
		if c.deadline.After(deadline) {
			deadline = c.deadline
		}
	}
	return context.WithDeadline(context.Background(), deadline)
}

func noCancel() {}

// runPipelined queues a call and waits for its reply, its deadline or its
// context's end. sent reports whether the call was handed to a sender:
// from then on it may run in Redis whether or not its reply arrives.
//
// The deadline starts when the call arrives and bounds all of its wait: the
// queue (full when every sender is stuck on a Redis that does not answer)
// as well as the round trip. See docs/design.md, "One deadline per call".
func (s *Store) runPipelined(ctx context.Context, sc *Script, keys []string, args []any) (v any, sent bool, err error) {
	ctx = waitContext(ctx)
	deadline := time.Now().Add(s.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// One timer bounds both waits, the queue and the round trip: the
	// caller stops waiting at its deadline even while its call is still
	// queued behind busy senders (a Redis that answers late keeps every
	// sender busy). The timer comes from a pool: a new one on every
	// decision costs two allocations and a runtime timer.
	timer := timerPool.Get().(*time.Timer)
	timer.Reset(time.Until(deadline))
	c := callPool.Get().(*call)
	c.ctx, c.sc, c.keys, c.args, c.deadline = ctx, sc, keys, args, deadline
	select {
	case s.pipe.queue <- c:
	case <-timer.C:
		timerPool.Put(timer) // fired: stopped, and nothing left to receive
		c.ctx = nil
		callPool.Put(c)
		return nil, false, context.DeadlineExceeded
	case <-ctx.Done():
		stopTimer(timer)
		c.ctx = nil
		callPool.Put(c)
		return nil, false, ctx.Err()
	}
	select {
	case <-c.done:
		stopTimer(timer)
		v, err := c.val, c.err
		c.ctx, c.sc, c.keys, c.args, c.val, c.err = nil, nil, nil, nil, nil, nil
		callPool.Put(c)
		return v, true, err
	case <-timer.C:
		timerPool.Put(timer) // fired: stopped, and nothing left to receive
		// The sender still owns c and will signal its buffered done
		// channel; c is not reused.
		return nil, true, context.DeadlineExceeded
	case <-ctx.Done():
		stopTimer(timer)
		// As above: c stays with the sender.
		return nil, true, ctx.Err()
	}
}

// A StoreContexter is a context that offers the store another one to wait
// on and to hand Redis: with the same deadline and values, and a Done that
// closes when the caller gives up but not at the deadline. The store
// bounds every call by its deadline with timers of its own (one from a
// pool), so waiting on the caller's own Done would only start a second
// timer for the same deadline on every call. The API's request context is
// one; see docs/design.md, "One deadline per call".
type StoreContexter interface {
	context.Context
	StoreContext() context.Context
}

// waitContext is the context a call made under ctx waits on: the one ctx
// offers, or ctx.
func waitContext(ctx context.Context) context.Context {
	if sc, ok := ctx.(StoreContexter); ok {
		return sc.StoreContext()
	}
	return ctx
}
