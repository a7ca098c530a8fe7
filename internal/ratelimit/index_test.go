package ratelimit_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestIndexUnderConcurrentPutDelete: PUTs and DELETEs of the same names
// race from many goroutines on a real redis-server; once they settle,
// every limit that exists is in List.
func TestIndexUnderConcurrentPutDelete(t *testing.T) {
	r := storetest.StartRedis(t)
	svc := ratelimit.NewService(r.Open(t))
	ctx := context.Background()
	names := []string{"a", "b", "c", "d"}
	for round := range 20 {
		var wg sync.WaitGroup
		for g := range 8 {
			rng := rand.New(rand.NewPCG(uint64(round), uint64(g)))
			wg.Go(func() {
				for range 50 {
					name := names[rng.IntN(len(names))]
					if rng.IntN(2) == 0 {
						if _, _, err := svc.Put(ctx, name, ratelimit.Config{Capacity: 10, RefillPerSecond: 1}); err != nil {
							t.Errorf("Put(%q) = %v", name, err)
						}
					} else if err := svc.Delete(ctx, name); err != nil && !errors.Is(err, ratelimit.ErrNotFound) {
						t.Errorf("Delete(%q) = %v", name, err)
					}
				}
			})
		}
		wg.Wait()
		listed := map[string]bool{}
		bs, err := svc.List(ctx)
		if err != nil {
			t.Fatalf("List() = %v", err)
		}
		for _, b := range bs {
			listed[b.Name] = true
		}
		for _, name := range names {
			_, err := svc.Get(ctx, name, nil)
			exists := err == nil
			if exists != listed[name] {
				t.Fatalf("round %d: limit %q exists = %v, listed = %v", round, name, exists, listed[name])
			}
		}
	}
}
