package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/breakwater-dev/breakwater/client"
	"github.com/breakwater-dev/breakwater/client/resilience"
)

// These examples run against a control plane started in process (see
// startControlPlane), which holds the breakers and rate limits they name.

func ExampleNew() {
	endpoint, stop := startControlPlane()
	defer stop()

	c, err := client.New(client.Config{
		// Every replica of the control plane: requests are spread over
		// them and fail over from one to the next. Production sets Token
		// to an agent's token too.
		Endpoints: []string{endpoint},
		// While no control plane answers, refuse payments rather than
		// decide on this replica's view alone.
		FailClosedFor: func(kind, name string) bool { return name == "payment-service" },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close() // reports the outcomes still pending

	err = c.Breaker("payment-service").Do(context.Background(), func(ctx context.Context) error {
		fmt.Println("charging")
		return nil
	})
	fmt.Println("err:", err)
	// Output:
	// charging
	// err: <nil>
}

func ExampleBreaker_Do() {
	endpoint, stop := startControlPlane() // payment-service opens at 50% failures over 5 calls
	defer stop()

	opened := make(chan string, 1)
	c, err := client.New(client.Config{
		Endpoints:     []string{endpoint},
		FlushInterval: 10 * time.Millisecond, // report outcomes every 10 ms
		Hooks: client.Hooks{OnStateChange: func(name string, from, to client.State) {
			if to == client.StateOpen {
				select {
				case opened <- name:
				default:
				}
			}
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	payments := c.Breaker("payment-service")
	charge := func(ctx context.Context) error { return errors.New("payments: 503 Service Unavailable") }
	for range 5 {
		err = payments.Do(ctx, charge)
	}
	fmt.Println(err)

	// The failures reach the control plane with the next report; its
	// answer opens the breaker here, and the event stream on every other
	// replica.
	select {
	case name := <-opened:
		fmt.Println("opened:", name)
	case <-time.After(5 * time.Second):
		fmt.Println("still closed")
	}

	err = payments.Do(ctx, charge) // refused locally: charge is not called
	var ra *client.RetryAfterError
	fmt.Println(errors.Is(err, client.ErrOpen), errors.As(err, &ra) && ra.After > 20*time.Second)
	// Output:
	// payments: 503 Service Unavailable
	// opened: payment-service
	// true true
}

func ExampleBreaker_Allow() {
	endpoint, stop := startControlPlane()
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	inventory := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "42 in stock")
	}))
	defer inventory.Close()

	// Allow and done, for a call whose outcome is known only once the
	// body has been read.
	ctx := context.Background()
	done, err := c.Breaker("inventory").Allow(ctx)
	if err != nil {
		fmt.Println("refused:", err) // matches ErrOpen
		return
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, inventory.URL+"/items/42", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		done(err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		done(err)
	case resp.StatusCode >= 500:
		done(fmt.Errorf("inventory: %s", resp.Status))
	default:
		done(nil) // a success, 4xx included: the dependency answered
	}
	fmt.Println(string(body))
	// Output: 42 in stock
}

func Example_policies() {
	endpoint, stop := startControlPlane()
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// A Breaker and a Limiter are Policies: compose them with the
	// in-process patterns in the order resilience.Compose recommends.
	policy := resilience.Compose(
		resilience.Fallback{Func: func(ctx context.Context, err error) error {
			fmt.Println("fallback: popular items; timed out:", errors.Is(err, resilience.ErrTimeout))
			return nil
		}},
		resilience.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond},
		resilience.NewBulkhead(20, 10*time.Millisecond),
		c.Limiter("recommendations"),
		c.Breaker("recommendations"),
		resilience.Timeout{Duration: 20 * time.Millisecond},
	)

	ctx := context.Background()
	attempts := 0
	err = policy.Do(ctx, func(ctx context.Context) error {
		attempts++
		if attempts == 1 {
			return errors.New("recommendations: 502 Bad Gateway")
		}
		return nil
	})
	fmt.Println(attempts, err)

	// A dependency that hangs: each attempt times out, then the fallback
	// answers.
	err = policy.Do(ctx, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	fmt.Println(err)
	// Output:
	// 2 <nil>
	// fallback: popular items; timed out: true
	// <nil>
}

func ExampleLimiter_Take() {
	endpoint, stop := startControlPlane() // payment-api: 2 calls, then none for a long while
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// A handler that sheds load beyond the fleet-wide limit.
	limit := c.Limiter("payment-api")
	pay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := limit.Take(r.Context()); err != nil {
			var ra *client.RetryAfterError
			if errors.As(err, &ra) {
				w.Header().Set("Retry-After", strconv.Itoa(int(ra.After.Seconds())+1))
			}
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, "paid")
	}))
	defer pay.Close()

	for range 3 {
		resp, err := http.Post(pay.URL, "application/json", nil)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status, resp.Header.Get("Retry-After") != "")
	}
	// Output:
	// 200 OK false
	// 200 OK false
	// 429 Too Many Requests true
}

