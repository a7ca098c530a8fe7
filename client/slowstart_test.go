package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/events"
	"github.com/breakwater-dev/breakwater/internal/fault"
	"github.com/breakwater-dev/breakwater/internal/httpapi"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// startMiniPlane serves a control plane over a miniredis whose clock the
// test moves: the store's clock decides slow starts.
func startMiniPlane(t *testing.T) (*plane, *storetest.Mini) {
	t.Helper()
	m := storetest.NewMini(t, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	p := &plane{t: t, byRoute: map[string]int{}}
	p.api = httpapi.New(httpapi.Options{
		Breakers: breaker.NewService(m.Store), Limits: ratelimit.NewService(m.Store), Faults: fault.NewService(m.Store),
		Store: m.Store, Events: events.NewService(m.Store), Heartbeat: time.Second,
	})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		p.api.ServeHTTP(w, r)
	}))
	p.URL = p.srv.URL
	t.Cleanup(p.kill)
	return p, m
}

// TestFleetSlowStart trips a breaker, lets it recover, and checks that the
// share of calls the fleet lets through ramps from half_open_max_calls'
// worth to all over slow_start_ms, on the store's clock; the calls refused
// are not outcomes, so they neither fail the dependency nor reach it.
func TestFleetSlowStart(t *testing.T) {
	p, m := startMiniPlane(t)
	p.putBreaker("inventory", map[string]any{
		"window": map[string]any{"type": "time", "size": 3600}, "minimum_calls": 10,
		"open_duration_ms": 1000, "slow_start_ms": 60000, "cache_ttl_ms": 1,
	})
	var clients []*Client
	for range 3 {
		clients = append(clients, newTestClient(t, Config{FlushInterval: 5 * time.Millisecond}, p.URL))
	}
	first := clients[0].Breaker("inventory")
	calls(t, first, 10, fail) // 10 calls in the window at the trip
	waitFor(t, 2*time.Second, "the trip reported", func() bool { return p.getBreaker("inventory").State == "open" })
	m.Advance(1100 * time.Millisecond)
	waitFor(t, 2*time.Second, "a probe closes the breaker", func() bool {
		first.Do(context.Background(), succeed)
		return p.getBreaker("inventory").State == "closed"
	})

	time.Sleep(20 * time.Millisecond) // anything the probe loop let through is reported
	before := p.getBreaker("inventory").Stats.Calls

	var reached atomic.Int64 // counted calls that reached the dependency
	var learning int64       // calls let through while clients learn a share
	dep := func(context.Context) error { reached.Add(1); return nil }
	fleetShare := func(want int) (admitted, refused int) {
		t.Helper()
		// Every client first learns the share at this time (its cached
		// answer lasts 1 ms); the calls that find out are not counted.
		ramp := int64(want % 100)
		for _, c := range clients {
			b := c.Breaker("inventory")
			waitFor(t, 5*time.Second, "the share learned", func() bool {
				if b.Do(context.Background(), succeed) == nil {
					learning++
				}
				a := b.cur.Load()
				return a != nil && a.ramp == ramp
			})
		}
		for _, c := range clients {
			b := c.Breaker("inventory")
			for range 200 {
				switch err := b.Do(context.Background(), dep); {
				case err == nil:
					admitted++
				case errors.Is(err, ErrOpen):
					refused++
				default:
					t.Fatalf("Do() = %v, want nil or ErrOpen", err)
				}
			}
		}
		return admitted, refused
	}
	var admittedTotal int
	for _, step := range []struct {
		advance time.Duration
		want    int // percent: 1 probe of 10 calls is 10%, then +90% over 60 s
	}{
		{0, 10},
		{15 * time.Second, 32}, // 10 + 90*15/60 = 32.5, in whole percent
		{30 * time.Second, 77},
		{15 * time.Second, 100},
	} {
		m.Advance(step.advance)
		admitted, refused := fleetShare(step.want)
		admittedTotal += admitted
		// Each client admits exactly want of every 100 calls, give or
		// take one where the share changes under it.
		if lo, hi := 6*step.want-3, 6*step.want+3; admitted < lo || admitted > hi {
			t.Errorf("fleet admitted %d of %d calls at %d%%, want %d to %d", admitted, admitted+refused, step.want, lo, hi)
		}
		wantHealth := HealthDegraded // a share refused: the service is degraded, not down
		if step.want == 100 {
			wantHealth = HealthOK
		}
		if got := clients[1].HealthHandler(Critical("inventory")).Check().Status; got != wantHealth {
			t.Errorf("health at %d%% admitted = %q, want %q", step.want, got, wantHealth)
		}
	}
	if got := reached.Load(); got != int64(admittedTotal) {
		t.Errorf("the dependency saw %d calls, want the %d admitted", got, admittedTotal)
	}
	waitFor(t, 2*time.Second, "the admitted calls reported", func() bool {
		return p.getBreaker("inventory").Stats.Calls == before+learning+int64(admittedTotal)
	})
	if v := p.getBreaker("inventory"); v.State != "closed" || v.Stats.Failures != 0 {
		t.Errorf("after the ramp: state %q with %d failures, want closed with none (refusals are not failures)", v.State, v.Stats.Failures)
	}
}
