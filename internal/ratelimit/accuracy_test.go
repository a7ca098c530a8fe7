package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// storeTime reads the store's clock, in microseconds.
var storeTime = store.NewScript("test.time", `
local t = redis.call('TIME')
return tonumber(t[1]) * 1000000 + tonumber(t[2])`)

func readStoreTime(t *testing.T, st *store.Store) int64 {
	t.Helper()
	v, err := st.Run(context.Background(), storeTime, nil)
	if err != nil {
		t.Fatalf("read the store's clock: %v", err)
	}
	return v.(int64)
}

// TestAccuracyAcrossReplicas has two Services, as two control-plane
// replicas would, over one real Redis, and 16 goroutines taking one token at
// a time for about 3 seconds from a bucket of capacity 20 refilled at 100
// tokens a second. What they are granted must never exceed what the bucket
// can give over the elapsed time by Redis's clock (capacity + rate x
// elapsed), and while they keep it empty must come within 1% of it.
func TestAccuracyAcrossReplicas(t *testing.T) {
	const (
		capacity = 20
		rate     = 100 // tokens a second
		takers   = 16
		run      = 3 * time.Second
	)
	r := storetest.StartRedis(t)
	replicas := []*Service{NewService(r.Open(t)), NewService(r.Open(t))}
	ctx := context.Background()
	if _, _, err := replicas[0].Put(ctx, "acc", Config{Capacity: capacity, RefillPerSecond: rate}); err != nil {
		t.Fatal(err)
	}
	st := r.Open(t)

	var granted, calls, denied atomic.Int64
	var wg sync.WaitGroup
	startUS := readStoreTime(t, st)
	deadline := time.Now().Add(run)
	for i := range takers {
		svc := replicas[i%len(replicas)]
		wg.Go(func() {
			for time.Now().Before(deadline) {
				res, err := svc.Take(ctx, "acc", TakeRequest{Tokens: 1})
				if err != nil {
					t.Errorf("Take: %v", err)
					return
				}
				calls.Add(1)
				granted.Add(res.Granted)
				if !res.Allowed {
					denied.Add(1)
				}
			}
		})
	}
	wg.Wait()
	endUS := readStoreTime(t, st)

	elapsed := float64(endUS-startUS) / 1e6
	bound := capacity + rate*elapsed
	got := float64(granted.Load())
	t.Logf("%d takes over %.3fs by Redis's clock: %d granted, %d denied; bound %.1f, granted %.2f%% of it",
		calls.Load(), elapsed, granted.Load(), denied.Load(), bound, 100*got/bound)
	if got > bound {
		t.Errorf("granted %v tokens in %.3fs, more than capacity + rate x elapsed = %.1f", got, elapsed, bound)
	}
	if denied.Load() == 0 {
		t.Fatalf("no take was denied: the bucket was never empty, so the test shows nothing")
	}
	if got < 0.99*bound {
		t.Errorf("granted %v tokens in %.3fs, less than 99%% of %.1f", got, elapsed, bound)
	}
}
