package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/client/resilience"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// These tests run clients against real control planes (the HTTP API over
// a real redis-server) in-process.

var errDown = errors.New("dependency down")

func fail(context.Context) error    { return errDown }
func succeed(context.Context) error { return nil }

// calls runs n calls of fn through the breaker and fails the test if one
// is refused.
func calls(t *testing.T, b *Breaker, n int, fn func(context.Context) error) {
	t.Helper()
	for i := range n {
		err := b.Do(context.Background(), fn)
		if errors.Is(err, ErrOpen) {
			t.Fatalf("Do(%q) call %d = %v, want the call made", b.Name(), i, err)
		}
	}
}

func TestBreakerTripsFleetWide(t *testing.T) {
	r := storetest.StartRedis(t)
	pa, pb := startPlane(t, r), startPlane(t, r)
	pa.putBreaker("payments", map[string]any{
		"window": map[string]any{"type": "count", "size": 100}, "minimum_calls": 20,
		"failure_rate_threshold": 50, "cache_ttl_ms": 60000,
	})
	cfg := Config{FlushInterval: 20 * time.Millisecond}
	ca := newTestClient(t, cfg, pa.URL)
	cb := newTestClient(t, cfg, pb.URL)
	ba, bb := ca.Breaker("payments"), cb.Breaker("payments")

	// Neither replica alone sees minimum_calls failures.
	calls(t, ba, 12, fail)
	waitFor(t, 2*time.Second, "A's 12 failures reported", func() bool { return pa.getBreaker("payments").Stats.Calls == 12 })
	if got := pa.getBreaker("payments").State; got != "closed" {
		t.Fatalf("state after A's 12 failures = %q, want closed", got)
	}
	waitFor(t, 2*time.Second, "both event streams up", func() bool { return ca.eventsUp.Load() && cb.eventsUp.Load() })
	calls(t, bb, 12, fail)

	// B's report trips the breaker; B learns it from the report's answer,
	// A from the event stream, long before its minute of cache ends.
	waitFor(t, 2*time.Second, "both clients see the breaker open", func() bool {
		return ba.State() == StateOpen && bb.State() == StateOpen
	})
	for _, b := range []*Breaker{ba, bb} {
		_, err := b.Allow(context.Background())
		var ra *RetryAfterError
		if !errors.Is(err, ErrOpen) || !errors.As(err, &ra) || ra.After <= 0 {
			t.Errorf("Allow() on an open breaker = %v, want ErrOpen with a Retry-After", err)
		}
	}
	if v := pa.getBreaker("payments"); v.State != "open" {
		t.Errorf("control plane state = %q, want open", v.State)
	}
}

