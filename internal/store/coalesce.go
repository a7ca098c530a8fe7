package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Coalesced runs: requests to one object that arrive close together are
// applied in one script run, each with its own arguments, its own reply
// and its own idempotency record, as if each had run alone one after the
// other. The store's work for a busy object then grows with the number of
// control planes, not with the number of clients. See docs/design.md,
// "Coalesced reports".
//
// The rule, per object (a script and its first key) and per store:
//
//   - one run at a time: requests that arrive while a run is in flight wait
//     and go together in the next;
//   - once requests meet, runs start at least CoalesceWindow apart: after
//     a run that carried more than one request, a request that arrives
//     within the window after that run started waits for the window to
//     end, unless its run is full (maxRunRequests requests or maxRunArgs
//     arguments), which goes at once;
//   - so a request to an idle object (no run in flight, and none that
//     carried several started in the last window) goes at once, with no
//     added wait: one caller reporting one call after another is never
//     held back.

// DefaultCoalesceWindow is Config.CoalesceWindow when it is zero.
const DefaultCoalesceWindow = 5 * time.Millisecond

// A coalesced run holds at most maxRunRequests requests and, past its
// first request, maxRunArgs arguments: bounds far below what Redis
// accepts in one command, that keep one run of the outcomes script to a
// millisecond or so of Redis's time (a run blocks every other client of
// that Redis while it runs).
const (
	maxRunRequests = 64
	maxRunArgs     = 4096
)

// Request is one request of a coalesced run: its own arguments, after the
// script's shared ones, and its idempotency record.
type Request struct {
	Args []any
	// Once is the request's idempotency record (see RunOnce); a zero Key
	// means the request has none.
	Once Once
}

// Reply answers one Request of a coalesced run.
type Reply struct {
	// Val is the script's reply for the request (nil when the script
	// answered false for the run), or the first reply of a replayed key,
	// every element a string.
	Val any
	// Replayed says Val is the first reply of the request's key, and that
	// nothing was applied.
	Replayed bool
	// Err is ErrKeyReused when the request's key was first used with
	// another hash: nothing of it was applied.
	Err error
}

// eachLua defines each_request(fn) for scripts loaded by LoadCoalesced. A
// coalesced run's KEYS are the script's own, then the records of the
// requests that have keys; its ARGV are the script's shared arguments,
// then the requests, then the index in ARGV where the requests start:
//
//	ARGV[at]        the records' lifetime, ms
//	ARGV[at+1]      the number of requests
//	then per request: the index of its record in KEYS (0: none), its
//	hash ('' for none), the number n of its own arguments, and those
//	ARGV[#ARGV]     at
//
// each_request calls fn(first, last) for every request in order, with
// the bounds of its own arguments in ARGV, and records fn's reply under
// the request's key in the same run, as RunOnce does (recordLua).
// A request whose key has a record is not given to fn: its reply is the
// record's. It returns one reply per request:
//
//	{0, reply}  fn ran; reply is its own
//	{1, lines}  a repeat: the first run's reply, every element a string
//	{2}         the key was first used with another hash; nothing ran
const eachLua = recordLua + `
local function each_request(fn)
  local at = tonumber(ARGV[#ARGV])
  local ttl, count = ARGV[at], tonumber(ARGV[at + 1])
  local replies = {}
  local i = at + 2
  for r = 1, count do
    local ki, hash, n = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2])
    local first = i + 3
    i = first + n
    local key = nil
    if ki > 0 then key = KEYS[ki] end
    local prior = key and record_seen(key, hash)
    if prior then
      replies[r] = prior
    else
      local reply = fn(first, i - 1)
      if key then
        record_write(key, hash, reply, ttl)
      end
      replies[r] = {0, reply}
    end
  end
  return replies
end
`

// LoadCoalesced is LoadScript for a script that applies many requests in
// one run: it may call each_request (see eachLua), and is run with
// RunEach or RunCoalesced.
func LoadCoalesced(fsys fs.FS, kind, name string, preludes ...string) *Script {
	var src strings.Builder
	src.WriteString(eachLua)
	writePreludes(&src, fsys, preludes)
	src.Write(mustRead(fsys, name+".lua"))
	channel := fmt.Sprintf("local CH = %s\n", strconv.Quote(EventsChannel))
	sc := NewScript(kind+"."+name, channel+src.String())
	sc.coalesced = true
	return sc
}

