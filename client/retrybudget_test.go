package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/client/resilience"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// noWait is a Retry that makes up to 4 attempts and waits at most a
// nanosecond between them, so that only the retry budget limits retries.
var noWait = resilience.Retry{MaxAttempts: 4, BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond}

// budgetKnown reports whether b knows its config, and that it has a
// retry budget.
func budgetKnown(b *Breaker) bool {
	cfg := b.cfg.Load()
	return cfg != nil && cfg.HasRetryBudget()
}

// TestFleetRetryBudget runs several clients' Retry around a Breaker with a
// retry budget. While the dependency fails, the retries the fleet sends
// stay within retry_budget_percent of its calls plus the minimum; a
// healthy dependency's few retries all go out.
func TestFleetRetryBudget(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	budget := map[string]any{
		"window":                      map[string]any{"type": "time", "size": 60},
		"minimum_calls":               1_000_000, // the breaker stays closed: the budget alone limits retries
		"cache_ttl_ms":                100,
		"retry_budget_percent":        10,
		"retry_budget_min_per_second": 0.1, // 6 over the window
	}
	p.putBreaker("failing", budget)
	healthy := map[string]any{}
	for k, v := range budget {
		healthy[k] = v
	}
	healthy["cache_ttl_ms"] = 1000 // the default: loans last 750 ms in the client
	p.putBreaker("healthy", healthy)
	const clients, ops = 4, 150
	var cs []*Client
	for range clients {
		cs = append(cs, newTestClient(t, Config{FlushInterval: 5 * time.Millisecond}, p.URL))
	}
	// Each client knows the breakers' configs (and so their budgets)
	// before it starts.
	for _, c := range cs {
		calls(t, c.Breaker("failing"), 1, succeed)
		calls(t, c.Breaker("healthy"), 1, succeed)
		waitFor(t, 2*time.Second, "configs known", func() bool {
			return budgetKnown(c.Breaker("failing")) && budgetKnown(c.Breaker("healthy"))
		})
	}

	waitFor(t, 2*time.Second, "the first calls reported", func() bool {
		return p.getBreaker("failing").Stats.Calls == clients
	})

	t.Run("failing dependency", func(t *testing.T) {
		const before = clients
		var attempts, firsts atomic.Int64
		var wg sync.WaitGroup
		for _, c := range cs {
			b := c.Breaker("failing")
			wg.Go(func() {
				for range ops {
					n := 0
					err := noWait.Do(context.Background(), func(ctx context.Context) error {
						return b.Do(ctx, func(context.Context) error {
							n++
							attempts.Add(1)
							if n == 1 {
								firsts.Add(1)
							}
							return errDown
						})
					})
					if !errors.Is(err, errDown) {
						t.Errorf("Execute() = %v, want the dependency's last error", err)
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		wg.Wait()
		calls, retries := attempts.Load(), attempts.Load()-firsts.Load()
		limit := 10*calls/100 + 6
		t.Logf("%d calls, %d of them retries; budget %d", calls, retries, limit)
		if retries > limit {
			t.Errorf("the fleet sent %d retries in %d calls, want at most %d (10%% of calls + 0.1/s over 60 s)", retries, calls, limit)
		}
		if retries < limit/2 {
			t.Errorf("the fleet sent %d retries in %d calls, want near the budget %d", retries, calls, limit)
		}
		var got int64
		deadline := time.Now().Add(2 * time.Second)
		for got = p.getBreaker("failing").Stats.Calls; got != before+calls && time.Now().Before(deadline); got = p.getBreaker("failing").Stats.Calls {
			time.Sleep(5 * time.Millisecond)
		}
		if got != before+calls {
			t.Errorf("the window holds %d calls, want the %d made (and %d before)", got, calls, before)
		}
	})

	t.Run("healthy dependency", func(t *testing.T) {
		var failedFirst, retried atomic.Int64
		var wg sync.WaitGroup
		for _, c := range cs {
			b := c.Breaker("healthy")
			wg.Go(func() {
				for i := range 2 * ops {
					n := 0
					err := noWait.Do(context.Background(), func(ctx context.Context) error {
						return b.Do(ctx, func(context.Context) error {
							n++
							// A window of successes first, as a healthy
							// dependency has behind it; then one call in
							// 20 fails once.
							if i >= ops && i%20 == 19 && n == 1 {
								failedFirst.Add(1)
								return errDown
							}
							if n > 1 {
								retried.Add(1)
							}
							return nil
						})
					})
					if err != nil {
						t.Errorf("Execute() on a healthy dependency = %v, want its retry let through", err)
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		wg.Wait()
		if failedFirst.Load() != retried.Load() {
			t.Errorf("%d first attempts failed and %d were retried, want every one retried", failedFirst.Load(), retried.Load())
		}
	})
}

// TestTransportRetryBudget: a Transport's retries go through its Breaker
// and spend its retry allowance: against a dependency that always fails,
// the requests that reach it stay within the budget, and the caller gets
// the last response.
func TestTransportRetryBudget(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("search", map[string]any{
		"window": map[string]any{"type": "time", "size": 60}, "minimum_calls": 1_000_000,
		"cache_ttl_ms": 100, "retry_budget_percent": 20,
	})
	var reached atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(up.Close)
	c := newTestClient(t, Config{FlushInterval: 5 * time.Millisecond}, p.URL)
	b := c.Breaker("search")
	calls(t, b, 1, succeed)
	waitFor(t, 2*time.Second, "config known", func() bool { return budgetKnown(b) })
	hc := (&Transport{Breaker: b, Retry: &noWait}).Client()
	const requests = 300
	for range requests {
		resp, err := hc.Get(up.URL)
		if err != nil {
			t.Fatalf("Get() = %v, want the last 503", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("Get() = %d, want the last 503", resp.StatusCode)
		}
		time.Sleep(time.Millisecond)
	}
	sent := reached.Load()
	retries := sent - requests
	if limit := 20 * (sent + 1) / 100; retries > limit {
		t.Errorf("%d retries in %d requests sent, want at most %d (20%%)", retries, sent, limit)
	}
	if retries == 0 {
		t.Errorf("no retry sent, want retries within the budget")
	}
}

// TestRetryBudgetWhileDegraded: with no control plane to lend retries,
// a client keeps to the budget over its own calls, as its local breaker
// counts them.
func TestRetryBudgetWhileDegraded(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("search", map[string]any{
		"window": map[string]any{"type": "time", "size": 60}, "minimum_calls": 1_000_000,
		"retry_budget_percent": 10,
	})
	c := newTestClient(t, Config{FlushInterval: 5 * time.Millisecond, DegradedProbeInterval: time.Hour}, p.URL)
	b := c.Breaker("search")
	calls(t, b, 1, succeed)
	waitFor(t, 2*time.Second, "config known", func() bool { return budgetKnown(b) })
	p.kill()
	waitFor(t, 5*time.Second, "degraded", func() bool {
		b.Do(context.Background(), succeed)
		return c.Degraded()
	})
	var attempts, firsts int64
	for range 200 {
		n := 0
		err := noWait.Do(context.Background(), func(ctx context.Context) error {
			return b.Do(ctx, func(context.Context) error {
				n++
				attempts++
				if n == 1 {
					firsts++
				}
				return errDown
			})
		})
		if !errors.Is(err, errDown) {
			t.Fatalf("Execute() = %v, want the dependency's last error", err)
		}
	}
	retries := attempts - firsts
	b.mu.Lock()
	local := b.local
	b.mu.Unlock()
	// The local window also holds the calls made to notice the outage.
	st := local.status(c.clock.now())
	if st.retries != retries {
		t.Errorf("local window holds %d retries, want the %d made", st.retries, retries)
	}
	if limit := 10 * st.calls / 100; retries > limit || retries == 0 {
		t.Errorf("%d retries in %d calls while degraded, want some and at most %d (10%% of the %d in the window)", retries, attempts, limit, st.calls)
	}
}
