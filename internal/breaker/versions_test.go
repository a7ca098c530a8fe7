package breaker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

func stores() map[string]func(t *testing.T) *store.Store {
	return map[string]func(t *testing.T) *store.Store{
		"miniredis": func(t *testing.T) *store.Store { return storetest.NewMini(t, time.Now()).Store },
		"redis":     func(t *testing.T) *store.Store { return storetest.StartRedis(t).Open(t) },
	}
}

// TestConfigVersions: 1 at creation, +1 only when a put changes the
// config, a history entry per version with its author, and versions that
// go on above the old ones after delete and re-create.
func TestConfigVersions(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			svc := breaker.NewService(open(t))
			cfg := breaker.DefaultConfig()
			put := func(by string, c breaker.Config) breaker.Breaker {
				t.Helper()
				b, _, err := svc.PutWith(ctx, "pay", c, breaker.PutOptions{By: by})
				if err != nil {
					t.Fatalf("PutWith(%q) = %v", by, err)
				}
				return b
			}
			if b := put("alice", cfg); b.ConfigVersion != 1 {
				t.Fatalf("created: config_version = %d, want 1", b.ConfigVersion)
			}
			if b := put("bob", cfg); b.ConfigVersion != 1 {
				t.Fatalf("same config again: config_version = %d, want 1", b.ConfigVersion)
			}
			changed := cfg
			changed.MinimumCalls = 5
			if b := put("bob", changed); b.ConfigVersion != 2 {
				t.Fatalf("changed: config_version = %d, want 2", b.ConfigVersion)
			}
			if b, _ := svc.Get(ctx, "pay"); b.ConfigVersion != 2 {
				t.Fatalf("Get: config_version = %d, want 2", b.ConfigVersion)
			}
			hist, err := svc.History(ctx, "pay", 20)
			if err != nil {
				t.Fatal(err)
			}
			got := make([][2]any, len(hist))
			for i, v := range hist {
				got[i] = [2]any{v.ConfigVersion, v.By}
				if v.At.IsZero() {
					t.Errorf("version %d has no time", v.ConfigVersion)
				}
			}
			if diff := cmp.Diff([][2]any{{int64(2), "bob"}, {int64(1), "alice"}}, got); diff != "" {
				t.Fatalf("History (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(changed, hist[0].Config); diff != "" {
				t.Errorf("History()[0].Config (-want +got):\n%s", diff)
			}

			if err := svc.Delete(ctx, "pay"); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.History(ctx, "pay", 20); !errors.Is(err, breaker.ErrNotFound) {
				t.Fatalf("History of a deleted breaker = %v, want ErrNotFound", err)
			}
			b, created, err := svc.PutWith(ctx, "pay", cfg, breaker.PutOptions{By: "carol"})
			if err != nil || !created {
				t.Fatalf("re-create = %v, created %v", err, created)
			}
			if b.ConfigVersion != 3 {
				t.Fatalf("re-created: config_version = %d, want 3 (never back)", b.ConfigVersion)
			}
			hist, _ = svc.History(ctx, "pay", 20)
			if len(hist) != 3 || hist[0].ConfigVersion != 3 || hist[0].By != "carol" {
				t.Fatalf("History after re-create = %+v, want 3 versions, newest 3 by carol", hist)
			}
		})
	}
}

// TestHistoryBounded: the store keeps the last HistoryKept versions and no
// more.
func TestHistoryBounded(t *testing.T) {
	ctx := context.Background()
	svc := breaker.NewService(storetest.NewMini(t, time.Now()).Store)
	cfg := breaker.DefaultConfig()
	n := breaker.HistoryKept + 20
	for i := range n {
		cfg.MinimumCalls = int64(i + 1)
		if _, _, err := svc.Put(ctx, "pay", cfg); err != nil {
			t.Fatal(err)
		}
	}
	hist, err := svc.History(ctx, "pay", breaker.HistoryKept)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != breaker.HistoryKept || hist[0].ConfigVersion != int64(n) || hist[len(hist)-1].ConfigVersion != int64(n-breaker.HistoryKept+1) {
		t.Fatalf("History(%d) = %d entries from %d to %d, want %d from %d to %d", breaker.HistoryKept, len(hist),
			hist[0].ConfigVersion, hist[len(hist)-1].ConfigVersion, breaker.HistoryKept, n, n-breaker.HistoryKept+1)
	}
	if _, err := svc.History(ctx, "pay", breaker.HistoryKept+1); err == nil {
		t.Errorf("History(%d) = nil error, want a validation error", breaker.HistoryKept+1)
	}
}

// TestIfMatchRace: operators who both read version 1 and write with that
// precondition at once: exactly one write applies; the others get a
// VersionConflict naming the version that won, and their config is not in
// force.
func TestIfMatchRace(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			svc := breaker.NewService(open(t))
			if _, _, err := svc.Put(ctx, "pay", breaker.DefaultConfig()); err != nil {
				t.Fatal(err)
			}
			const writers = 8
			var wg sync.WaitGroup
			errs := make([]error, writers)
			for i := range writers {
				wg.Go(func() {
					cfg := breaker.DefaultConfig()
					cfg.MinimumCalls = int64(100 + i)
					_, _, errs[i] = svc.PutWith(ctx, "pay", cfg, breaker.PutOptions{By: "op",
						If: contract.Precondition{Match: true, Versions: []int64{1}}})
				})
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				var vc *contract.VersionConflict
				switch {
				case err == nil:
					if winner >= 0 {
						t.Fatalf("writers %d and %d both applied over version 1", winner, i)
					}
					winner = i
				case errors.As(err, &vc):
					if !vc.Exists || vc.Current != 2 {
						t.Errorf("writer %d: conflict %+v, want current version 2", i, vc)
					}
				default:
					t.Fatalf("writer %d: %v", i, err)
				}
			}
			if winner < 0 {
				t.Fatal("no writer applied")
			}
			b, _ := svc.Get(ctx, "pay")
			if b.ConfigVersion != 2 || b.Config.MinimumCalls != int64(100+winner) {
				t.Fatalf("after the race: version %d, minimum_calls %d; want 2 and the winner's %d", b.ConfigVersion, b.Config.MinimumCalls, 100+winner)
			}
			// Create-only on an existing breaker fails and changes nothing.
			_, _, err := svc.PutWith(ctx, "pay", breaker.DefaultConfig(), breaker.PutOptions{If: contract.Precondition{MustNotExist: true}})
			if !errors.Is(err, contract.ErrPreconditionFailed) {
				t.Fatalf("create-only over an existing breaker = %v, want ErrPreconditionFailed", err)
			}
			// If-Match on a breaker that does not exist fails.
			_, _, err = svc.PutWith(ctx, "nope", breaker.DefaultConfig(), breaker.PutOptions{If: contract.Precondition{MustExist: true}})
			if !errors.Is(err, contract.ErrPreconditionFailed) {
				t.Fatalf("If-Match: * on a missing breaker = %v, want ErrPreconditionFailed", err)
			}
			if _, err := svc.Get(ctx, "nope"); !errors.Is(err, breaker.ErrNotFound) {
				t.Fatalf("a refused conditional create made the breaker: Get = %v", err)
			}
		})
	}
}