func ExampleLimiter_Wait() {
	endpoint, stop := startControlPlane() // email-provider: 1 at once, then one every 50 ms
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	emails := c.Limiter("email-provider")
	for _, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if err := emails.Wait(ctx); err != nil {
			fmt.Printf("not sending to %s: %v\n", to, err)
			return
		}
		fmt.Println("sending to", to)
	}
	// Output:
	// sending to a@example.com
	// sending to b@example.com
	// sending to c@example.com
}

func ExampleLimiter_For() {
	endpoint, stop := startControlPlane() // api-per-tenant: 2 calls per tenant
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// One bucket per tenant, each with the limit's config.
	ctx := context.Background()
	perTenant := c.Limiter("api-per-tenant")
	for _, tenant := range []string{"tenant-42", "tenant-42", "tenant-42", "tenant-7"} {
		err := perTenant.For(tenant).Take(ctx)
		fmt.Println(tenant, "limited:", errors.Is(err, client.ErrRateLimited))
	}
	// Output:
	// tenant-42 limited: false
	// tenant-42 limited: false
	// tenant-42 limited: true
	// tenant-7 limited: false
}

func ExampleBreaker_Record() {
	endpoint, stop := startControlPlane()
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// A sidecar that learns of calls after the fact counts them in the
	// next report. Outcomes join a breaker that is known to be closed.
	inventory := c.Breaker("inventory")
	if err := inventory.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		log.Fatal(err)
	}
	fmt.Println(inventory.Record(false, 120*time.Millisecond, 3))
	fmt.Println(inventory.Record(true, 0, 0))
	// Output:
	// <nil>
	// breakwater: Record(true, 0s, 0): want n >= 1 and d >= 0
}

func ExampleBreaker_RecordRetries() {
	endpoint, stop := startControlPlane()
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// A sidecar relaying what its callers report: 5 failed calls, 2 of
	// them retries, which count against the breaker's retry budget.
	inventory := c.Breaker("inventory")
	if err := inventory.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		log.Fatal(err)
	}
	fmt.Println(inventory.RecordRetries(false, 80*time.Millisecond, 5, 2))
	fmt.Println(inventory.RecordRetries(false, 0, 2, 3))
	// Output:
	// <nil>
	// breakwater: RecordRetries(false, 0s, 2, 3): want n >= 1, d >= 0 and 0 <= retries <= n
}

func ExampleBreaker_State() {
	endpoint, stop := startControlPlane()
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	ok := func(ctx context.Context) error { return nil }
	payments := c.Breaker("payment")
	fmt.Println(payments.State()) // nothing asked yet
	_ = payments.Do(ctx, ok)
	fmt.Println(payments.State(), payments.State() == client.StateClosed)

	// A breaker the control plane does not have lets calls through.
	other := c.Breaker("never-created")
	fmt.Println(other.Do(ctx, ok), other.State())
	// Output:
	// unknown
	// closed true
	// <nil> not_found
}

func ExampleLimiter_TakeN() {
	endpoint, stop := startControlPlane() // payment-api: 2 calls, then none for a long while
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	batch := c.Limiter("payment-api")
	err = batch.TakeN(ctx, 3) // more than the capacity: an error, not a refusal
	fmt.Println(err != nil, errors.Is(err, client.ErrRateLimited))
	fmt.Println(batch.TakeN(ctx, 2)) // both tokens at once
	err = batch.TakeN(ctx, 1)
	fmt.Println(errors.Is(err, client.ErrRateLimited))
	// Output:
	// true false
	// <nil>
	// true
}
