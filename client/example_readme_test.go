package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/breakwater-dev/breakwater/client"
)

// Example is the README's first look at the SDK: a client per process, the
// fleet's breaker around a call, the fleet's rate limit per tenant.
// readme_test.go checks that README.md shows the code between the
// "// README" lines as it is here.
func Example() {
	endpoint, stop := startControlPlane()
	defer stop()
	ctx := context.Background()
	charge := func(ctx context.Context) error { return nil }

	// README
	bw, err := client.New(client.Config{
		Endpoints: []string{endpoint},            // every control-plane replica
		Token:     os.Getenv("BREAKWATER_TOKEN"), // role agent
	})
	if err != nil {
		log.Fatal(err) // only a bad Config fails: New makes no request
	}
	defer bw.Close() // reports the outcomes still pending

	// The fleet's breaker: refused at once, with no request, while open.
	err = bw.Breaker("payment-service").Do(ctx, charge)
	if errors.Is(err, client.ErrOpen) {
		fmt.Println("payments are down fleet-wide; try later")
	}

	// The fleet's rate limit, one bucket per tenant.
	err = bw.Limiter("api-per-tenant").For("tenant-42").Take(ctx)
	// README

	fmt.Println("err:", err)
	// Output:
	// err: <nil>
}
