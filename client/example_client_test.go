package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/breakwater-dev/breakwater/client"
)

// These examples need a control plane at the address they name, so they
// are compiled but not run.

func charge(ctx context.Context) error { return nil }

func ExampleNew() {
	c, err := client.New(client.Config{
		// Two control-plane replicas: requests are spread over them and
		// fail over from one to the other.
		Endpoints: []string{"http://breakwater-0:8080", "http://breakwater-1:8080"},
		Token:     os.Getenv("BREAKWATER_TOKEN"),
		Logger:    slog.Default(),
		// While no control plane answers, refuse payments rather than
		// decide on this replica's view alone.
		FailClosedFor: func(kind, name string) bool { return name == "payment-service" },
		Hooks: client.Hooks{
			OnDegraded: func(entered bool) { log.Printf("breakwater degraded: %v", entered) },
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close() // reports the outcomes still pending
}

func ExampleBreaker_Do() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:8080"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	payments := c.Breaker("payment-service")
	err = payments.Do(context.Background(), charge)
	var ra *client.RetryAfterError
	if errors.As(err, &ra) && errors.Is(err, client.ErrOpen) {
		fmt.Printf("payments are down; try again in %v\n", ra.After)
	}
}

func ExampleBreaker_Allow() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:8080"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Allow and done, for a call that does not end with a function: the
	// outcome is known once the body has been read.
	ctx := context.Background()
	done, err := c.Breaker("inventory").Allow(ctx)
	if err != nil {
		return // refused: ErrOpen
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://inventory/items/42", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		done(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 500 {
		done(fmt.Errorf("inventory: %s", resp.Status))
		return
	}
	done(nil)
}

func ExampleBreaker_Execute() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:8080"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// A Breaker and a Limiter are Policies: compose them in the order
	// Compose recommends.
	policy := client.Compose(
		client.Retry{MaxAttempts: 3, BaseDelay: 50 * time.Millisecond},
		client.NewBulkhead(20, 10*time.Millisecond),
		c.Limiter("payment-api"),
		c.Breaker("payment-service"),
		client.Timeout{Duration: 2 * time.Second},
	)
	if err := policy.Execute(context.Background(), charge); err != nil {
		log.Print(err)
	}
}

func ExampleLimiter_Allow() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:8080"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	http.HandleFunc("/pay", func(w http.ResponseWriter, r *http.Request) {
		if err := c.Limiter("payment-api").Allow(r.Context()); err != nil {
			var ra *client.RetryAfterError
			if errors.As(err, &ra) {
				w.Header().Set("Retry-After", fmt.Sprint(int(ra.After.Seconds())+1))
			}
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		// ...
	})
}

func ExampleLimiter_Wait() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:8080"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	emails := c.Limiter("email-provider")
	for _, to := range []string{"a@example.com", "b@example.com"} {
		if err := emails.Wait(ctx); err != nil {
			log.Printf("not sending to %s: %v", to, err)
			return
		}
		// send
	}
}

func ExampleLimiter_For() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:8080"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// One bucket per tenant, all with the limit's config.
	perTenant := c.Limiter("api-per-tenant")
	if err := perTenant.For("tenant-42").Allow(context.Background()); errors.Is(err, client.ErrRateLimited) {
		fmt.Println("tenant-42 is over its limit")
	}
}
