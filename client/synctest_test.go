package client

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// These tests run a client in a synctest bubble, on the bubble's fake
// clock, against control planes served in memory: no sockets, no sleeps
// in real time.

// memTransport serves requests with a handler in memory.
type memTransport struct{ h http.Handler }

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, r)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// bubbleClient returns a client of h with a coarse clock of the bubble's.
func bubbleClient(t *testing.T, h http.Handler, cfg Config) *Client {
	t.Helper()
	clock := startCoarseClock(time.Millisecond)
	cfg.Endpoints = []string{"http://controlplane.test"}
	cfg.HTTPClient = &http.Client{Transport: memTransport{h}}
	cfg.DisableEvents = true
	c, err := newClient(cfg, clock)
	if err != nil {
		t.Fatalf("newClient() = %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		clock.stop()
	})
	return c
}

// memBucket is a rate limit's take endpoint over a local token bucket, on
// the bubble's clock.
type memBucket struct {
	mu       sync.Mutex
	b        *localLimiter
	capacity int64
	rate     float64
	takes    int
}

func (m *memBucket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !strings.HasSuffix(r.URL.Path, "/take") {
		json.NewEncoder(w).Encode(map[string]any{"config": map[string]any{"capacity": m.capacity, "refill_per_second": m.rate}})
		return
	}
	m.takes++
	var req takeRequest
	json.NewDecoder(r.Body).Decode(&req)
	now := time.Now()
	have := int64(math.Floor(m.b.tokensAt(now)))
	granted := int64(0)
	switch {
	case have >= req.Tokens:
		granted = req.Tokens
	case req.Partial:
		granted = max(have, 0)
	}
	m.b.take(now, granted)
	res := takeResult{Allowed: granted > 0, Granted: granted}
	if granted == 0 {
		res.RetryAfterMS = int64(math.Ceil((float64(req.Tokens) - m.b.tokensAt(now)) / m.rate * 1000))
	}
	w.Header().Set("RateLimit-Limit", strconv.FormatInt(m.capacity, 10))
	json.NewEncoder(w).Encode(res)
}

func TestLeaseSizeFollowsTheRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bucket := &memBucket{b: newLocalLimiter(1000, 5000, time.Now()), capacity: 1000, rate: 5000}
		c := bubbleClient(t, bucket, Config{FlushInterval: 100 * time.Millisecond})
		l := c.Limiter("api")
		// 1000 calls a second for two seconds.
		for i := range 2000 {
			if err := l.Take(t.Context()); err != nil {
				t.Fatalf("Take() %d = %v", i, err)
			}
			time.Sleep(time.Millisecond)
		}
		// One flush interval's worth: 100 tokens a lease.
		if l.size < 60 || l.size > 150 {
			t.Errorf("lease size after 2 s at 1000 calls/s = %d, want about 100", l.size)
		}
		// Doubling from 1 takes 7 leases; then about 10 a second.
		if bucket.takes > 40 {
			t.Errorf("2000 calls took %d takes, want at most 40", bucket.takes)
		}
		t.Logf("2000 calls at 1000/s: %d takes, lease size %d", bucket.takes, l.size)

		// A lease not spent within a flush interval expires: its
		// tokens are gone, never given back.
		time.Sleep(time.Second)
		if err := l.Take(t.Context()); err != nil {
			t.Fatalf("Take() after a pause = %v", err)
		}
		if ls := l.lease.Load(); ls.granted > 20 {
			t.Errorf("lease after a second idle = %d tokens, want a small one", ls.granted)
		}
	})
}

func TestLimiterRefusesLocallyUntilRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bucket := &memBucket{b: newLocalLimiter(2, 10, time.Now()), capacity: 2, rate: 10}
		c := bubbleClient(t, bucket, Config{LeaseSize: 1})
		l := c.Limiter("api")
		for range 2 {
			if err := l.Take(t.Context()); err != nil {
				t.Fatalf("Take() = %v", err)
			}
		}
		err := l.Take(t.Context())
		if !errors.Is(err, ErrRateLimited) || retryAfter(err) != 100*time.Millisecond {
			t.Fatalf("Take() on an empty bucket = %v, want ErrRateLimited for 100ms", err)
		}
		takes := bucket.takes
		for range 50 {
			if err := l.Take(t.Context()); !errors.Is(err, ErrRateLimited) {
				t.Fatalf("Take() while refused = %v", err)
			}
		}
		if bucket.takes != takes {
			t.Errorf("refusals asked the control plane %d times, want none", bucket.takes-takes)
		}
		// The refusal is read on the coarse clock, which lags by up to a
		// tick.
		time.Sleep(100*time.Millisecond + coarseClockInterval)
		if err := l.Take(t.Context()); err != nil {
			t.Errorf("Take() once the refusal ended = %v, want nil", err)
		}
	})
}