// EachCall returns the KEYS and ARGV of one run of a coalesced script
// over reqs, given the script's own keys and shared args.
func EachCall(keys []string, args []any, reqs ...Request) ([]string, []any) {
	ks := slices.Clip(keys)
	n := len(args) + 3
	for _, r := range reqs {
		n += 3 + len(r.Args)
	}
	as := make([]any, 0, n)
	as = append(as, args...)
	at := len(as) + 1
	as = append(as, IdempotencyTTL.Milliseconds(), len(reqs))
	for _, r := range reqs {
		ki := 0
		if r.Once.Key != "" {
			ks = append(ks, r.Once.Key)
			ki = len(ks)
		}
		as = append(as, ki, r.Once.Hash, len(r.Args))
		as = append(as, r.Args...)
	}
	as = append(as, at)
	return ks, as
}

// RunEach runs a script loaded by LoadCoalesced once for all of reqs, and
// answers each. The error is the run's (as Run's): then no request has a
// reply, and each may or may not have been applied when it matches
// ErrMaybeApplied.
func (s *Store) RunEach(ctx context.Context, sc *Script, keys []string, args []any, reqs []Request) ([]Reply, error) {
	if !sc.coalesced {
		return nil, fmt.Errorf("script %s cannot run coalesced", sc.name)
	}
	ks, as := EachCall(keys, args, reqs...)
	v, err := s.Run(ctx, sc, ks, as...)
	if err != nil {
		return nil, err
	}
	out := make([]Reply, len(reqs))
	if v == nil { // the script answered false for the whole run
		return out, nil
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != len(reqs) {
		return nil, fmt.Errorf("script %s: unexpected reply %v", sc.name, v)
	}
	for i, e := range arr {
		el, ok := e.([]any)
		if !ok || len(el) < 1 {
			return nil, fmt.Errorf("script %s: unexpected reply %v", sc.name, v)
		}
		switch code, _ := el[0].(int64); {
		case code == 2:
			out[i].Err = ErrKeyReused
		case len(el) != 2:
			return nil, fmt.Errorf("script %s: unexpected reply %v", sc.name, v)
		default:
			out[i].Val, out[i].Replayed = el[1], code == 1
		}
	}
	return out, nil
}

// RunCoalesced applies one request with a script loaded by
// LoadCoalesced, in a run shared with the other requests to the same
// object (the same script and first key) that arrive close together (see
// the rule at the top of this file). keys and args must be the same for
// every request to one object. The reply is the request's own, as RunOnce
// answers it; the error is as Run's for the run, or ErrKeyReused for
// this request alone.
func (s *Store) RunCoalesced(ctx context.Context, sc *Script, keys []string, args []any, req Request) (v any, replayed bool, err error) {
	return s.Submit(ctx, sc, keys, args, req).Wait(ctx)
}

// Submit queues a request as RunCoalesced does and returns at once; Wait
// for its reply. ctx bounds the request's wait as it bounds Run's, from
// the call to Submit.
func (s *Store) Submit(ctx context.Context, sc *Script, keys []string, args []any, req Request) *Pending {
	p := &Pending{c: s.coal, sc: sc, req: req, deadline: s.deadline(ctx), done: make(chan struct{}, 1)}
	if !sc.coalesced {
		p.state = over
		p.finish(nil, fmt.Errorf("script %s cannot run coalesced", sc.name))
		return p
	}
	s.coal.add(sc, keys, args, p)
	return p
}

// deadline is when a store call made now under ctx ends.
func (s *Store) deadline(ctx context.Context) time.Time {
	d := time.Now().Add(s.timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	return d
}

// CoalesceStats counts the coalesced runs of one script since the store
// opened.
type CoalesceStats struct {
	// Runs is the runs sent to Redis.
	Runs int64
	// Requests is the requests those runs carried.
	Requests int64
}

// Coalesced returns the counts of sc's coalesced runs.
func (s *Store) Coalesced(sc *Script) CoalesceStats {
	c := s.coal
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stats[sc]; st != nil {
		return CoalesceStats{Runs: st.runs.Load(), Requests: st.requests.Load()}
	}
	return CoalesceStats{}
}

// Pending is a request queued by Submit.
type Pending struct {
	c        *coalescer
	q        *runQueue
	sc       *Script
	req      Request
	deadline time.Time
	state    pendingState // under c.mu
	done     chan struct{}
	// Set before done is signalled.
	val      any
	replayed bool
	err      error
}

type pendingState uint8

const (
	queued pendingState = iota // in its queue
	taken                      // in a run
	over                       // answered, or left its queue unapplied
)

func (p *Pending) finish(r *Reply, err error) {
	if r != nil {
		p.val, p.replayed, err = r.Val, r.Replayed, r.Err
	}
	p.err = err
	p.done <- struct{}{}
}

// Wait returns the request's reply, or an error when the request's
// deadline passes or ctx ends first: an error matching ErrMaybeApplied
// when the request was already in a run, else one saying it was not
// applied (as Run's). Call it once.
func (p *Pending) Wait(ctx context.Context) (v any, replayed bool, err error) {
	ctx = waitContext(ctx)
	timer := timerPool.Get().(*time.Timer)
	timer.Reset(time.Until(p.deadline))
	select {
	case <-p.done:
		stopTimer(timer)
		return p.val, p.replayed, p.err
	case <-timer.C:
		timerPool.Put(timer) // fired: stopped, and nothing left to receive
		err = context.DeadlineExceeded
	case <-ctx.Done():
		stopTimer(timer)
		err = ctx.Err()
	}
	c := p.c
	c.mu.Lock()
	switch p.state {
	case queued:
		p.q.remove(p)
		p.state = over
		c.mu.Unlock()
		return nil, false, &ScriptError{Script: p.sc.name, Err: translate(err)}
	case taken:
		c.mu.Unlock()
		return nil, false, &ScriptError{Script: p.sc.name, Err: fmt.Errorf("%w (%w)", translate(err), ErrMaybeApplied)}
	}
	c.mu.Unlock()
	<-p.done // answered meanwhile
	return p.val, p.replayed, p.err
}

// coalescer keeps one queue per object with requests waiting or a run in
// flight, and runs each queue's requests, a run at a time, from a
// goroutine of its own that ends when the queue has been idle for a
// window.
type coalescer struct {
	s      *Store
	window time.Duration
	stop   chan struct{} // closed by Store.Close

	mu     sync.Mutex
	queues map[queueID]*runQueue
	stats  map[*Script]*runStats
}

type queueID struct {
	sc  *Script
	key string
}

type runStats struct{ runs, requests atomic.Int64 }

// runQueue is one object's requests waiting for a run.
type runQueue struct {
	id      queueID
	keys    []string
	args    []any
	stats   *runStats
	pending []*Pending
	nargs   int           // the arguments of pending's requests
	last    time.Time     // when the last run started
	lastN   int           // the requests the last run carried
	wake    chan struct{} // a full queue's signal to the waiting runner
}

func newCoalescer(s *Store, window time.Duration) *coalescer {
	return &coalescer{s: s, window: window, stop: make(chan struct{}), queues: map[queueID]*runQueue{}, stats: map[*Script]*runStats{}}
}

func (c *coalescer) add(sc *Script, keys []string, args []any, p *Pending) {
	id := queueID{sc, ""}
	if len(keys) > 0 {
		id.key = keys[0]
	}
	c.mu.Lock()
	q := c.queues[id]
	start := q == nil
	if start {
		st := c.stats[sc]
		if st == nil {
			st = &runStats{}
			c.stats[sc] = st
		}
		q = &runQueue{id: id, keys: keys, args: args, stats: st, wake: make(chan struct{}, 1)}
		c.queues[id] = q
	}
	p.q = q
	q.pending = append(q.pending, p)
	q.nargs += len(p.req.Args)
	if q.full() || (len(q.pending) == 1 && q.lastN <= 1) {
		// A full run goes at once, and so does a request after a run
		// that carried one (see drain).
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
	if start {
		go c.drain(q)
	}
}

// full reports whether the queue holds a whole run.
func (q *runQueue) full() bool {
	return len(q.pending) >= maxRunRequests || q.nargs >= maxRunArgs
}

func (q *runQueue) remove(p *Pending) {
	if i := slices.Index(q.pending, p); i >= 0 {
		q.pending = slices.Delete(q.pending, i, i+1)
		q.nargs -= len(p.req.Args)
	}
}

// drain runs q's requests until q has been idle for a window, then
// drops q.
func (c *coalescer) drain(q *runQueue) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-c.stop:
			c.closeQueue(q)
			return
		default:
		}
		c.mu.Lock()
		now := time.Now()
		// A request whose deadline passed in the queue is not sent: its
		// caller has stopped waiting (as the pipeline does).
		q.pending = slices.DeleteFunc(q.pending, func(p *Pending) bool {
			if now.Before(p.deadline) {
				return false
			}
			q.nargs -= len(p.req.Args)
			p.state = over
			p.finish(nil, &ScriptError{Script: p.sc.name, Err: translate(context.DeadlineExceeded)})
			return true
		})
		wait := c.window - now.Sub(q.last)
		if len(q.pending) == 0 && wait <= 0 {
			delete(c.queues, q.id)
			c.mu.Unlock()
			return
		}
		if len(q.pending) > 0 && q.lastN <= 1 {
			// The last run carried one request: nothing met it, so a
			// request now (a caller reporting one call after another)
			// goes at once (add wakes this loop for it). The window holds
			// runs apart only once requests meet, which is when it saves
			// the store work.
			wait = 0
		}
		if wait > 0 && !q.full() {
			c.mu.Unlock()
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-q.wake:
				timer.Stop()
			case <-c.stop:
				c.closeQueue(q)
				return
			}
			continue
		}
		batch := q.take()
		q.last, q.lastN = now, len(batch)
		c.mu.Unlock()
		c.run(q, batch)
	}
}

