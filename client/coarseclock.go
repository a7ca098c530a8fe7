package client

import (
	"sync"
	"sync/atomic"
	"time"
)

// coarseClockInterval is how often a coarseClock is refreshed. Breaker
// thresholds and cache lifetimes are whole milliseconds, so a millisecond
// of staleness costs no decision anything.
const coarseClockInterval = time.Millisecond

// coarseClockIdleTicks is how many ticks in a row nobody may read the
// clock before its ticker pauses: a process that makes no calls does not
// wake a thousand times a second for nothing.
const coarseClockIdleTicks = 50

// A coarseClock is a clock that is cheap to read: an atomic load of Unix
// nanoseconds that a ticker goroutine refreshes every interval, instead of
// time.Now, which costs more than the rest of a cached decision
// (BenchmarkClock; docs/design.md, "The hot path is local"). It is for the
// hot path only: cache expiry and call durations, whose thresholds are in
// milliseconds.
//
// A reading lags behind the real time by up to the interval, more when the
// process is starved of CPU, and is never ahead of it. The clock follows
// the monotonic clock from the moment it starts, anchored to the wall clock
// then, so it never steps back when the wall clock is set; over days it
// may drift from the wall clock as the monotonic clock does. Readings
// after stop stay where they were.
//
// When nobody has read the clock for coarseClockIdleTicks ticks, the
// ticker pauses; the first reading after that reads time.Now itself (so
// it is never stale) and wakes the ticker.
//
// Most code wants the shared clock: acquireCoarseClock starts it on first
// use and stops it when its last user lets go, so a process with no
// clients runs no ticker. A coarseClock is safe for concurrent use.
type coarseClock struct {
	nanos    atomic.Int64 // Unix nanoseconds at the last tick
	base     time.Time    // with a monotonic reading
	baseUnix int64
	read     atomic.Bool // read since the last tick
	paused   atomic.Bool // the ticker waits on wake
	wake     chan struct{}
	stopc    chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// startCoarseClock starts a clock that refreshes every interval, until
// stop is called.
func startCoarseClock(interval time.Duration) *coarseClock {
	now := time.Now()
	c := &coarseClock{
		base:     now,
		baseUnix: now.UnixNano(),
		wake:     make(chan struct{}, 1),
		stopc:    make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.nanos.Store(c.baseUnix)
	go c.run(interval)
	return c
}

func (c *coarseClock) run(interval time.Duration) {
	defer close(c.done)
	// After stop, readings stay where they were, paused or not.
	defer c.paused.Store(false)
	t := time.NewTicker(interval)
	defer t.Stop()
	idle := 0
	for {
		select {
		case <-t.C:
			c.advance()
			if c.read.Swap(false) {
				idle = 0
				continue
			}
			if idle++; idle < coarseClockIdleTicks {
				continue
			}
			// Nobody reads the clock: pause until someone does. A
			// reading that sees paused reads time.Now itself, so none
			// is stale while the ticker sleeps.
			t.Stop()
			c.paused.Store(true)
			if c.read.Load() {
				// Someone read between the last tick and the pause, and
				// may not have seen it: their next readings would not
				// look again. Keep ticking.
				c.paused.Store(false)
				idle = 0
				t.Reset(interval)
				continue
			}
			select {
			case <-c.wake:
			case <-c.stopc:
				return
			}
			c.paused.Store(false)
			c.advance()
			idle = 0
			t.Reset(interval)
		case <-c.stopc:
			return
		}
	}
}

// advance moves the clock to the time now, never back: readers that find
// the ticker paused advance it too.
func (c *coarseClock) advance() int64 {
	n := c.baseUnix + int64(time.Since(c.base))
	for {
		old := c.nanos.Load()
		if n <= old {
			return old
		}
		if c.nanos.CompareAndSwap(old, n) {
			return n
		}
	}
}

// unixNano returns the time of the last tick in Unix nanoseconds: one
// atomic load while the clock is in use. Subtract two readings for a
// duration.
func (c *coarseClock) unixNano() int64 {
	if !c.read.Load() {
		return c.firstRead()
	}
	return c.nanos.Load()
}

// firstRead is the first reading since a tick: it marks the clock used
// (the others only load the flag, so readers on many cores do not
// contend), and reads the time now if the ticker is paused.
func (c *coarseClock) firstRead() int64 {
	c.read.Store(true)
	if c.paused.Load() {
		select {
		case c.wake <- struct{}{}:
		default:
		}
		return c.advance()
	}
	return c.nanos.Load()
}

// now returns the time of the last tick as a time.Time, with no monotonic
// reading.
func (c *coarseClock) now() time.Time { return time.Unix(0, c.unixNano()) }

// stop stops the ticker and waits for its goroutine to end. It may be
// called more than once.
func (c *coarseClock) stop() {
	c.stopOnce.Do(func() { close(c.stopc) })
	<-c.done
}

// sharedClock is the process's coarse clock while anyone holds it.
var sharedClock struct {
	mu    sync.Mutex
	clock *coarseClock
	users int
}

// acquireCoarseClock returns the process's shared coarse clock, starting
// it if nobody holds it, and a release func that lets go of it; the last
// release stops it. Call release once, when done with the clock (a
// client's Close); later calls do nothing.
func acquireCoarseClock() (c *coarseClock, release func()) {
	sharedClock.mu.Lock()
	defer sharedClock.mu.Unlock()
	if sharedClock.clock == nil {
		sharedClock.clock = startCoarseClock(coarseClockInterval)
	}
	sharedClock.users++
	c = sharedClock.clock
	var once sync.Once
	return c, func() {
		once.Do(func() {
			sharedClock.mu.Lock()
			defer sharedClock.mu.Unlock()
			sharedClock.users--
			if sharedClock.users == 0 {
				sharedClock.clock = nil
				c.stop()
			}
		})
	}
}
