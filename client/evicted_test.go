package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// While degraded, a key forgotten past MaxKeys and asked for again gets
// the bucket it had, not a full one: more active keys than the cap must
// not loosen the limit during an outage.
func TestDegradedEvictedKeyStaysSpent(t *testing.T) {
	p := startPlane(t, storetest.StartRedis(t))
	p.putLimit("per-ip", 3, 0.001) // no refill to speak of
	c := newTestClient(t, Config{MaxKeys: 1, LeaseSize: 1, FleetShare: 1}, p.URL)
	l := c.Limiter("per-ip")
	ctx := context.Background()
	if err := l.For("10.0.0.1").Take(ctx); err != nil {
		t.Fatalf("Allow() with the control plane up = %v", err)
	}
	waitFor(t, 5*time.Second, "the limit's config is learned", func() bool { return l.shared.cfg.Load() != nil })
	p.kill()

	spend := func(key string) int {
		n := 0
		for range 10 {
			if err := l.For(key).Take(ctx); err != nil {
				if !errors.Is(err, ErrRateLimited) {
					t.Fatalf("For(%q).Take() degraded = %v, want nil or ErrRateLimited", key, err)
				}
				break
			}
			n++
		}
		return n
	}
	if n := spend("10.0.0.2"); n != 3 {
		t.Fatalf("a new key's degraded bucket granted %d, want its full 3", n)
	}
	if !c.Degraded() {
		t.Fatal("client not degraded with the control plane gone")
	}
	spend("10.0.0.3") // MaxKeys is 1: 10.0.0.2 is forgotten
	if n := spend("10.0.0.2"); n != 0 {
		t.Errorf("the evicted key's bucket granted %d after it came back, want 0: it was spent", n)
	}
}
