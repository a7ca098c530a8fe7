package resilience

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

var errBoom = errors.New("boom")

// fakeSleep records the waits Retry asks for and returns err.
type fakeSleep struct {
	waits []time.Duration
	err   error
}

func (s *fakeSleep) sleep(ctx context.Context, d time.Duration) error {
	s.waits = append(s.waits, d)
	return s.err
}

// randSeq returns a Rand func that returns xs in turn, then the last.
func randSeq(xs ...float64) func() float64 {
	i := 0
	return func() float64 {
		x := xs[min(i, len(xs)-1)]
		i++
		return x
	}
}

// failing returns an fn that fails with errs in turn and then succeeds,
// and a pointer to its count of calls.
func failing(errs ...error) (func(context.Context) error, *int) {
	calls := 0
	return func(context.Context) error {
		calls++
		if calls <= len(errs) {
			return errs[calls-1]
		}
		return nil
	}, &calls
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

func TestRetryDelays(t *testing.T) {
	permanent := Permanent(errBoom)
	tests := []struct {
		name      string
		retry     Retry
		errs      []error // the attempts' errors, then success
		wantErr   error   // nil for success
		wantCalls int
		wantWaits []time.Duration
	}{
		{
			name:      "first attempt succeeds",
			retry:     Retry{},
			wantCalls: 1,
		},
		{
			name:      "zero value makes 3 attempts with 100ms base",
			retry:     Retry{jitter: randSeq(1)},
			errs:      repeat(errBoom, 5),
			wantErr:   errBoom,
			wantCalls: 3,
			wantWaits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond},
		},
		{
			name:      "full jitter scales each ceiling",
			retry:     Retry{MaxAttempts: 4, BaseDelay: time.Second, MaxDelay: time.Minute, jitter: randSeq(0.5, 0.25, 0)},
			errs:      repeat(errBoom, 3),
			wantCalls: 4,
			wantWaits: []time.Duration{500 * time.Millisecond, 500 * time.Millisecond, 0},
		},
		{
			name:      "ceiling doubles up to MaxDelay",
			retry:     Retry{MaxAttempts: 7, BaseDelay: time.Second, MaxDelay: 5 * time.Second, jitter: randSeq(1)},
			errs:      repeat(errBoom, 10),
			wantErr:   errBoom,
			wantCalls: 7,
			wantWaits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second},
		},
		{
			name:      "BaseDelay above MaxDelay is cut",
			retry:     Retry{MaxAttempts: 2, BaseDelay: time.Hour, MaxDelay: time.Second, jitter: randSeq(1)},
			errs:      repeat(errBoom, 1),
			wantCalls: 2,
			wantWaits: []time.Duration{time.Second},
		},
		{
			name:      "no overflow after many doublings",
			retry:     Retry{MaxAttempts: 100, BaseDelay: 1, MaxDelay: 1<<63 - 1, jitter: randSeq(1)},
			errs:      repeat(errBoom, 99),
			wantCalls: 100,
			wantWaits: func() []time.Duration {
				var w []time.Duration
				d := time.Duration(1)
				for range 99 {
					w = append(w, d)
					if d > (1<<63-1)/2 {
						d = 1<<63 - 1
					} else {
						d *= 2
					}
				}
				return w
			}(),
		},
		{
			name:      "MaxAttempts 1 never retries",
			retry:     Retry{MaxAttempts: 1},
			errs:      repeat(errBoom, 1),
			wantErr:   errBoom,
			wantCalls: 1,
		},
		{
			name:      "retry-after above the jitter is the wait",
			retry:     Retry{BaseDelay: 100 * time.Millisecond, jitter: randSeq(1)},
			errs:      []error{&waitError{Err: errRateLimited, After: 750 * time.Millisecond}},
			wantCalls: 2,
			wantWaits: []time.Duration{750 * time.Millisecond},
		},
		{
			name:      "retry-after below the jitter changes nothing",
			retry:     Retry{BaseDelay: time.Second, jitter: randSeq(0.5)},
			errs:      []error{&waitError{Err: errRateLimited, After: 100 * time.Millisecond}},
			wantCalls: 2,
			wantWaits: []time.Duration{500 * time.Millisecond},
		},
		{
			name:      "retry-after found through wrapping",
			retry:     Retry{jitter: randSeq(0)},
			errs:      []error{fmt.Errorf("charge: %w", &waitError{Err: errOpen, After: 3 * time.Second})},
			wantCalls: 2,
			wantWaits: []time.Duration{3 * time.Second},
		},
		{
			name:      "retry-after equal to MaxDelay is waited",
			retry:     Retry{MaxDelay: 2 * time.Second, jitter: randSeq(0)},
			errs:      []error{&waitError{Err: errOpen, After: 2 * time.Second}},
			wantCalls: 2,
			wantWaits: []time.Duration{2 * time.Second},
		},
		{
			name:      "retry-after above MaxDelay gives up at once",
			retry:     Retry{MaxDelay: 2 * time.Second},
			errs:      []error{&waitError{Err: errOpen, After: 20 * time.Second}},
			wantErr:   errOpen,
			wantCalls: 1,
		},
		{
			name:      "permanent error is not retried",
			retry:     Retry{},
			errs:      []error{permanent},
			wantErr:   permanent,
			wantCalls: 1,
		},
		{
			name:      "permanent error is not retried even if RetryIf says so",
			retry:     Retry{RetryIf: func(error) bool { return true }},
			errs:      []error{fmt.Errorf("wrapped: %w", permanent)},
			wantErr:   errBoom,
			wantCalls: 1,
		},
		{
			name:      "RetryIf false stops",
			retry:     Retry{RetryIf: func(err error) bool { return !errors.Is(err, errBoom) }},
			errs:      []error{ErrBulkheadFull, errBoom},
			wantErr:   errBoom,
			wantCalls: 2,
			wantWaits: []time.Duration{0},
		},
		{
			name:      "the last error is returned",
			retry:     Retry{MaxAttempts: 2},
			errs:      []error{ErrBulkheadFull, errBoom, errOpen},
			wantErr:   errBoom,
			wantCalls: 2,
			wantWaits: []time.Duration{0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeSleep{}
			r := tt.retry
			r.sleep = s.sleep
			if r.jitter == nil {
				r.jitter = randSeq(0)
			}
			fn, calls := failing(tt.errs...)
			err := r.Do(t.Context(), fn)
			if tt.wantErr == nil && err != nil || !errors.Is(err, tt.wantErr) {
				t.Errorf("Do() = %v, want %v", err, tt.wantErr)
			}
			if *calls != tt.wantCalls {
				t.Errorf("Do() made %d calls, want %d", *calls, tt.wantCalls)
			}
			if !slices.Equal(s.waits, tt.wantWaits) {
				t.Errorf("Do() waited %v, want %v", s.waits, tt.wantWaits)
			}
		})
	}
}

