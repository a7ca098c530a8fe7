package client

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// putLimit creates or replaces a rate limit.
func (p *plane) putLimit(name string, capacity int64, rate float64) {
	p.t.Helper()
	p.do(http.MethodPut, "/v1/ratelimits/"+name, map[string]any{"capacity": capacity, "refill_per_second": rate}, nil, http.StatusOK, http.StatusCreated)
}

func TestLimiterFleetNeverExceedsTheBucket(t *testing.T) {
	const (
		capacity = 10
		rate     = 50.0
		run      = 1200 * time.Millisecond
	)
	tests := []struct {
		name      string
		leaseSize int
	}{
		{"adaptive lease", 0},
		{"exact", 1},
		{"fixed lease of 4", 4},
	}
	r := storetest.StartRedis(t)
	planes := []*plane{startPlane(t, r), startPlane(t, r)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var clients []*Client
			for i := range 4 {
				clients = append(clients, newTestClient(t, Config{LeaseSize: tt.leaseSize}, planes[i%2].URL))
			}
			created := time.Now()
			planes[0].putLimit("api", capacity, rate) // starts full, so the bound counts from here
			defer planes[0].do(http.MethodDelete, "/v1/ratelimits/api", nil, nil)

			var admitted atomic.Int64
			ctx, cancel := context.WithTimeout(context.Background(), run)
			defer cancel()
			var wg sync.WaitGroup
			for _, c := range clients {
				l := c.Limiter("api")
				wg.Go(func() { // Take, backing off when refused
					for ctx.Err() == nil {
						err := l.Take(ctx)
						switch {
						case err == nil:
							admitted.Add(1)
						case errors.Is(err, ErrRateLimited):
							time.Sleep(time.Millisecond)
						case ctx.Err() == nil:
							t.Errorf("Take() = %v", err)
							return
						}
					}
				})
				wg.Go(func() { // Wait
					for ctx.Err() == nil {
						if l.Wait(ctx) == nil {
							admitted.Add(1)
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(created)
			bound := capacity + rate*elapsed.Seconds()
			got := float64(admitted.Load())
			t.Logf("4 clients admitted %v in %v; the bucket grants at most %.1f", got, elapsed.Round(time.Millisecond), bound)
			if got > bound {
				t.Errorf("admitted %v, more than capacity + rate × elapsed = %.1f", got, bound)
			}
			if got < 0.6*bound {
				t.Errorf("admitted %v, under 60%% of the %.1f the bucket grants", got, bound)
			}
		})
	}
}

func TestLimiterLeasesFollowTheRate(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putLimit("search", 1000, 1000)
	c := newTestClient(t, Config{FlushInterval: 50 * time.Millisecond, DisableEvents: true}, p.URL)
	l := c.Limiter("search")
	before := p.requests.Load()
	const n = 400
	start := time.Now()
	for i := range n {
		if err := l.Take(context.Background()); err != nil {
			t.Fatalf("Take() %d = %v", i, err)
		}
		if i%4 == 3 {
			time.Sleep(time.Millisecond) // about 2000 calls a second at most
		}
	}
	elapsed := time.Since(start)
	takes := p.routes()["POST /v1/ratelimits/search/take"]
	t.Logf("%d calls in %v took %d takes (%d requests in all); last lease size %d", n, elapsed.Round(time.Millisecond), takes, p.requests.Load()-before, l.size)
	// About one lease per flush interval once the size has grown
	// (1, 2, 4, ... doubling): far fewer than one take per call.
	if maxTakes := 12 + int(elapsed/(50*time.Millisecond))*2; takes > maxTakes {
		t.Errorf("%d calls took %d takes, want at most %d", n, takes, maxTakes)
	}
}

func TestLimiterKeys(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putLimit("tenants", 2, 0.001) // no refill to speak of
	c := newTestClient(t, Config{MaxKeys: 2}, p.URL)
	l := c.Limiter("tenants")
	ctx := context.Background()
	for _, key := range []string{"a", "b", ""} {
		lk := l.For(key)
		if lk.Key() != key || lk.Name() != "tenants" {
			t.Errorf("For(%q) = %q/%q", key, lk.Name(), lk.Key())
		}
		for i := range 2 {
			if err := lk.Take(ctx); err != nil {
				t.Fatalf("For(%q).Take() %d = %v, want nil", key, i, err)
			}
		}
		err := lk.Take(ctx)
		if !errors.Is(err, ErrRateLimited) || retryAfter(err) <= 0 {
			t.Errorf("For(%q).Take() on an empty bucket = %v, want ErrRateLimited with a Retry-After", key, err)
		}
	}
	if a1, a2 := l.For("a"), l.For("a"); a1 != a2 || l.For("") != l {
		t.Errorf("For returns a new Limiter for a key it holds")
	}
	l.For("c") // over MaxKeys: one is forgotten
	if n := l.shared.nkeys.Load(); n > 2 {
		t.Errorf("%d keys remembered, want at most MaxKeys = 2", n)
	}
	if err := l.For(string(make([]byte, 300))).Take(ctx); err == nil {
		t.Errorf("Take() with a 300-byte key = nil, want an error")
	}
}

func TestLimiterTakeNAndWait(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putLimit("batch", 5, 20)
	c := newTestClient(t, Config{}, p.URL)
	l := c.Limiter("batch")
	ctx := context.Background()
	if err := l.TakeN(ctx, 5); err != nil {
		t.Fatalf("TakeN(5) on a full bucket of 5 = %v", err)
	}
	if err := l.TakeN(ctx, 3); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("TakeN(3) on an empty bucket = %v, want ErrRateLimited", err)
	}
	start := time.Now()
	if err := l.WaitN(ctx, 3); err != nil {
		t.Fatalf("WaitN(3) = %v", err)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > time.Second {
		t.Errorf("WaitN(3) at 20/s took %v, want about 150ms", took)
	}
	if err := l.TakeN(ctx, 6); err == nil || errors.Is(err, ErrRateLimited) {
		t.Errorf("TakeN(6) over the capacity of 5 = %v, want an error that is not a refusal", err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := l.WaitN(short, 5); !errors.Is(err, ErrRateLimited) {
		t.Errorf("WaitN(5) with a deadline too short = %v, want the refusal at once", err)
	}
}

func TestLimiterDegraded(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putLimit("mail", 10, 0.001)
	p.putLimit("sms", 10, 0.001)
	c := newTestClient(t, Config{
		LeaseSize:             1,
		FleetShare:            0.5,
		DegradedProbeInterval: time.Hour,
		FailClosedFor:         func(kind, name string) bool { return name == "sms" },
	}, p.URL)
	mail, sms := c.Limiter("mail"), c.Limiter("sms")
	for _, l := range []*Limiter{mail, sms} {
		if err := l.Take(context.Background()); err != nil {
			t.Fatalf("Take() = %v", err)
		}
	}
	waitFor(t, 2*time.Second, "limits known", func() bool { return mail.shared.cfg.Load() != nil })

	p.kill()
	// Half of the capacity of 10, locally.
	for i := range 5 {
		if err := mail.Take(context.Background()); err != nil {
			t.Fatalf("Take() %d while degraded = %v, want nil", i, err)
		}
	}
	if !c.Degraded() {
		t.Fatalf("Degraded() = false with the control plane gone")
	}
	if err := mail.Take(context.Background()); !errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable) {
		t.Errorf("6th Take() on a local share of 5 = %v, want ErrRateLimited", err)
	}
	if err := sms.Take(context.Background()); !errors.Is(err, ErrRateLimited) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("Take() of a fail-closed limiter while degraded = %v, want ErrRateLimited and ErrUnavailable", err)
	}
}

// TestDegradedFairShare: two clients take from a limit; when the control
// plane goes away, each holds half of it locally, as the control plane last
// counted them.
func TestDegradedFairShare(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.do("PUT", "/v1/ratelimits/shared", map[string]any{"capacity": 20, "refill_per_second": 0.01}, nil)
	ctx := context.Background()
	a := newTestClient(t, Config{LeaseSize: 1, DisableEvents: true}, p.URL)
	b := newTestClient(t, Config{LeaseSize: 1, DisableEvents: true}, p.URL)
	la, lb := a.Limiter("shared"), b.Limiter("shared")
	// Both take until the control plane has counted both of them.
	waitFor(t, 5*time.Second, "two clients counted", func() bool {
		la.Take(ctx)
		lb.Take(ctx)
		return la.shared.clients.Load() == 2 && lb.shared.clients.Load() == 2
	})
	waitFor(t, 5*time.Second, "the limit's config learned", func() bool {
		return la.shared.cfg.Load() != nil
	})
	p.kill()
	admitted := 0
	for range 40 {
		if la.Take(ctx) == nil {
			admitted++
		}
	}
	if !a.Degraded() {
		t.Fatal("client a is not degraded with its control plane gone")
	}
	// The local bucket holds 20/2 = 10 tokens and barely refills.
	if admitted != 10 {
		t.Fatalf("degraded client admitted %d of 40, want 10: half of capacity 20 for 2 clients", admitted)
	}
}
