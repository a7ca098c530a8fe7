package client

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// limiterStep is one call of a localLimiter scenario and what it must give.
type limiterStep struct {
	at time.Duration // since t0
	op string        // "take", "reserve", "putBack", "tokens"
	n  int64

	maxWait time.Duration // reserve
	ok      bool          // take, reserve
	wait    time.Duration // reserve
	tokens  float64       // tokens
}

func TestLocalLimiter(t *testing.T) {
	tests := []struct {
		name     string
		capacity float64
		rate     float64
		steps    []limiterStep
	}{
		{
			name:     "starts full, refills continuously",
			capacity: 10, rate: 10,
			steps: []limiterStep{
				{op: "take", n: 10, ok: true},
				{op: "take", n: 1, ok: false},
				{at: 99 * msd, op: "take", n: 1, ok: false},
				{at: 100 * msd, op: "take", n: 1, ok: true},
				{at: 100 * msd, op: "tokens", tokens: 0},
				{at: 350 * msd, op: "tokens", tokens: 2.5},
			},
		},
		{
			name:     "all or nothing",
			capacity: 5, rate: 1,
			steps: []limiterStep{
				{op: "take", n: 3, ok: true},
				{op: "take", n: 3, ok: false},
				{op: "take", n: 2, ok: true},
			},
		},
		{
			name:     "never above capacity",
			capacity: 3, rate: 100,
			steps: []limiterStep{
				{op: "take", n: 3, ok: true},
				{at: time.Hour, op: "tokens", tokens: 3},
				{at: time.Hour, op: "take", n: 4, ok: false},
				{at: time.Hour, op: "take", n: 3, ok: true},
			},
		},
		{
			name:     "more than capacity never succeeds",
			capacity: 3, rate: 1,
			steps: []limiterStep{
				{op: "take", n: 4, ok: false},
				{op: "reserve", n: 4, maxWait: time.Hour, ok: false, wait: math.MaxInt64},
				{op: "tokens", tokens: 3},
			},
		},
		{
			name:     "zero tokens always succeed",
			capacity: 1, rate: 1,
			steps: []limiterStep{
				{op: "take", n: 1, ok: true},
				{op: "take", n: 0, ok: true},
				{op: "reserve", n: 0, ok: true},
			},
		},
		{
			name:     "fractional rate and capacity",
			capacity: 2.5, rate: 0.5,
			steps: []limiterStep{
				{op: "take", n: 2, ok: true},
				{op: "tokens", tokens: 0.5},
				{at: 999 * msd, op: "take", n: 1, ok: false},
				{at: sec, op: "take", n: 1, ok: true},
				{at: 10 * sec, op: "tokens", tokens: 2.5},
				{at: 10 * sec, op: "take", n: 3, ok: false},
			},
		},
		{
			name:     "reservations queue behind each other",
			capacity: 10, rate: 10,
			steps: []limiterStep{
				{op: "reserve", n: 10, maxWait: 0, ok: true, wait: 0},
				{op: "reserve", n: 5, maxWait: time.Second, ok: true, wait: 500 * msd},
				{op: "reserve", n: 5, maxWait: time.Second, ok: true, wait: time.Second},
				{op: "reserve", n: 1, maxWait: time.Second, ok: false, wait: 1100 * msd},
				{op: "tokens", tokens: -10},
				{op: "take", n: 1, ok: false},
				{at: 500 * msd, op: "tokens", tokens: -5},
				{at: sec, op: "tokens", tokens: 0},
				{at: 1100 * msd, op: "take", n: 1, ok: true},
			},
		},
		{
			name:     "put back tokens, never above capacity",
			capacity: 10, rate: 10,
			steps: []limiterStep{
				{op: "take", n: 10, ok: true},
				{op: "reserve", n: 5, maxWait: time.Second, ok: true, wait: 500 * msd},
				{at: 100 * msd, op: "putBack", n: 5},
				{at: 100 * msd, op: "tokens", tokens: 1},
				{at: 100 * msd, op: "putBack", n: 100},
				{at: 100 * msd, op: "tokens", tokens: 10},
			},
		},
		{
			name:     "time going back refills nothing",
			capacity: 10, rate: 10,
			steps: []limiterStep{
				{at: sec, op: "take", n: 10, ok: true},
				{at: 0, op: "take", n: 1, ok: false},
				{at: sec, op: "tokens", tokens: 0},
				{at: 1100 * msd, op: "tokens", tokens: 1},
			},
		},
		{
			name:     "a century later it is full, without overflow",
			capacity: 1e9, rate: 1e9,
			steps: []limiterStep{
				{op: "take", n: 1e9, ok: true},
				{at: 100 * 365 * 24 * time.Hour, op: "tokens", tokens: 1e9},
			},
		},
		{
			name:     "a full bucket drops what overflows",
			capacity: 1, rate: 3, // full again at 333333333.3 ns
			steps: []limiterStep{
				{op: "take", n: 1, ok: true},
				{at: 333333333, op: "take", n: 1, ok: false},
				{at: 333333334, op: "take", n: 1, ok: true}, // 0.7 ns of refill lost
				{at: 666666667, op: "take", n: 1, ok: false},
				{at: 666666668, op: "take", n: 1, ok: true},
			},
		},
		{
			name:     "a reservation's wait is rounded up to the nanosecond",
			capacity: 1, rate: 3,
			steps: []limiterStep{
				{op: "take", n: 1, ok: true},
				{op: "reserve", n: 1, maxWait: sec, ok: true, wait: 333333334},
				{at: 333333333, op: "take", n: 1, ok: false},
				{at: 333333334, op: "tokens", tokens: 2e-9}, // the wait rounded up
			},
		},
		{
			name:     "rate zero never refills",
			capacity: 1, rate: 0,
			steps: []limiterStep{
				{op: "take", n: 1, ok: true},
				{at: time.Hour, op: "take", n: 1, ok: false},
				{at: time.Hour, op: "reserve", n: 1, maxWait: time.Hour, ok: false, wait: math.MaxInt64},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLocalLimiter(tt.capacity, tt.rate, t0)
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				switch s.op {
				case "take":
					if got := l.take(now, s.n); got != s.ok {
						t.Fatalf("step %d: take(%v, %d) = %v, want %v", i, s.at, s.n, got, s.ok)
					}
				case "reserve":
					wait, ok := l.reserve(now, s.n, s.maxWait)
					if wait != s.wait || ok != s.ok {
						t.Fatalf("step %d: reserve(%v, %d, %v) = %v, %v; want %v, %v", i, s.at, s.n, s.maxWait, wait, ok, s.wait, s.ok)
					}
				case "putBack":
					l.putBack(now, s.n)
				case "tokens":
					if got := l.tokensAt(now); got != s.tokens {
						t.Fatalf("step %d: tokensAt(%v) = %v, want %v", i, s.at, got, s.tokens)
					}
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
			}
		})
	}
}

