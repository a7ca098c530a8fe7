package httpapi

import (
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
		Tokens: testTokens(t), APIRate: 1, APIBurst: 5})
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
	var l ratelimit.Limit
	ta.do("GET", "/v1/ratelimits/"+APILimitName, nil, secretAgent).JSON(t, &l)
	if l.Config.Capacity != 5 {
		t.Errorf("the API's own limit = %+v, want capacity 5, visible to operators", l)
	}
}
