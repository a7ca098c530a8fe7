package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestTwoControlPlanesActAsOne runs two control planes over one real Redis:
// what is reported to one is decided by the other, and a fleet of
// concurrent acquires in half-open gets exactly half_open_max_calls probes.
func TestTwoControlPlanesActAsOne(t *testing.T) {
	r := storetest.StartRedis(t)
	a := serveAPI(t, r.Open(t), nil)
	b := serveAPI(t, r.Open(t), nil)

	const probes = 3
	cfg := map[string]any{"minimum_calls": 10, "open_duration_ms": 1000, "half_open_max_calls": probes, "probe_timeout_ms": 5000}
	if res := a.do("PUT", "/v1/breakers/payments", cfg, ""); res.Status != http.StatusCreated {
		t.Fatalf("PUT on A = %d %s", res.Status, res.Body)
	}

	var d breaker.Decision
	b.do("POST", "/v1/breakers/payments/acquire", nil, "").JSON(t, &d)
	if !d.Allowed || d.State != breaker.StateClosed {
		t.Fatalf("acquire on B before failures = %+v, want allowed and closed", d)
	}

	// Failures reported to A, from several reporters at once.
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			res := a.do("POST", "/v1/breakers/payments/outcomes", map[string]any{"outcomes": []any{
				map[string]any{"success": false, "duration_ms": 30, "count": 2},
			}}, "")
			if res.Status != http.StatusOK {
				t.Errorf("report on A = %d %s", res.Status, res.Body)
			}
		})
	}
	wg.Wait()

	res := b.do("POST", "/v1/breakers/payments/acquire", nil, "")
	res.JSON(t, &d)
	if d.Allowed || d.State != breaker.StateOpen {
		t.Fatalf("acquire on B after 10 failures on A = %+v, want denied and open", d)
	}
	if res.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1 (up to 1000 ms rounded up)", res.Header.Get("Retry-After"))
	}

	time.Sleep(1100 * time.Millisecond) // open_duration_ms passes on Redis's clock

	// 50 acquires at once, split across both control planes.
	var mu sync.Mutex
	var permits []string
	start := make(chan struct{})
	for i := range 50 {
		cp := a
		if i%2 == 1 {
			cp = b
		}
		wg.Go(func() {
			<-start
			var d breaker.Decision
			res := cp.do("POST", "/v1/breakers/payments/acquire", nil, "")
			if res.Status != http.StatusOK {
				t.Errorf("acquire = %d %s", res.Status, res.Body)
				return
			}
			res.JSON(t, &d)
			if d.State != breaker.StateHalfOpen {
				t.Errorf("acquire in half-open answered state %q", d.State)
			}
			if d.Allowed {
				mu.Lock()
				permits = append(permits, d.Permit)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(permits) != probes {
		t.Fatalf("50 concurrent acquires got %d permits %v, want exactly %d", len(permits), permits, probes)
	}

	// Every probe succeeds, reported half to each plane: the fleet closes.
	for i, p := range permits {
		cp := a
		if i%2 == 1 {
			cp = b
		}
		cp.do("POST", "/v1/breakers/payments/outcomes", map[string]any{"outcomes": []any{
			map[string]any{"success": true, "duration_ms": 10, "permit": p},
		}}, "").JSON(t, &d)
	}
	if d.State != breaker.StateClosed || !d.Allowed {
		t.Fatalf("after %d good probes, state = %+v, want closed", probes, d)
	}

	// An operator forces it open through B; A denies at once.
	res = b.do("PUT", "/v1/breakers/payments/override", map[string]any{"state": "forced_open", "reason": "incident 7"}, "")
	if res.Status != http.StatusOK {
		t.Fatalf("override on B = %d %s", res.Status, res.Body)
	}
	a.do("POST", "/v1/breakers/payments/acquire", nil, "").JSON(t, &d)
	if d.Allowed || d.State != breaker.StateForcedOpen {
		t.Fatalf("acquire on A after force on B = %+v, want denied, forced_open", d)
	}
}

// TestStaleOutcomesIgnored shows what happens to outcomes reported against
// an older generation: they are counted in "ignored", never applied.
func TestStaleOutcomesIgnored(t *testing.T) {
	ta := newTestAPI(t, nil)
	ta.do("PUT", "/v1/breakers/inv", map[string]any{"minimum_calls": 2}, "")
	var d breaker.Decision
	ta.do("POST", "/v1/breakers/inv/acquire", nil, "").JSON(t, &d)
	gen := d.Generation
	ta.do("POST", "/v1/breakers/inv/reset", nil, "") // a new generation
	body := fmt.Sprintf(`{"outcomes":[{"success":false,"count":5,"generation":%d}]}`, gen)
	ta.do("POST", "/v1/breakers/inv/outcomes", body, "").JSON(t, &d)
	if d.Ignored != 5 || d.State != breaker.StateClosed {
		t.Fatalf("stale report = %+v, want 5 ignored and still closed", d)
	}
	var raw map[string]any
	ta.do("GET", "/v1/breakers/inv", nil, "").JSON(t, &raw)
	if calls := raw["stats"].(map[string]any)["calls"]; calls != json.Number("0") && calls != float64(0) {
		t.Fatalf("stats.calls = %v after a stale report, want 0", calls)
	}
}