// TestLocalLimiterNoDrift checks that refilling in many small steps loses
// nothing: at a rate of 0.7 per second, the k-th token is there at exactly
// ceil(k·1e9/0.7) ns and not a nanosecond before, for 30,000 tokens, with
// refills at uneven times in between that leave remainders.
func TestLocalLimiterNoDrift(t *testing.T) {
	l := newLocalLimiter(2, 0.7, t0) // never full again: no refill is cut
	if !l.take(t0, 2) {
		t.Fatalf("take(0, 2) = false, want true")
	}
	prev := time.Duration(0)
	for k := int64(1); k <= 30000; k++ {
		due := time.Duration((k*1e10 + 6) / 7) // ceil(k·1e9/0.7)
		for _, at := range []time.Duration{prev + (due-prev)/3, prev + (due-prev)*2/3 + 1} {
			l.tokensAt(t0.Add(at))
		}
		if l.take(t0.Add(due-1), 1) {
			t.Fatalf("take(%v, 1) = true, want false: token %d came early", due-1, k)
		}
		if !l.take(t0.Add(due), 1) {
			t.Fatalf("take(%v, 1) = false, want true: token %d is late", due, k)
		}
		prev = due
	}
}

func TestLocalLimiterSetLimit(t *testing.T) {
	l := newLocalLimiter(100, 10, t0)
	l.take(t0, 50)
	l.setLimit(t0.Add(sec), 20, 1) // 60 tokens, cut to 20
	if got := l.tokensAt(t0.Add(sec)); got != 20 {
		t.Errorf("tokensAt after setLimit(20, 1) = %v, want 20", got)
	}
	l.take(t0.Add(sec), 20)
	if got := l.tokensAt(t0.Add(3 * sec)); got != 2 {
		t.Errorf("tokensAt 2s after at the new rate = %v, want 2", got)
	}
}

// TestLocalLimiterConcurrent checks, under -race, that concurrent takers
// never get more than capacity + rate × elapsed.
func TestLocalLimiterConcurrent(t *testing.T) {
	const capacity, rate, steps = 10, 50, 1000 // steps of 1 ms: 1 s
	l := newLocalLimiter(capacity, rate, t0)
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range steps {
				if l.take(t0.Add(time.Duration(i)*time.Millisecond), 1) {
					granted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got, limit := granted.Load(), int64(capacity+rate*(steps-1)/1000); got > limit {
		t.Errorf("granted %d tokens, want at most %d", got, limit)
	}
}

func BenchmarkLocalLimiterTake(b *testing.B) {
	l := newLocalLimiter(1e6, 1e6, t0)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		now := t0
		for b.Loop() {
			now = now.Add(time.Microsecond)
			l.take(now, 1)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			now := t0
			for pb.Next() {
				now = now.Add(time.Microsecond)
				l.take(now, 1)
			}
		})
	})
}
