package client_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/events"
	"github.com/breakwater-dev/breakwater/internal/fault"
	"github.com/breakwater-dev/breakwater/internal/httpapi"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store"
)

// The examples run against a real control plane: the HTTP API over the
// embedded in-memory store, served on a loopback port, as `controlplane`
// serves it with no --redis. startControlPlane creates what the examples
// use, as an operator would with PUT requests.

// exampleBreakers are the breakers the examples' control plane holds.
var exampleBreakers = map[string]any{
	// Opens at 50% failures once 5 calls are in its window, for 30 s.
	"payment-service": map[string]any{"window": map[string]any{"type": "count", "size": 10}, "minimum_calls": 5},
	"inventory":       map[string]any{},
	"recommendations": map[string]any{},
	// The reference's CircuitBreaker(failure_threshold=5, recovery_timeout=30).
	"payment": map[string]any{"consecutive_failures": 5, "open_duration_ms": 30000},
	"email":   map[string]any{"consecutive_failures": 5, "open_duration_ms": 30000},
}

// exampleLimits are the rate limits the examples' control plane holds:
// capacity and refill per second.
var exampleLimits = map[string][2]float64{
	"payment-api":     {2, 0.001}, // two calls, then none for a long while
	"api-per-tenant":  {2, 0.001}, // the same, for each tenant
	"email-provider":  {1, 20},    // one at once, then one every 50 ms
	"recommendations": {100, 100},
	// The reference's TokenBucket(capacity=100, refill_rate=10).
	"inventory": {100, 10},
	"payment":   {100, 10},
	"email":     {100, 10},
}

// startControlPlane serves a control plane holding exampleBreakers and
// exampleLimits, and returns its URL and a func that stops it.
func startControlPlane() (url string, stop func()) {
	st, err := store.Open(store.Config{})
	if err != nil {
		panic(err)
	}
	api := httpapi.New(httpapi.Options{
		Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Faults: fault.NewService(st), Store: st,
		Events: events.NewService(st),
	})
	srv := httptest.NewServer(api)
	for name, cfg := range exampleBreakers {
		operator(srv.URL, http.MethodPut, "/v1/breakers/"+name, cfg)
	}
	for name, l := range exampleLimits {
		operator(srv.URL, http.MethodPut, "/v1/ratelimits/"+name, map[string]any{"capacity": l[0], "refill_per_second": l[1]})
	}
	return srv.URL, func() {
		api.Close() // ends the event streams, so that Close does not wait for them
		srv.Close()
		st.Close()
	}
}

// operator sends an operator's request to the control plane at url, and
// panics if it fails.
func operator(url, method, path string, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	req, err := http.NewRequest(method, url+path, bytes.NewReader(b))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		panic(fmt.Sprintf("%s %s = %s", method, path, resp.Status))
	}
}
