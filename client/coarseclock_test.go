package client

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestCoarseClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCoarseClock(time.Millisecond)
		defer c.stop()
		start := time.Now().UnixNano()
		if got := c.unixNano(); got != start {
			t.Errorf("unixNano() at start = %d, want %d", got, start)
		}
		for _, step := range []time.Duration{500 * time.Microsecond, 500 * time.Microsecond, 7 * time.Millisecond, 1500 * time.Microsecond} {
			time.Sleep(step)
			synctest.Wait() // let the ticker's goroutine store its tick
			now := time.Now().UnixNano()
			got := c.unixNano()
			lastTick := start + (now-start)/int64(time.Millisecond)*int64(time.Millisecond)
			if got != lastTick {
				t.Errorf("unixNano() %v after start = %v, want the last tick, %v", time.Duration(now-start), time.Duration(got-start), time.Duration(lastTick-start))
			}
			if got > now {
				t.Errorf("unixNano() is ahead of time.Now() by %v", time.Duration(got-now))
			}
			if !c.now().Equal(time.Unix(0, got)) {
				t.Errorf("now() = %v, want %v", c.now(), time.Unix(0, got))
			}
		}
	})
}

func TestCoarseClockStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCoarseClock(time.Millisecond)
		time.Sleep(5 * time.Millisecond)
		synctest.Wait()
		c.stop()
		c.stop() // a second stop does nothing
		frozen := c.unixNano()
		time.Sleep(5 * time.Millisecond)
		if got := c.unixNano(); got != frozen {
			t.Errorf("unixNano() moved from %d to %d after stop", frozen, got)
		}
	})
}

// TestCoarseClockPausesWhenUnread: a clock nobody reads stops ticking, and
// the first reading after that is the time now, not the last tick's; the
// ticker runs again from then on.
func TestCoarseClockPausesWhenUnread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCoarseClock(time.Millisecond)
		defer c.stop()
		time.Sleep(time.Duration(coarseClockIdleTicks+1) * time.Millisecond)
		synctest.Wait()
		if !c.paused.Load() {
			t.Fatalf("clock unread for %d ticks still ticks, want it paused", coarseClockIdleTicks+1)
		}
		paused := c.nanos.Load()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := c.nanos.Load(); got != paused {
			t.Errorf("paused clock moved by %v while nobody read it", time.Duration(got-paused))
		}
		if got, want := c.unixNano(), time.Now().UnixNano(); got != want {
			t.Errorf("first unixNano() after a pause = %v behind time.Now(), want the time now", time.Duration(want-got))
		}
		synctest.Wait()
		if c.paused.Load() {
			t.Fatalf("clock still paused after a reading, want it ticking again")
		}
		before := c.unixNano()
		time.Sleep(3 * time.Millisecond)
		synctest.Wait()
		if got := c.unixNano(); got-before < int64(2*time.Millisecond) {
			t.Errorf("clock moved %v in 3ms after waking, want its ticks back", time.Duration(got-before))
		}
	})
}

// TestCoarseClockReadKeepsItTicking: a clock read at least once every few
// ticks never pauses, so its readings stay one atomic load.
func TestCoarseClockReadKeepsItTicking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCoarseClock(time.Millisecond)
		defer c.stop()
		for range 5 * coarseClockIdleTicks {
			c.unixNano()
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
			if c.paused.Load() {
				t.Fatalf("clock read every 10 ticks paused, want it ticking")
			}
		}
	})
}

func TestAcquireCoarseClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c1, release1 := acquireCoarseClock()
		c2, release2 := acquireCoarseClock()
		if c1 != c2 {
			t.Fatalf("acquireCoarseClock() gave two clocks to two users, want one shared")
		}
		release1()
		release1() // a second release does nothing
		select {
		case <-c1.done:
			t.Fatalf("clock stopped while a user still holds it")
		default:
		}
		release2()
		select {
		case <-c1.done:
		default:
			t.Fatalf("clock still running after its last user let go")
		}
		c3, release3 := acquireCoarseClock()
		defer release3()
		if c3 == c1 {
			t.Errorf("acquireCoarseClock() after the last release gave the stopped clock, want a new one")
		}
	})
}

func BenchmarkClock(b *testing.B) {
	c, release := acquireCoarseClock()
	defer release()
	var sink int64
	b.Run("coarse/unixNano", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += c.unixNano()
		}
	})
	b.Run("coarse/since", func(b *testing.B) {
		b.ReportAllocs()
		start := c.unixNano()
		for b.Loop() {
			sink += c.unixNano() - start
		}
	})
	b.Run("coarse/now", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += int64(c.now().Nanosecond())
		}
	})
	b.Run("time/Now", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += int64(time.Now().Nanosecond())
		}
	})
	b.Run("time/Since", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			sink += int64(time.Since(start))
		}
	})
	b.Run("coarse/unixNano/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var s int64
			for pb.Next() {
				s += c.unixNano()
			}
			_ = s
		})
	})
	b.Run("time/Now/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var s int64
			for pb.Next() {
				s += int64(time.Now().Nanosecond())
			}
			_ = s
		})
	})
	_ = sink
}
