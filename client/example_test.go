package client_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/breakwater-dev/breakwater/client"
	"github.com/breakwater-dev/breakwater/client/resilience"
)

func ExampleRetryAfterError() {
	// A refusal that says when to come back: Retry waits at least that
	// long, and gives up at once if it is longer than its MaxDelay.
	err := fmt.Errorf("payments: %w", &client.RetryAfterError{Err: client.ErrOpen, After: 20 * time.Second})
	fmt.Println(err)
	fmt.Println(errors.Is(err, client.ErrOpen))

	attempts := 0
	err = resilience.Retry{MaxDelay: 5 * time.Second}.Do(context.Background(), func(ctx context.Context) error {
		attempts++
		return err
	})
	fmt.Println(attempts)
	// Output:
	// payments: breakwater: circuit breaker is open (retry after 20s)
	// true
	// 1
}
