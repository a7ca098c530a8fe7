package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/breakwater-dev/breakwater/client"
)

func ExampleClient_HealthHandler() {
	endpoint, stop := startControlPlane() // payment-service opens at 50% failures over 5 calls
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// The service cannot take orders without payments; it can without
	// recommendations. Its /health answers from the breakers' cached
	// states: no call to the control plane or to the dependencies.
	mux := http.NewServeMux()
	mux.Handle("GET /health", c.HealthHandler(
		client.Critical("payment-service"),
		client.Optional("recommendations"),
	))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	show := func() {
		resp, err := http.Get(srv.URL + "/health")
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %s", resp.StatusCode, body)
	}

	ctx := context.Background()
	c.Breaker("recommendations").Do(ctx, func(ctx context.Context) error { return nil })
	payments := c.Breaker("payment-service")
	payments.Do(ctx, func(ctx context.Context) error { return nil })
	show()

	for range 5 {
		payments.Do(ctx, func(ctx context.Context) error { return errors.New("payments: 503") })
	}
	for deadline := time.Now().Add(5 * time.Second); payments.State() != client.StateOpen && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	show()
	// Output:
	// 200 {"status":"ok","degraded_mode":false,"down":[],"degraded":[],"dependencies":[{"name":"payment-service","critical":true,"state":"closed","source":"control_plane","status":"ok"},{"name":"recommendations","critical":false,"state":"closed","source":"control_plane","status":"ok"}]}
	// 503 {"status":"down","degraded_mode":false,"down":["payment-service"],"degraded":[],"dependencies":[{"name":"payment-service","critical":true,"state":"open","source":"control_plane","status":"down"},{"name":"recommendations","critical":false,"state":"closed","source":"control_plane","status":"ok"}]}
}
