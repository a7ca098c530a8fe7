package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/breakwater-dev/breakwater/client"
)

// A drill: an operator sets a fault for the inventory dependency on the
// control plane; a Breaker that opted in with ApplyFaults sees its calls
// aborted, without calling the dependency, until the fault ends.
func ExampleBreaker_ApplyFaults() {
	endpoint, stop := startControlPlane()
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	inventory := c.Breaker("inventory")
	inventory.ApplyFaults(true)
	ctx := context.Background()
	lookup := func(ctx context.Context) error { return nil } // the real call
	fmt.Println(inventory.Do(ctx, lookup))

	// The operator's side: PUT /v1/faults/inventory.
	operator(endpoint, http.MethodPut, "/v1/faults/inventory", map[string]any{
		"abort_percent": 100, "abort_status": 503, "reason": "game day", "ttl_ms": 60000})

	// The client learns it from the event stream, within a moment.
	deadline := time.Now().Add(5 * time.Second)
	for err = inventory.Do(ctx, lookup); err == nil && time.Now().Before(deadline); err = inventory.Do(ctx, lookup) {
		time.Sleep(10 * time.Millisecond)
	}
	var fe *client.FaultError
	fmt.Println(errors.Is(err, client.ErrFaultInjected), errors.As(err, &fe) && fe.Status == 503)
	// Output:
	// <nil>
	// true true
}
