package breaker_test

import (
	"context"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestGenerationNeverGoesBack: a breaker deleted and created again starts
// above every generation the old one had, on miniredis and on a real
// redis-server.
func TestGenerationNeverGoesBack(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) *store.Store{
		"miniredis": func(t *testing.T) *store.Store { return storetest.NewMini(t, time.Now()).Store },
		"redis":     func(t *testing.T) *store.Store { return storetest.StartRedis(t).Open(t) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			svc := breaker.NewService(open(t))
			cfg := breaker.DefaultConfig()
			highest := int64(0)
			for round := range 3 {
				b, created, err := svc.Put(ctx, "pay", cfg)
				if err != nil || !created {
					t.Fatalf("round %d: Put = %v, created %v; want created", round, err, created)
				}
				if b.Generation <= highest {
					t.Fatalf("round %d: re-created breaker's generation = %d, want above %d", round, b.Generation, highest)
				}
				// Move the generation on: force open, then reset.
				if _, err := svc.Force(ctx, "pay", breaker.ForceRequest{State: breaker.StateForcedOpen, Reason: "drill"}); err != nil {
					t.Fatal(err)
				}
				b, err = svc.Reset(ctx, "pay")
				if err != nil {
					t.Fatal(err)
				}
				highest = b.Generation
				if err := svc.Delete(ctx, "pay"); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