func TestManyCallsFewRequests(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("inventory", nil) // a time window of 10 s holds every call
	before := p.requests.Load()

	c := newTestClient(t, Config{}, p.URL)
	b := c.Breaker("inventory")
	const workers, perWorker = 4, 5000
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range perWorker {
				if err := b.Do(context.Background(), succeed); err != nil {
					t.Errorf("Do() = %v", err)
					return
				}
				if i%100 == 99 {
					time.Sleep(time.Millisecond) // spread the calls over some flush intervals
				}
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	n := p.requests.Load() - before
	t.Logf("%d calls cost %d control-plane requests: %v", workers*perWorker, n, p.routes())
	if n >= 100 {
		t.Errorf("%d calls cost %d requests, want fewer than 100", workers*perWorker, n)
	}
	if got := p.getBreaker("inventory").Stats.Calls; got != workers*perWorker {
		t.Errorf("control plane counted %d calls, want %d", got, workers*perWorker)
	}
}

func TestForcedOpenReachesEveryClient(t *testing.T) {
	r := storetest.StartRedis(t)
	planes := []*plane{startPlane(t, r), startPlane(t, r)}
	planes[0].putBreaker("email", map[string]any{"cache_ttl_ms": 60000})

	type change struct {
		to State
		at time.Time
	}
	const nClients, trials = 4, 20
	var clients []*Client
	var seen []chan change
	for i := range nClients {
		ch := make(chan change, 64)
		c := newTestClient(t, Config{Hooks: Hooks{OnStateChange: func(name string, from, to State) {
			ch <- change{to, time.Now()}
		}}}, planes[i%2].URL)
		clients, seen = append(clients, c), append(seen, ch)
	}
	for _, c := range clients {
		calls(t, c.Breaker("email"), 1, succeed) // a closed answer, cached for a minute
	}
	waitFor(t, 5*time.Second, "every event stream up", func() bool {
		for _, c := range clients {
			if !c.eventsUp.Load() {
				return false
			}
		}
		return true
	})
	// Let the staleness of the first connection settle: each client asks
	// once more, then holds a fresh closed answer.
	for _, c := range clients {
		calls(t, c.Breaker("email"), 1, succeed)
	}

	await := func(i int, to State) time.Time {
		t.Helper()
		timeout := time.After(2 * time.Second)
		for {
			select {
			case ch := <-seen[i]:
				if ch.to == to {
					return ch.at
				}
			case <-timeout:
				t.Fatalf("client %d did not see %s within 2s", i, to)
			}
		}
	}
	var lat []time.Duration
	for trial := range trials {
		p := planes[trial%2]
		start := time.Now()
		p.do(http.MethodPut, "/v1/breakers/email/override", map[string]any{"state": "forced_open", "reason": fmt.Sprintf("trial %d", trial)}, nil)
		for i, c := range clients {
			lat = append(lat, await(i, StateForcedOpen).Sub(start))
			if _, err := c.Breaker("email").Allow(context.Background()); !errors.Is(err, ErrOpen) {
				t.Fatalf("trial %d: client %d Allow() after forced_open = %v, want ErrOpen", trial, i, err)
			}
		}
		p.do(http.MethodDelete, "/v1/breakers/email/override", nil, nil)
		for i := range clients {
			await(i, StateClosed)
		}
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[(len(lat)*99+99)/100-1]
	t.Logf("forced_open reached %d clients × %d trials: p50 %v, p99 %v, max %v", nClients, trials, p50, p99, lat[len(lat)-1])
	if p99 > time.Second {
		t.Errorf("forced_open propagation p99 = %v, want under 1s", p99)
	}
}

func TestUnreachableControlPlaneDecidesLocally(t *testing.T) {
	var entered, left atomic.Int32
	c := newTestClient(t, Config{
		DegradedProbeInterval: 20 * time.Millisecond,
		Hooks: Hooks{OnDegraded: func(in bool) {
			if in {
				entered.Add(1)
			} else {
				left.Add(1)
			}
		}},
	}, closedPort(t))
	b := c.Breaker("payments")

	start := time.Now()
	calls(t, b, 10, succeed) // served, no control plane
	if !c.Degraded() {
		t.Fatalf("Degraded() = false with no control plane")
	}
	// The local breaker has the default config: 20 calls, 50% failures.
	calls(t, b, 10, fail)
	err := b.Do(context.Background(), succeed)
	var ra *RetryAfterError
	if !errors.Is(err, ErrOpen) || !errors.As(err, &ra) || ra.After < 29*time.Second {
		t.Fatalf("Do() after 10 local failures of 20 = %v, want ErrOpen for about 30s", err)
	}
	if b.State() != StateOpen {
		t.Errorf("State() = %q, want open", b.State())
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("21 calls took %v with no control plane, want no waits on the network", took)
	}
	if entered.Load() != 1 || left.Load() != 0 {
		t.Errorf("OnDegraded: entered %d times, left %d, want 1 and 0", entered.Load(), left.Load())
	}
}

func TestDegradedUsesLastKnownState(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("search", map[string]any{"consecutive_failures": 3, "open_duration_ms": 60000})
	p.putBreaker("tripped", map[string]any{"consecutive_failures": 1, "open_duration_ms": 60000})
	c := newTestClient(t, Config{FlushInterval: 10 * time.Millisecond, DegradedProbeInterval: time.Hour}, p.URL)
	search, tripped := c.Breaker("search"), c.Breaker("tripped")
	calls(t, search, 1, succeed)
	calls(t, tripped, 1, fail)
	waitFor(t, 2*time.Second, "configs known and the trip seen", func() bool {
		return search.cfg.Load() != nil && tripped.cfg.Load() != nil && tripped.State() == StateOpen
	})

	p.kill()
	calls(t, search, 1, succeed) // the cached answer still serves; its report fails
	waitFor(t, 2*time.Second, "degraded", c.Degraded)

	// The local breakers carry the last config and the last state.
	if _, err := tripped.Allow(context.Background()); !errors.Is(err, ErrOpen) || retryAfter(err) < 50*time.Second {
		t.Errorf("Allow() on a breaker last seen open = %v, want ErrOpen until the control plane's open_until", err)
	}
	calls(t, search, 3, fail) // consecutive_failures: 3
	if _, err := search.Allow(context.Background()); !errors.Is(err, ErrOpen) {
		t.Errorf("Allow() after 3 local failures in a row = %v, want ErrOpen", err)
	}
}

func TestDegradedAndBack(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("orders", map[string]any{"cache_ttl_ms": 1})
	var switches atomic.Int32
	c := newTestClient(t, Config{
		DegradedProbeInterval: 20 * time.Millisecond,
		RequestTimeout:        500 * time.Millisecond,
		Hooks:                 Hooks{OnDegraded: func(bool) { switches.Add(1) }},
	}, p.URL)
	b := c.Breaker("orders")
	calls(t, b, 1, succeed)

	r.Stop() // the control plane answers 503
	waitFor(t, 5*time.Second, "degraded while Redis is down", func() bool {
		calls(t, b, 1, succeed)
		return c.Degraded()
	})
	r.Start() // an empty Redis: the breaker is made again
	p.putBreaker("orders", map[string]any{"cache_ttl_ms": 1})
	waitFor(t, 5*time.Second, "back to the control plane", func() bool { return !c.Degraded() })
	calls(t, b, 5, succeed)
	if switches.Load() != 2 {
		t.Errorf("OnDegraded called %d times, want 2 (in and out)", switches.Load())
	}
}

func TestFailoverBetweenEndpoints(t *testing.T) {
	r := storetest.StartRedis(t)
	p1, p2 := startPlane(t, r), startPlane(t, r)
	p1.putBreaker("search", map[string]any{"cache_ttl_ms": 1})
	c := newTestClient(t, Config{FlushInterval: 10 * time.Millisecond}, p1.URL, p2.URL)
	b := c.Breaker("search")

	for range 20 {
		calls(t, b, 1, succeed)
		time.Sleep(2 * time.Millisecond) // the cached answer expires: ask again
	}
	if p1.requests.Load() == 0 || p2.requests.Load() == 0 {
		t.Fatalf("requests: %d to the first endpoint, %d to the second; want both used", p1.requests.Load(), p2.requests.Load())
	}

	p1.kill()
	before := p2.requests.Load()
	start := time.Now()
	for range 30 {
		calls(t, b, 1, succeed)
		time.Sleep(2 * time.Millisecond)
	}
	if c.Degraded() {
		t.Errorf("Degraded() = true with one endpoint of two up")
	}
	if p2.requests.Load() == before {
		t.Errorf("the surviving endpoint got no request")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("30 calls took %v after an endpoint died, want no timeouts", took)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	var v testBreakerView
	p2.do(http.MethodGet, "/v1/breakers/search", nil, &v)
	// A report the dying replica took but never answered is sent again to
	// the other with the same Idempotency-Key, which the control plane
	// applies once: no call is ever counted twice.
	t.Logf("control plane counted %d of 50 calls", v.Stats.Calls)
	if v.Stats.Calls != 50 {
		t.Errorf("control plane counted %d calls, want 50", v.Stats.Calls)
	}
}

func TestCloseFlushes(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("ledger", map[string]any{"window": map[string]any{"type": "count", "size": 1000}, "minimum_calls": 1000})
	c := newTestClient(t, Config{FlushInterval: time.Hour}, p.URL)
	b := c.Breaker("ledger")
	calls(t, b, 5, succeed)
	calls(t, b, 7, fail)
	if got := p.getBreaker("ledger").Stats.Calls; got != 0 {
		t.Fatalf("control plane counted %d calls before Close with an hour's flush interval", got)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	v := p.getBreaker("ledger")
	if v.Stats.Calls != 12 || v.Stats.Failures != 7 {
		t.Errorf("after Close the control plane counted %d calls, %d failures; want 12, 7", v.Stats.Calls, v.Stats.Failures)
	}
	if _, err := b.Allow(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Allow() after Close = %v, want ErrClosed", err)
	}
}

// TestWhatCountsAsFailure: the caller's own cancellation and refusals by
// other guards are not outcomes; a cancellation or deadline that is not
// the caller's is a failure; a success slower than slow_call_duration_ms is
// a slow call.
//
// Nothing here depends on how fast the machine runs the test: the calls
// whose kind is checked run under the default slow threshold (a minute),
// so none of them can be slow however it schedules them, and the slow
// call is held until the client's own clock, by which the breaker times
// calls and which lags real time on a starved machine, has gone four
// times past its threshold.
func TestWhatCountsAsFailure(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("cart", map[string]any{"window": map[string]any{"type": "count", "size": 1000}, "minimum_calls": 1000})
	const slowMS = 50
	p.putBreaker("cart-slow", map[string]any{"window": map[string]any{"type": "count", "size": 1000}, "minimum_calls": 1000, "slow_call_duration_ms": slowMS})
	c := newTestClient(t, Config{FlushInterval: time.Hour}, p.URL)
	b, sb := c.Breaker("cart"), c.Breaker("cart-slow")
	calls(t, b, 1, succeed) // a cached answer, and the config
	calls(t, sb, 1, succeed)
	waitFor(t, 10*time.Second, "config known", func() bool { return b.slowNS.Load() > 0 && sb.slowNS.Load() > 0 })

	cancelled, cancel := context.WithCancel(context.Background())
	tests := []struct {
		name string
		ctx  context.Context
		err  error
	}{
		{"the caller's cancellation", cancelled, context.Canceled},
		{"a wrapped cancellation of the caller", cancelled, fmt.Errorf("get: %w", context.Canceled)},
		{"a cancellation not the caller's", context.Background(), context.Canceled}, // counts
		{"a passed deadline", context.Background(), context.DeadlineExceeded},       // counts
		{"rate limited", context.Background(), &RetryAfterError{Err: ErrRateLimited}},
		{"bulkhead full", context.Background(), resilience.ErrBulkheadFull},
		{"an inner breaker open", context.Background(), ErrOpen},
	}
	done := make([]func(error), len(tests))
	for i, tt := range tests {
		d, err := b.Allow(tt.ctx) // fresh cache: decided with no network call
		if err != nil {
			t.Fatalf("%s: Allow() = %v", tt.name, err)
		}
		done[i] = d
	}
	cancel()
	for i, tt := range tests {
		done[i](tt.err)
	}

	slow, err := sb.Allow(context.Background())
	if err != nil {
		t.Fatalf("Allow() of the slow call = %v", err)
	}
	from := c.clock.unixNano() // no earlier than the call's start
	waitFor(t, 30*time.Second, "the client's clock four times past the slow threshold", func() bool {
		return c.clock.unixNano()-from >= 4*slowMS*int64(time.Millisecond)
	})
	slow(nil)
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if v := p.getBreaker("cart"); v.Stats.Calls != 3 || v.Stats.Failures != 2 || v.Stats.SlowCalls != 0 {
		t.Errorf("control plane counted %d calls, %d failures, %d slow; want 3, 2, 0", v.Stats.Calls, v.Stats.Failures, v.Stats.SlowCalls)
	}
	if v := p.getBreaker("cart-slow"); v.Stats.Calls != 2 || v.Stats.Failures != 0 || v.Stats.SlowCalls != 1 {
		t.Errorf("control plane counted %d calls, %d failures, %d slow of the slow breaker; want 2, 0, 1", v.Stats.Calls, v.Stats.Failures, v.Stats.SlowCalls)
	}
}

func TestHalfOpenProbe(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("payments", map[string]any{"consecutive_failures": 1, "open_duration_ms": 300, "half_open_max_calls": 1})
	c := newTestClient(t, Config{FlushInterval: 10 * time.Millisecond}, p.URL)
	b := c.Breaker("payments")
	calls(t, b, 1, fail)
	waitFor(t, 2*time.Second, "open", func() bool { return b.State() == StateOpen })
	_, err := b.Allow(context.Background())
	if !errors.Is(err, ErrOpen) {
		t.Fatalf("Allow() while open = %v, want ErrOpen", err)
	}
	// The client decides by its coarse clock, which lags real time on a
	// starved machine: wait until both real time and the client's clock
	// are past the end of the open period the control plane gave.
	wait := retryAfter(err) + 20*time.Millisecond
	until := c.clock.unixNano() + int64(wait)
	time.Sleep(wait)
	waitFor(t, 10*time.Second, "the client's clock past the open period", func() bool { return c.clock.unixNano() >= until })

	probe, err := b.Allow(context.Background())
	if err != nil {
		t.Fatalf("Allow() after open_duration = %v, want a probe", err)
	}
	if _, err := b.Allow(context.Background()); !errors.Is(err, ErrOpen) {
		t.Errorf("second Allow() while the only probe is out = %v, want ErrOpen", err)
	}
	probe(nil) // reported at once
	waitFor(t, 2*time.Second, "closed after a good probe", func() bool { return b.State() == StateClosed })
	if got := p.getBreaker("payments").State; got != "closed" {
		t.Errorf("control plane state = %q, want closed", got)
	}
	calls(t, b, 3, succeed)
}

func TestUnknownBreakerLetsCallsThrough(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	c := newTestClient(t, Config{}, p.URL)
	b := c.Breaker("nobody-made-me")
	calls(t, b, 3, fail)
	if got := b.State(); got != StateNotFound {
		t.Errorf("State() = %q, want unknown", got)
	}
	if c.Degraded() {
		t.Errorf("Degraded() = true for an unknown breaker")
	}
	if _, err := c.Breaker("not a name").Allow(context.Background()); err == nil {
		t.Errorf("Allow() of an invalid name = nil, want an error")
	}
}
