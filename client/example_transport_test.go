package client_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/breakwater-dev/breakwater/client"
	"github.com/breakwater-dev/breakwater/client/resilience"
)

func ExampleTransport() {
	endpoint, stop := startControlPlane()
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// A dependency that fails twice, then answers.
	var hits atomic.Int32
	inventory := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "42 in stock")
	}))
	defer inventory.Close()

	hc := &http.Client{Transport: &client.Transport{
		Breaker: c.Breaker("inventory"), // every attempt counted fleet-wide; 5xx are failures
		Limiter: c.Limiter("inventory"), // a token per attempt
		Retry:   &resilience.Retry{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond},
		Timeout: 2 * time.Second, // per attempt, until the response headers
	}}
	resp, err := hc.Get(inventory.URL + "/items/42")
	if err != nil {
		log.Fatal(err) // errors.Is(err, client.ErrOpen) when the breaker is open
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%s %q after %d attempts\n", resp.Status, body, hits.Load())
	// Output: 200 OK "42 in stock" after 3 attempts
}

func ExampleResponseError() {
	var hits atomic.Int32
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "no such method here", http.StatusNotImplemented)
	}))
	defer legacy.Close()

	// Retry 5xx answers, but not a 501: asking again will not help.
	hc := (&client.Transport{Retry: &resilience.Retry{
		BaseDelay: time.Millisecond,
		RetryIf: func(err error) bool {
			var re *client.ResponseError
			return !errors.As(err, &re) || re.Response.StatusCode != http.StatusNotImplemented
		},
	}}).Client()
	resp, err := hc.Get(legacy.URL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, "after", hits.Load(), "attempt")
	// Output: 501 Not Implemented after 1 attempt
}
