package breaker_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestIndexUnderConcurrentPutDelete: PUTs and DELETEs of the same names
// race from many goroutines on a real redis-server; once they settle,
// every breaker that exists is in List.
func TestIndexUnderConcurrentPutDelete(t *testing.T) {
	r := storetest.StartRedis(t)
	svc := breaker.NewService(r.Open(t))
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
						if _, _, err := svc.Put(ctx, name, breaker.DefaultConfig()); err != nil {
							t.Errorf("Put(%q) = %v", name, err)
						}
					} else if err := svc.Delete(ctx, name); err != nil && !errors.Is(err, breaker.ErrNotFound) {
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
			_, err := svc.Get(ctx, name)
			exists := err == nil
			if exists != listed[name] {
				t.Fatalf("round %d: breaker %q exists = %v, listed = %v", round, name, exists, listed[name])
			}
		}
	}
}
