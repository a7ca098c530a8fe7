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
// Most code wants the shared clock: acquireCoarseClock starts it on first
// use and stops it when its last user lets go, so a process with no
// clients runs no ticker. A coarseClock is safe for concurrent use.
type coarseClock struct {
	nanos    atomic.Int64 // Unix nanoseconds at the last tick
	base     time.Time    // with a monotonic reading
	baseUnix int64
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
		stopc:    make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.nanos.Store(c.baseUnix)
	go c.run(time.NewTicker(interval))
	return c
}

func (c *coarseClock) run(t *time.Ticker) {
	defer close(c.done)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.nanos.Store(c.baseUnix + int64(time.Since(c.base)))
		case <-c.stopc:
			return
		}
	}
}

// unixNano returns the time of the last tick in Unix nanoseconds. It is
// one atomic load: subtract two readings for a duration.
func (c *coarseClock) unixNano() int64 { return c.nanos.Load() }

// now returns the time of the last tick as a time.Time, with no monotonic
// reading.
func (c *coarseClock) now() time.Time { return time.Unix(0, c.nanos.Load()) }

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
