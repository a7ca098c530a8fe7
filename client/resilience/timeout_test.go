package resilience

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestTimeout(t *testing.T) {
	tests := []struct {
		name       string
		timeout    time.Duration
		callerIn   time.Duration // the caller's deadline; 0: none
		callerStop bool          // the caller cancels after 50ms instead
		fnTakes    time.Duration // fn returns after this, or when ctx ends
		fnIgnores  bool          // fn ignores ctx and returns nil
		fnErr      error         // fn's error when it finishes in time
		wantTook   time.Duration
		wantErrs   []error // errors.Is must hold for each
		notErrs    []error // and hold for none of these
	}{
		{
			name:     "finishes in time",
			timeout:  time.Second,
			fnTakes:  100 * time.Millisecond,
			wantTook: 100 * time.Millisecond,
		},
		{
			name:     "error in time passes through",
			timeout:  time.Second,
			fnTakes:  100 * time.Millisecond,
			fnErr:    errBoom,
			wantTook: 100 * time.Millisecond,
			wantErrs: []error{errBoom},
			notErrs:  []error{ErrTimeout, context.DeadlineExceeded},
		},
		{
			name:     "own deadline fires",
			timeout:  time.Second,
			fnTakes:  time.Hour,
			wantTook: time.Second,
			wantErrs: []error{ErrTimeout, context.DeadlineExceeded},
		},
		{
			name:      "late success is success",
			timeout:   time.Second,
			fnTakes:   2 * time.Second,
			fnIgnores: true,
			wantTook:  2 * time.Second,
		},
		{
			name:     "caller's earlier deadline passes through",
			timeout:  time.Second,
			callerIn: 300 * time.Millisecond,
			fnTakes:  time.Hour,
			wantTook: 300 * time.Millisecond,
			wantErrs: []error{context.DeadlineExceeded},
			notErrs:  []error{ErrTimeout},
		},
		{
			name:       "caller's cancellation passes through",
			timeout:    time.Second,
			callerStop: true,
			fnTakes:    time.Hour,
			wantTook:   50 * time.Millisecond,
			wantErrs:   []error{context.Canceled},
			notErrs:    []error{ErrTimeout, context.DeadlineExceeded},
		},
		{
			name:     "zero duration sets no deadline",
			fnTakes:  time.Hour,
			wantTook: time.Hour,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				if tt.callerIn > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.callerIn)
					defer cancel()
				}
				if tt.callerStop {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
					time.AfterFunc(50*time.Millisecond, cancel)
				}
				start := time.Now()
				err := Timeout{Duration: tt.timeout}.Do(ctx, func(ctx context.Context) error {
					if tt.fnIgnores {
						time.Sleep(tt.fnTakes)
						return nil
					}
					select {
					case <-time.After(tt.fnTakes):
						return tt.fnErr
					case <-ctx.Done():
						return ctx.Err()
					}
				})
				if took := time.Since(start); took != tt.wantTook {
					t.Errorf("Do() took %v, want %v", took, tt.wantTook)
				}
				if len(tt.wantErrs) == 0 && err != nil {
					t.Errorf("Do() = %v, want nil", err)
				}
				for _, want := range tt.wantErrs {
					if !errors.Is(err, want) {
						t.Errorf("Do() = %v, want an error matching %v", err, want)
					}
				}
				for _, not := range tt.notErrs {
					if errors.Is(err, not) {
						t.Errorf("Do() = %v, matches %v, want not", err, not)
					}
				}
			})
		})
	}
}

// TestTimeoutFirstDeadlineWins checks that the deadline that ended the
// call first decides, when both end before fn returns.
func TestTimeoutFirstDeadlineWins(t *testing.T) {
	tests := []struct {
		name        string
		timeout     time.Duration
		cancelAt    time.Duration
		wantTimeout bool
	}{
		{name: "own deadline first", timeout: 100 * time.Millisecond, cancelAt: 150 * time.Millisecond, wantTimeout: true},
		{name: "caller first", timeout: 150 * time.Millisecond, cancelAt: 100 * time.Millisecond, wantTimeout: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				time.AfterFunc(tt.cancelAt, cancel)
				err := Timeout{Duration: tt.timeout}.Do(ctx, func(ctx context.Context) error {
					time.Sleep(200 * time.Millisecond) // slow to notice
					return ctx.Err()
				})
				if got := errors.Is(err, ErrTimeout); got != tt.wantTimeout {
					t.Errorf("Do() = %v, matching ErrTimeout: %v, want %v", err, got, tt.wantTimeout)
				}
			})
		})
	}
}

func TestTimeoutErrorKeepsCause(t *testing.T) {
	errConnReset := errors.New("connection reset")
	synctest.Test(t, func(t *testing.T) {
		err := Timeout{Duration: time.Second}.Do(t.Context(), func(ctx context.Context) error {
			<-ctx.Done()
			return errConnReset
		})
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, errConnReset) {
			t.Errorf("Do() = %v, want an error matching %v and %v", err, ErrTimeout, errConnReset)
		}
		var te interface{ Timeout() bool }
		if !errors.As(err, &te) || !te.Timeout() {
			t.Errorf("Do() = %v, want an error with Timeout() true", err)
		}
	})
}
