package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

// budget lends a fixed number of retries and counts how often it is asked.
type budget struct{ left, asked int }

func (b *budget) SpendRetry() bool {
	b.asked++
	if b.left == 0 {
		return false
	}
	b.left--
	return true
}

var errFail = errors.New("fail")

func sleepNone(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// TestDoSpendsTheBudgetJoined: a budget that joins the attempts is asked
// once before each retry, and a retry it refuses is not made; the
// attempts after the first are retries; with no budget joined every
// attempt is made.
func TestDoSpendsTheBudgetJoined(t *testing.T) {
	tests := []struct {
		name      string
		attempts  int
		left      int
		join      bool
		wantMade  int
		wantAsked int
	}{
		{"two retries lent of four", 5, 2, true, 3, 3},
		{"none lent", 5, 0, true, 1, 1},
		{"more lent than needed", 3, 9, true, 3, 2},
		{"no budget joined", 4, 0, false, 4, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &budget{left: tt.left}
			var made int
			var retries []bool
			err := Do(context.Background(), Options{MaxAttempts: tt.attempts, Sleep: sleepNone}, func(ctx context.Context) error {
				made++
				at := FromContext(ctx)
				if at == nil {
					t.Fatalf("attempt %d: no Attempts in its context", made)
				}
				if tt.join {
					retries = append(retries, at.Join(b))
				}
				return errFail
			})
			if !errors.Is(err, errFail) || made != tt.wantMade || b.asked != tt.wantAsked {
				t.Errorf("Do() = %v after %d attempts, budget asked %d times; want %v after %d, asked %d",
					err, made, b.asked, errFail, tt.wantMade, tt.wantAsked)
			}
			for i, r := range retries {
				if r != (i > 0) {
					t.Errorf("Join() in attempt %d = %v, want %v", i+1, r, i > 0)
				}
			}
		})
	}
}

// TestDoOneAttemptCarriesNothing: with one attempt there is no retry to
// budget, and no Attempts in the context.
func TestDoOneAttemptCarriesNothing(t *testing.T) {
	Do(context.Background(), Options{MaxAttempts: 1}, func(ctx context.Context) error {
		if FromContext(ctx) != nil {
			t.Errorf("FromContext() in the only attempt = non-nil, want nil")
		}
		return errFail
	})
}
