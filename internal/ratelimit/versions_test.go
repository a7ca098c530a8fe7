package ratelimit

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestLimitConfigVersions: 1 at creation, +1 only on a change, history with
// authors, never back across delete and re-create, takes unaffected by a
// version change, and If-Match writes that cannot overwrite each other.
func TestLimitConfigVersions(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) *store.Store{
		"miniredis": func(t *testing.T) *store.Store { return newMiniBackend(t).mini.Store },
		"redis":     func(t *testing.T) *store.Store { return storetest.StartRedis(t).Open(t) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := NewService(open(t))
			put := func(by string, c Config, want int64) {
				t.Helper()
				l, _, err := s.PutWith(ctx, "api", c, PutOptions{By: by})
				if err != nil || l.ConfigVersion != want {
					t.Fatalf("PutWith(%q, %+v) = version %d, %v; want %d", by, c, l.ConfigVersion, err, want)
				}
			}
			put("alice", Config{Capacity: 10, RefillPerSecond: 1}, 1)
			if _, err := s.Take(ctx, "api", TakeRequest{Tokens: 4, Key: "k"}); err != nil {
				t.Fatal(err)
			}
			put("alice", Config{Capacity: 10, RefillPerSecond: 1}, 1)
			put("bob", Config{Capacity: 10, RefillPerSecond: 0.001}, 2)
			// A new version is not a new incarnation: the bucket keeps what
			// was taken.
			key := "k"
			l, err := s.Get(ctx, "api", &key)
			if err != nil || l.ConfigVersion != 2 || *l.Tokens > 6.01 {
				t.Fatalf("Get after a version change = %+v, %v; want version 2 and about 6 tokens", l, err)
			}
			hist, err := s.History(ctx, "api", 20)
			if err != nil || len(hist) != 2 || hist[0].By != "bob" || hist[0].Config.RefillPerSecond != 0.001 || hist[1].ConfigVersion != 1 {
				t.Fatalf("History = %+v, %v; want versions 2 (bob) and 1", hist, err)
			}

			// Two writers over version 2: one applies.
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() {
					_, _, errs[i] = s.PutWith(ctx, "api", Config{Capacity: int64(20 + i), RefillPerSecond: 1},
						PutOptions{If: contract.Precondition{Match: true, Versions: []int64{2}}})
				})
			}
			wg.Wait()
			applied := 0
			for _, err := range errs {
				var vc *contract.VersionConflict
				switch {
				case err == nil:
					applied++
				case errors.As(err, &vc) && vc.Current == 3:
				default:
					t.Fatalf("conditional put = %v, want nil or a conflict at version 3", err)
				}
			}
			if applied != 1 {
				t.Fatalf("%d of the writers over version 2 applied, want 1", applied)
			}

			if err := s.Delete(ctx, "api"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.History(ctx, "api", 20); !errors.Is(err, ErrNotFound) {
				t.Fatalf("History of a deleted limit = %v, want ErrNotFound", err)
			}
			_, _, err = s.PutWith(ctx, "api", Config{Capacity: 10, RefillPerSecond: 1}, PutOptions{If: contract.Precondition{MustExist: true}})
			if !errors.Is(err, contract.ErrPreconditionFailed) {
				t.Fatalf("If-Match: * on a deleted limit = %v, want ErrPreconditionFailed", err)
			}
			l, created, err := s.PutWith(ctx, "api", Config{Capacity: 10, RefillPerSecond: 1}, PutOptions{If: contract.Precondition{MustNotExist: true}})
			if err != nil || !created || l.ConfigVersion != 4 {
				t.Fatalf("re-create = %+v, created %v, %v; want version 4", l, created, err)
			}
			if hist, _ := s.History(ctx, "api", 1); len(hist) != 1 || hist[0].ConfigVersion != 4 {
				t.Fatalf("History(1) after re-create = %+v, want version 4 alone", hist)
			}
		})
	}
}
