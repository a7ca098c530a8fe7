package client

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestRetryAfterError(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantMsg   string
		wantIs    error
		wantAfter time.Duration
	}{
		{
			name:      "open",
			err:       &RetryAfterError{Err: ErrOpen, After: 1500 * time.Millisecond},
			wantMsg:   "breakwater: circuit breaker is open (retry after 1.5s)",
			wantIs:    ErrOpen,
			wantAfter: 1500 * time.Millisecond,
		},
		{
			name:      "wrapped",
			err:       fmt.Errorf("payments: %w", &RetryAfterError{Err: ErrRateLimited, After: time.Second}),
			wantMsg:   "payments: breakwater: rate limited (retry after 1s)",
			wantIs:    ErrRateLimited,
			wantAfter: time.Second,
		},
		{
			name:    "no wait",
			err:     &RetryAfterError{Err: ErrOpen},
			wantMsg: "breakwater: circuit breaker is open",
			wantIs:  ErrOpen,
		},
		{
			name:    "negative wait counts as none",
			err:     &RetryAfterError{Err: ErrOpen, After: -time.Second},
			wantMsg: "breakwater: circuit breaker is open",
			wantIs:  ErrOpen,
		},
		{name: "plain error", err: errBoom, wantMsg: "boom", wantIs: errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.wantMsg {
				t.Errorf("Error() = %q, want %q", got, tt.wantMsg)
			}
			if !errors.Is(tt.err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false, want true", tt.err, tt.wantIs)
			}
			if got := retryAfter(tt.err); got != tt.wantAfter {
				t.Errorf("retryAfter(%v) = %v, want %v", tt.err, got, tt.wantAfter)
			}
		})
	}
}

func TestErrTimeoutMatchesDeadlineExceeded(t *testing.T) {
	if !errors.Is(ErrTimeout, context.DeadlineExceeded) {
		t.Errorf("errors.Is(ErrTimeout, context.DeadlineExceeded) = false, want true")
	}
	//lint:ignore SA1032 the converse is the point: a plain deadline is not an ErrTimeout.
	if errors.Is(context.DeadlineExceeded, ErrTimeout) {
		t.Errorf("errors.Is(context.DeadlineExceeded, ErrTimeout) = true, want false")
	}
}

func TestPermanent(t *testing.T) {
	if Permanent(nil) != nil {
		t.Errorf("Permanent(nil) != nil")
	}
	err := fmt.Errorf("charge: %w", Permanent(errBoom))
	if !IsPermanent(err) || !errors.Is(err, errBoom) || err.Error() != "charge: boom" {
		t.Errorf("Permanent(%v) wrapped = %q (permanent %v), want %q, permanent, matching %v", errBoom, err, IsPermanent(err), "charge: boom", errBoom)
	}
	if IsPermanent(errBoom) {
		t.Errorf("IsPermanent(%v) = true, want false", errBoom)
	}
}
