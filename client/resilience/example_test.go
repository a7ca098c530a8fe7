package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/breakwater-dev/breakwater/client/resilience"
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

	retry := resilience.Retry{
		MaxAttempts: 5,
		BaseDelay:   time.Millisecond, // waits are random in [0, 1ms), [0, 2ms), ...
		MaxDelay:    time.Second,
		RetryIf: func(err error) bool {
			return !errors.Is(err, resilience.ErrBulkheadFull)
		},
	}
	err := retry.Do(context.Background(), charge)
	fmt.Println(attempts, err)
	// Output: 3 <nil>
}

func ExamplePermanent() {
	errDeclined := errors.New("card declined")
	attempts := 0
	err := resilience.Retry{}.Do(context.Background(), func(ctx context.Context) error {
		attempts++
		return resilience.Permanent(errDeclined) // retrying will not help
	})
	fmt.Println(attempts, errors.Is(err, errDeclined), resilience.IsPermanent(err))
	// Output: 1 true true
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
	err := resilience.Timeout{Duration: 10 * time.Millisecond}.Do(context.Background(), slow)
	fmt.Println(errors.Is(err, resilience.ErrTimeout), errors.Is(err, context.DeadlineExceeded))

	// The caller's own cancellation is not a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = resilience.Timeout{Duration: time.Second}.Do(ctx, slow)
	fmt.Println(errors.Is(err, resilience.ErrTimeout), errors.Is(err, context.Canceled))
	// Output:
	// true true
	// false true
}

func ExampleBulkhead() {
	// At most 10 calls to payments at once; others wait up to 50 ms.
	payments := resilience.NewBulkhead(10, 50*time.Millisecond)
	err := payments.Do(context.Background(), func(ctx context.Context) error {
		fmt.Println("charging; in flight:", payments.InFlight())
		return nil
	})
	fmt.Println(err)

	// A call that finds every slot taken fails fast.
	email := resilience.NewBulkhead(1, 0)
	_ = email.Acquire(context.Background()) // a long send holds the only slot
	err = email.Do(context.Background(), func(ctx context.Context) error { return nil })
	fmt.Println(err)
	email.Release()
	// Output:
	// charging; in flight: 1
	// <nil>
	// breakwater: bulkhead full
}

func ExampleFallback() {
	recommendations := []string{"personalised"}
	fallback := resilience.Fallback{
		If: func(err error) bool { return !errors.Is(err, context.Canceled) },
		Func: func(ctx context.Context, err error) error {
			recommendations = []string{"popular item 1", "popular item 2"}
			return nil
		},
	}
	err := fallback.Do(context.Background(), func(ctx context.Context) error {
		return errUnavailable // or a refusal: an open breaker, a full bulkhead
	})
	fmt.Println(recommendations, err)
	// Output: [popular item 1 popular item 2] <nil>
}

func ExampleCompose() {
	// Outermost first: fallback, retry, bulkhead, (rate limiter, breaker,)
	// timeout. See Compose for why.
	policy := resilience.Compose(
		resilience.Fallback{Func: func(ctx context.Context, err error) error {
			fmt.Println("fallback after:", err)
			return nil
		}},
		resilience.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond},
		resilience.NewBulkhead(10, 0),
		resilience.Timeout{Duration: time.Second},
	)

	attempts := 0
	err := policy.Do(context.Background(), func(ctx context.Context) error {
		attempts++
		if attempts < 2 {
			return errUnavailable
		}
		return nil
	})
	fmt.Println(attempts, err)

	err = policy.Do(context.Background(), func(ctx context.Context) error {
		return errUnavailable
	})
	fmt.Println(err)
	// Output:
	// 2 <nil>
	// fallback after: payments: 503 service unavailable
	// <nil>
}

func ExampleCall() {
	policy := resilience.Compose(
		resilience.Retry{MaxAttempts: 2, BaseDelay: time.Millisecond},
		resilience.Timeout{Duration: time.Second},
	)
	fetch := func(ctx context.Context) ([]string, error) {
		return nil, errUnavailable
	}

	ctx := context.Background()
	items, err := resilience.Call(ctx, policy, fetch)
	if err != nil && ctx.Err() == nil {
		items, err = []string{"popular item"}, nil // the fallback value
	}
	fmt.Println(items, err)
	// Output: [popular item] <nil>
}

func ExamplePolicyFunc() {
	logged := resilience.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		err := fn(ctx)
		fmt.Println("call done:", err)
		return err
	})
	_ = resilience.Compose(resilience.Retry{MaxAttempts: 1}, logged).Do(context.Background(), func(ctx context.Context) error {
		return errUnavailable
	})
	// Output: call done: payments: 503 service unavailable
}
