package client_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/breakwater-dev/breakwater/client"
)

var errUnavailable = errors.New("payments: 503 service unavailable")

func ExampleRetry() {
	attempts := 0
	charge := func(ctx context.Context) error {
		attempts++
		if attempts < 3 {
			return errUnavailable
		}
		return nil
	}

	retry := client.Retry{
		MaxAttempts: 5,
		BaseDelay:   time.Millisecond, // waits are random in [0, 1ms), [0, 2ms), ...
		MaxDelay:    time.Second,
		RetryIf: func(err error) bool {
			return !errors.Is(err, client.ErrBulkheadFull)
		},
	}
	err := retry.Execute(context.Background(), charge)
	fmt.Println(attempts, err)
	// Output: 3 <nil>
}

func ExamplePermanent() {
	errDeclined := errors.New("card declined")
	attempts := 0
	err := client.Retry{}.Execute(context.Background(), func(ctx context.Context) error {
		attempts++
		return client.Permanent(errDeclined) // retrying will not help
	})
	fmt.Println(attempts, errors.Is(err, errDeclined), client.IsPermanent(err))
	// Output: 1 true true
}

func ExampleRetryAfterError() {
	// A refusal that says when to come back: Retry waits at least that
	// long, and gives up at once if it is longer than its MaxDelay.
	err := fmt.Errorf("payments: %w", &client.RetryAfterError{Err: client.ErrOpen, After: 20 * time.Second})
	fmt.Println(err)
	fmt.Println(errors.Is(err, client.ErrOpen))

	attempts := 0
	err = client.Retry{MaxDelay: 5 * time.Second}.Execute(context.Background(), func(ctx context.Context) error {
		attempts++
		return err
	})
	fmt.Println(attempts)
	// Output:
	// payments: breakwater: circuit breaker is open (retry after 20s)
	// true
	// 1
}

func ExampleTimeout() {
	slow := func(ctx context.Context) error {
		select {
		case <-time.After(time.Hour):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := client.Timeout{Duration: 10 * time.Millisecond}.Execute(context.Background(), slow)
	fmt.Println(errors.Is(err, client.ErrTimeout), errors.Is(err, context.DeadlineExceeded))

	// The caller's own cancellation is not a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = client.Timeout{Duration: time.Second}.Execute(ctx, slow)
	fmt.Println(errors.Is(err, client.ErrTimeout), errors.Is(err, context.Canceled))
	// Output:
	// true true
	// false true
}

func ExampleBulkhead() {
	// At most 10 calls to payments at once; others wait up to 50 ms.
	payments := client.NewBulkhead(10, 50*time.Millisecond)
	err := payments.Execute(context.Background(), func(ctx context.Context) error {
		fmt.Println("charging; in flight:", payments.InFlight())
		return nil
	})
	fmt.Println(err)

	// A call that finds every slot taken fails fast.
	email := client.NewBulkhead(1, 0)
	_ = email.Acquire(context.Background()) // a long send holds the only slot
	err = email.Execute(context.Background(), func(ctx context.Context) error { return nil })
	fmt.Println(err)
	email.Release()
	// Output:
	// charging; in flight: 1
	// <nil>
	// breakwater: bulkhead full
}

func ExampleFallback() {
	recommendations := []string{"personalised"}
	fallback := client.Fallback{
		If: func(err error) bool { return !errors.Is(err, context.Canceled) },
		Func: func(ctx context.Context, err error) error {
			recommendations = []string{"popular item 1", "popular item 2"}
			return nil
		},
	}
	err := fallback.Execute(context.Background(), func(ctx context.Context) error {
		return &client.RetryAfterError{Err: client.ErrOpen, After: 30 * time.Second}
	})
	fmt.Println(recommendations, err)
	// Output: [popular item 1 popular item 2] <nil>
}

func ExampleCompose() {
	// Outermost first: fallback, retry, bulkhead, (rate limiter, breaker,)
	// timeout. See Compose for why.
	policy := client.Compose(
		client.Fallback{Func: func(ctx context.Context, err error) error {
			fmt.Println("fallback after:", err)
			return nil
		}},
		client.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond},
		client.NewBulkhead(10, 0),
		client.Timeout{Duration: time.Second},
	)

	attempts := 0
	err := policy.Execute(context.Background(), func(ctx context.Context) error {
		attempts++
		if attempts < 2 {
			return errUnavailable
		}
		return nil
	})
	fmt.Println(attempts, err)

	err = policy.Execute(context.Background(), func(ctx context.Context) error {
		return errUnavailable
	})
	fmt.Println(err)
	// Output:
	// 2 <nil>
	// fallback after: payments: 503 service unavailable
	// <nil>
}

func ExampleCall() {
	policy := client.Compose(
		client.Retry{MaxAttempts: 2, BaseDelay: time.Millisecond},
		client.Timeout{Duration: time.Second},
	)
	fetch := func(ctx context.Context) ([]string, error) {
		return nil, errUnavailable
	}

	ctx := context.Background()
	items, err := client.Call(ctx, policy, fetch)
	if err != nil && ctx.Err() == nil {
		items, err = []string{"popular item"}, nil // the fallback value
	}
	fmt.Println(items, err)
	// Output: [popular item] <nil>
}

func ExamplePolicyFunc() {
	logged := client.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		err := fn(ctx)
		fmt.Println("call done:", err)
		return err
	})
	_ = client.Compose(client.Retry{MaxAttempts: 1}, logged).Execute(context.Background(), func(ctx context.Context) error {
		return errUnavailable
	})
	// Output: call done: payments: 503 service unavailable
}
