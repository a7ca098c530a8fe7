package resilience

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestBulkhead(t *testing.T) {
	tests := []struct {
		name     string
		max      int
		maxWait  time.Duration
		held     int           // slots taken before the call
		freeAt   time.Duration // one held slot is released then; 0: never
		cancelAt time.Duration // the caller cancels then; 0: never
		wantErr  error
		wantTook time.Duration // until Do got a slot or gave up
	}{
		{name: "free slot", max: 2, held: 1},
		{name: "full, no wait", max: 2, held: 2, freeAt: time.Second, wantErr: ErrBulkheadFull},
		{name: "full, slot frees within wait", max: 1, maxWait: time.Second, held: 1, freeAt: 300 * time.Millisecond, wantTook: 300 * time.Millisecond},
		{name: "full, slot frees too late", max: 1, maxWait: time.Second, held: 1, freeAt: 2 * time.Second, wantErr: ErrBulkheadFull, wantTook: time.Second},
		{name: "caller cancels while waiting", max: 1, maxWait: time.Second, held: 1, cancelAt: 100 * time.Millisecond, wantErr: context.Canceled, wantTook: 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewBulkhead(tt.max, tt.maxWait)
				for range tt.held {
					if err := b.Acquire(t.Context()); err != nil {
						t.Fatalf("Acquire() = %v, want nil", err)
					}
				}
				if tt.freeAt > 0 {
					time.AfterFunc(tt.freeAt, b.Release)
				}
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tt.cancelAt > 0 {
					time.AfterFunc(tt.cancelAt, cancel)
				}
				start := time.Now()
				var took time.Duration
				called := false
				err := b.Do(ctx, func(context.Context) error {
					took = time.Since(start)
					called = true
					if got := b.InFlight(); got > tt.max {
						t.Errorf("InFlight() = %d, want at most %d", got, tt.max)
					}
					return nil
				})
				if !called {
					took = time.Since(start)
				}
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
					t.Errorf("Do() = %v, want %v", err, tt.wantErr)
				}
				if called != (tt.wantErr == nil) {
					t.Errorf("Do() called fn: %v, want %v", called, tt.wantErr == nil)
				}
				if took != tt.wantTook {
					t.Errorf("Do() took %v to decide, want %v", took, tt.wantTook)
				}
				time.Sleep(tt.freeAt) // let the AfterFunc run before the bubble ends
			})
		})
	}
}

func TestBulkheadBoundsConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const max, callers = 3, 20
		b := NewBulkhead(max, time.Hour)
		var running, peak atomic.Int64
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				err := b.Do(t.Context(), func(context.Context) error {
					n := running.Add(1)
					for {
						p := peak.Load()
						if n <= p || peak.CompareAndSwap(p, n) {
							break
						}
					}
					time.Sleep(10 * time.Millisecond)
					running.Add(-1)
					return nil
				})
				if err != nil {
					t.Errorf("Do() = %v, want nil", err)
				}
			})
		}
		wg.Wait()
		if peak.Load() != max {
			t.Errorf("peak concurrency = %d, want %d", peak.Load(), max)
		}
		if b.InFlight() != 0 {
			t.Errorf("InFlight() = %d after all calls, want 0", b.InFlight())
		}
	})
}

func TestBulkheadFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBulkhead(1, time.Hour)
		if err := b.Acquire(t.Context()); err != nil {
			t.Fatalf("Acquire() = %v", err)
		}
		var order []int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				_ = b.Do(t.Context(), func(context.Context) error {
					mu.Lock()
					order = append(order, i)
					mu.Unlock()
					return nil
				})
			})
			synctest.Wait() // caller i is queued before caller i+1 starts
		}
		b.Release()
		wg.Wait()
		for i, got := range order {
			if got != i {
				t.Fatalf("callers ran in order %v, want arrival order", order)
			}
		}
	})
}

func TestNewBulkheadPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("NewBulkhead(0, 0) did not panic")
		}
	}()
	NewBulkhead(0, 0)
}

func TestBulkheadReleaseWithoutAcquirePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("Release() without Acquire did not panic")
		}
	}()
	NewBulkhead(1, 0).Release()
}