// closeQueue answers q's waiting requests, unapplied, and drops q: the
// store is closed.
func (c *coalescer) closeQueue(q *runQueue) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range q.pending {
		p.state = over
		p.finish(nil, &ScriptError{Script: p.sc.name, Err: fmt.Errorf("%w: store closed", ErrUnavailable)})
	}
	q.pending = nil
	delete(c.queues, q.id)
}

// take removes a run's worth of requests from the front of the queue.
func (q *runQueue) take() []*Pending {
	n, nargs := 0, 0
	for n < len(q.pending) && n < maxRunRequests {
		a := len(q.pending[n].req.Args)
		if n > 0 && nargs+a > maxRunArgs {
			break
		}
		nargs += a
		n++
	}
	batch := slices.Clone(q.pending[:n])
	q.pending = slices.Delete(q.pending, 0, n)
	q.nargs -= nargs
	for _, p := range batch {
		p.state = taken
	}
	return batch
}

// run sends one run and answers its requests. The run has the latest of
// its requests' deadlines: a caller whose own deadline passes first stops
// waiting (see Wait), and the run is not cut short for the others.
func (c *coalescer) run(q *runQueue, batch []*Pending) {
	deadline := batch[0].deadline
	reqs := make([]Request, len(batch))
	for i, p := range batch {
		reqs[i] = p.req
		if p.deadline.After(deadline) {
			deadline = p.deadline
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	replies, err := c.s.RunEach(ctx, q.id.sc, q.keys, q.args, reqs)
	cancel()
	var merr *ScriptError
	if err != nil && !errors.As(err, &merr) {
		err = &ScriptError{Script: q.id.sc.name, Err: err}
	}
	q.stats.runs.Add(1)
	q.stats.requests.Add(int64(len(batch)))
	c.mu.Lock()
	for _, p := range batch {
		p.state = over
	}
	c.mu.Unlock()
	for i, p := range batch {
		if err != nil {
			p.finish(nil, err)
			continue
		}
		p.finish(&replies[i], nil)
	}
}