func TestRetryOnRetry(t *testing.T) {
	type call struct {
		attempt int
		err     error
		wait    time.Duration
	}
	var got []call
	r := Retry{
		MaxAttempts: 3,
		BaseDelay:   time.Second,
		jitter:      randSeq(0.5),
		sleep:       (&fakeSleep{}).sleep,
		OnRetry: func(attempt int, err error, wait time.Duration) {
			got = append(got, call{attempt, err, wait})
		},
	}
	fn, _ := failing(errBoom, errOpen, errRateLimited)
	if err := r.Do(t.Context(), fn); !errors.Is(err, errRateLimited) {
		t.Errorf("Do() = %v, want %v", err, errRateLimited)
	}
	want := []call{{1, errBoom, 500 * time.Millisecond}, {2, errOpen, time.Second}}
	if !slices.Equal(got, want) {
		t.Errorf("OnRetry calls = %v, want %v", got, want)
	}
}

func TestRetryCallerCancels(t *testing.T) {
	t.Run("during an attempt", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		s := &fakeSleep{}
		calls := 0
		err := Retry{sleep: s.sleep}.Do(ctx, func(ctx context.Context) error {
			calls++
			cancel()
			return ctx.Err()
		})
		if !errors.Is(err, context.Canceled) || calls != 1 || len(s.waits) != 0 {
			t.Errorf("Do() = %v after %d calls and waits %v, want %v after 1 call, no wait", err, calls, s.waits, context.Canceled)
		}
	})
	t.Run("while waiting", func(t *testing.T) {
		s := &fakeSleep{err: context.Canceled}
		fn, calls := failing(errBoom, errBoom)
		err := Retry{sleep: s.sleep}.Do(t.Context(), fn)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errBoom) {
			t.Errorf("Do() = %v, want an error matching %v and %v", err, context.Canceled, errBoom)
		}
		if *calls != 1 {
			t.Errorf("Do() made %d calls, want 1", *calls)
		}
	})
}

// TestRetryRealSleep runs the default timer-based Sleep on a fake clock.
func TestRetryRealSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var at []time.Duration
		r := Retry{MaxAttempts: 4, BaseDelay: 100 * time.Millisecond, jitter: randSeq(1)}
		err := r.Do(t.Context(), func(context.Context) error {
			at = append(at, time.Since(start))
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Errorf("Do() = %v, want %v", err, errBoom)
		}
		want := []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond}
		if !slices.Equal(at, want) {
			t.Errorf("attempts at %v, want %v", at, want)
		}
	})
}

func TestRetryDeadline(t *testing.T) {
	tests := []struct {
		name      string
		deadline  time.Duration
		cancelAt  time.Duration // 0: never
		wantCalls int
		wantTook  time.Duration
		wantCtx   bool // the error also matches the context's error
	}{
		{name: "wait fits before the deadline", deadline: 2 * time.Second, wantCalls: 3, wantTook: 1500 * time.Millisecond},
		{name: "wait that cannot fit is not started", deadline: 1200 * time.Millisecond, wantCalls: 2, wantTook: 500 * time.Millisecond},
		{name: "cancel while waiting", deadline: time.Hour, cancelAt: 200 * time.Millisecond, wantCalls: 1, wantTook: 200 * time.Millisecond, wantCtx: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), tt.deadline)
				defer cancel()
				if tt.cancelAt > 0 {
					time.AfterFunc(tt.cancelAt, cancel)
				}
				start := time.Now()
				calls := 0
				// waits: 500ms, 1s, 2s
				r := Retry{MaxAttempts: 10, BaseDelay: 500 * time.Millisecond, MaxDelay: time.Minute, jitter: randSeq(1)}
				err := r.Do(ctx, func(context.Context) error {
					calls++
					return errBoom
				})
				took := time.Since(start)
				if !errors.Is(err, errBoom) || errors.Is(err, context.Canceled) != tt.wantCtx {
					t.Errorf("Do() = %v, want %v (matching context.Canceled: %v)", err, errBoom, tt.wantCtx)
				}
				if calls != tt.wantCalls || took != tt.wantTook {
					t.Errorf("Do() made %d calls in %v, want %d in %v", calls, took, tt.wantCalls, tt.wantTook)
				}
			})
		})
	}
}
