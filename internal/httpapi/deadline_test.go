package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestRequestsShareOneDeadline: with every reply of Redis late by less
// than the store timeout, so that any one store call succeeds but two in a
// row do not fit, a request that needs several answers within the store
// timeout, not within a timeout per call: a 503 in time rather than an
// answer late. The allowance over the timeout is for a loaded test machine
// (R2's own 50 ms margin is checked by the fault suite); a timeout per call
// takes two late replies, 700 ms, far past it.
func TestRequestsShareOneDeadline(t *testing.T) {
	const timeout, late, margin = 400 * time.Millisecond, 350 * time.Millisecond, 150 * time.Millisecond
	r := storetest.StartRedis(t)
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	t.Cleanup(func() { srv.Collection.Clear() })
	proxy := toxiproxy.NewProxy(srv, "redis", "127.0.0.1:0", r.Addr)
	if err := srv.Collection.Add(proxy, true); err != nil {
		t.Fatal(err)
	}
	st := storetest.OpenURL(t, "redis://"+proxy.Listen, timeout)
	api := New(Options{Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Store: st, StoreTimeout: timeout})
	t.Cleanup(api.Close)
	ta := &testAPI{t: t, srv: newServer(t, api)}
	for i := range 3 {
		if res := ta.do("PUT", fmt.Sprintf("/v1/breakers/b%d", i), `{}`, ""); res.Status != http.StatusCreated {
			t.Fatalf("PUT = %d %s", res.Status, res.Body)
		}
		if res := ta.do("PUT", fmt.Sprintf("/v1/ratelimits/l%d", i), `{"capacity":5,"refill_per_second":1}`, ""); res.Status != http.StatusCreated {
			t.Fatalf("PUT = %d %s", res.Status, res.Body)
		}
	}
	requests := []string{"/v1/breakers", "/v1/ratelimits", "/metrics"}
	for _, path := range requests { // connections open, scripts loaded
		if res := ta.do("GET", path, nil, ""); res.Status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, res.Status, res.Body)
		}
	}

	b, _ := json.Marshal(map[string]any{"name": "late", "type": "latency", "stream": "downstream", "toxicity": 1,
		"attributes": map[string]any{"latency": late.Milliseconds()}})
	if _, err := proxy.Toxics.AddToxicJson(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Toxics.RemoveToxic(context.Background(), "late") })
	for _, path := range requests {
		start := time.Now()
		res := ta.do("GET", path, nil, "")
		took := time.Since(start)
		if res.Status != http.StatusOK && res.Status != http.StatusServiceUnavailable {
			t.Errorf("GET %s with late replies = %d %s, want 200 or 503", path, res.Status, res.Body)
		}
		if took > timeout+margin {
			t.Errorf("GET %s with replies %v late answered %d after %v, want within the store timeout %v + %v", path, late, res.Status, took, timeout, margin)
		}
	}
}
