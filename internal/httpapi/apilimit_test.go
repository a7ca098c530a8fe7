package httpapi

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestAPIRateLimitPerToken: a token over its request rate gets 429 with
// Retry-After; other tokens are not affected.
func TestAPIRateLimitPerToken(t *testing.T) {
	m := storetest.NewMini(t, testStart) // the store's clock stands still: no refill
	st := m.Store
	api := New(Options{Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Store: st,
		Tokens: testTokens(t), APILimits: ratelimit.NewSystemService(st), APIRate: 1, APIBurst: 5})
	ta := &testAPI{t: t, srv: newServer(t, api)}
	for i := range 5 {
		if res := ta.do("GET", "/v1/breakers", nil, secretReader); res.Status != http.StatusOK {
			t.Fatalf("request %d = %d %s, want 200", i, res.Status, res.Body)
		}
	}
	res := ta.do("GET", "/v1/breakers", nil, secretReader)
	if res.Status != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("6th request = %d, Retry-After %q; want 429 after 1s", res.Status, res.Header.Get("Retry-After"))
	}
	if res := ta.do("GET", "/v1/breakers", nil, secretAgent); res.Status != http.StatusOK {
		t.Fatalf("another token = %d, want 200", res.Status)
	}
	if res := ta.do("GET", "/healthz", nil, ""); res.Status != http.StatusOK {
		t.Fatalf("/healthz = %d, want 200: health is never limited", res.Status)
	}
	if res := ta.do("GET", "/v1/ratelimits/"+APILimitName, nil, secretAgent); res.Status != http.StatusNotFound {
		t.Errorf("GET the API's own limit = %d, want 404: it is not a limit the API serves", res.Status)
	}
}

// TestAPILimitUnreachable: an agent that takes from "breakwater-api",
// keyed by the operator's token name, takes nothing from the operator's API
// budget.
func TestAPILimitUnreachable(t *testing.T) {
	m := storetest.NewMini(t, testStart) // no refill
	st := m.Store
	api := New(Options{Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Store: st,
		Tokens: testTokens(t), APILimits: ratelimit.NewSystemService(st), APIRate: 1, APIBurst: 3})
	ta := &testAPI{t: t, srv: newServer(t, api)}
	const operator = "ops" // the operator token's name in testTokens
	if res := ta.do("GET", "/v1/breakers", nil, secretOperator); res.Status != http.StatusOK {
		t.Fatalf("operator's first request = %d, want 200", res.Status)
	}
	for range 2 {
		ta.do("POST", "/v1/ratelimits/"+APILimitName+"/take", fmt.Sprintf(`{"tokens":3,"partial":true,"key":%q}`, operator), secretAgent)
	}
	// The operator made one request of its three.
	for i := range 2 {
		if res := ta.do("GET", "/v1/breakers", nil, secretOperator); res.Status != http.StatusOK {
			t.Fatalf("operator request %d after the agent's takes = %d %s, want 200", i+2, res.Status, res.Body)
		}
	}
}
