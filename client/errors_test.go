package client

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

var errPlain = errors.New("boom")

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
		{name: "plain error", err: errPlain, wantMsg: "boom", wantIs: errPlain},
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