// hungPlane answers breaker requests "closed" while healthy, and hangs
// until the request's context ends otherwise.
type hungPlane struct {
	healthy  atomic.Bool
	requests atomic.Int64
}

func (h *hungPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	if !h.healthy.Load() {
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.Method {
	case http.MethodGet:
		json.NewEncoder(w).Encode(breakerView{Config: defaultBreakerConfig(), State: "closed", Generation: 1})
	default:
		json.NewEncoder(w).Encode(decision{Allowed: true, State: "closed", CacheTTLMS: 1000, Generation: 1})
	}
}

func TestHungControlPlaneCostsOneTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		plane := &hungPlane{}
		var switches []bool
		var mu sync.Mutex
		c := bubbleClient(t, plane, Config{
			RequestTimeout:        2 * time.Second,
			DegradedProbeInterval: time.Second,
			Hooks: Hooks{OnDegraded: func(in bool) {
				mu.Lock()
				switches = append(switches, in)
				mu.Unlock()
			}},
		})
		b := c.Breaker("payments")

		start := time.Now()
		if err := b.Do(t.Context(), succeed); err != nil {
			t.Fatalf("Do() with a hung control plane = %v, want the call made", err)
		}
		if took := time.Since(start); took != 2*time.Second {
			t.Errorf("first call took %v, want the request timeout, 2s", took)
		}
		start = time.Now()
		for range 100 {
			if err := b.Do(t.Context(), succeed); err != nil {
				t.Fatalf("Do() while degraded = %v", err)
			}
		}
		if took := time.Since(start); took != 0 {
			t.Errorf("100 calls while degraded took %v, want no wait", took)
		}

		// One probe at a time, a probe interval after the last one
		// ended (each hangs for the 2s request timeout): at 3s, 6s, 9s
		// and 12s. The test wakes between probes, never with one.
		before := plane.requests.Load()
		time.Sleep(10*time.Second + 500*time.Millisecond)
		if n := plane.requests.Load() - before; n != 4 {
			t.Errorf("%d probes in 10.5s, want 4: one at a time, an interval after the last", n)
		}

		plane.healthy.Store(true)
		time.Sleep(3 * time.Second) // the probe of 12s hangs until 14s; the one at 15s answers
		if c.Degraded() {
			t.Fatalf("still degraded after the control plane answers")
		}
		start = time.Now()
		if err := b.Do(t.Context(), succeed); err != nil {
			t.Fatalf("Do() after recovery = %v", err)
		}
		if b.State() != StateClosed || time.Since(start) != 0 {
			t.Errorf("after recovery: state %q, took %v", b.State(), time.Since(start))
		}
		mu.Lock()
		defer mu.Unlock()
		if len(switches) != 2 || !switches[0] || switches[1] {
			t.Errorf("OnDegraded calls %v, want [true false]", switches)
		}
	})
}

// slowPlane answers "closed" for a second of cache, after a second.
type slowPlane struct{ acquires atomic.Int64 }

func (s *slowPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/acquire") {
		s.acquires.Add(1)
	}
	time.Sleep(time.Second)
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodGet {
		json.NewEncoder(w).Encode(breakerView{Config: defaultBreakerConfig(), State: "closed", Generation: 1})
		return
	}
	json.NewEncoder(w).Encode(decision{Allowed: true, State: "closed", CacheTTLMS: 1000, Generation: 1})
}

func TestExpiredAnswerIsRefreshedByOneCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		plane := &slowPlane{}
		c := bubbleClient(t, plane, Config{FlushInterval: time.Hour})
		b := c.Breaker("payments")
		calls(t, b, 1, succeed)
		time.Sleep(2 * time.Second) // the answer has expired

		const callers = 10
		took := make(chan time.Duration, callers)
		for range callers {
			go func() {
				start := time.Now()
				done, err := b.Allow(t.Context())
				if err != nil {
					t.Errorf("Allow() = %v", err)
				}
				done(nil)
				took <- time.Since(start)
			}()
		}
		waited := 0
		for range callers {
			if <-took > 0 {
				waited++
			}
		}
		if waited != 1 {
			t.Errorf("%d of %d callers waited for the refresh, want 1: the others decide from the expired answer", waited, callers)
		}
		if n := plane.acquires.Load(); n != 2 {
			t.Errorf("%d acquires, want 2 (the first answer and one refresh)", n)
		}
	})
}
