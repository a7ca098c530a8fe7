package ratelimit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestClusterRunsEveryScript runs every rate-limit script on a 3-node Redis
// Cluster for hundreds of limits and thousands of random keys (braces,
// colons, newlines, any UTF-8): all keys of one script share a hash tag, so
// none may fail with CROSSSLOT.
func TestClusterRunsEveryScript(t *testing.T) {
	c := storetest.StartCluster(t, 3)
	st := storetest.OpenURL(t, c.URL(), 0)
	s := ratelimit.NewService(st)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 3))
	pieces := []string{"a", "Z", "9", "{", "}", ":", "\n", " ", "☃", "é", "-", "tenant", "{x}", "bw:", "~", "="}
	randomKey := func() string {
		k := ""
		for range r.IntN(12) {
			k += pieces[r.IntN(len(pieces))]
		}
		return k
	}
	const limits = 300
	work := make(chan int)
	var failures atomic.Int64
	var wg sync.WaitGroup
	keys := make([][]string, limits)
	for i := range keys {
		for range 10 {
			keys[i] = append(keys[i], randomKey())
		}
	}
	for range 8 {
		wg.Go(func() {
			for i := range work {
				name := fmt.Sprintf("limit-%d.%c", i, 'a'+i%26)
				fail := func(step string, err error) {
					if failures.Add(1) < 5 {
						t.Errorf("%s %s: %v", name, step, err)
					}
				}
				if _, _, err := s.Put(ctx, name, ratelimit.Config{Capacity: 5, RefillPerSecond: 1}); err != nil {
					fail("put", err)
					continue
				}
				for j, k := range keys[i] {
					if _, err := s.Take(ctx, name, ratelimit.TakeRequest{Tokens: 1 + int64(len(k)%5), Key: k, Partial: true}); err != nil {
						fail("take", err)
					}
					if _, err := s.Get(ctx, name, &k); err != nil {
						fail("get", err)
					}
					for try := range 2 {
						_, replayed, err := s.TakeOnce(ctx, name, fmt.Sprintf("idem-%d", j), ratelimit.TakeRequest{Tokens: 1, Key: k})
						if err == nil && replayed != (try == 1) {
							err = fmt.Errorf("try %d replayed = %v", try, replayed)
						}
						if err != nil {
							fail("take once", err)
						}
					}
				}
				if n, err := s.NoteClients(ctx, name, []string{"client-1", "client-2"}); err != nil || n != 2 {
					fail("note clients", fmt.Errorf("%d clients, %v", n, err))
				}
				if i%3 == 0 {
					if err := s.Delete(ctx, name); err != nil {
						fail("delete", err)
					}
				}
			}
		})
	}
	for i := range limits {
		work <- i
	}
	close(work)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d script runs failed on the cluster", n)
	}
	if _, err := s.List(ctx); err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, node := range c.Nodes {
		if size := node.Do("DBSIZE"); size == ":0" || size == "" {
			t.Errorf("node %s holds no keys: limits did not spread", node.Addr)
		}
	}
}
