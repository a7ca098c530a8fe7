package breaker

import (
	"context"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

func TestSmoke(t *testing.T) {
	m := storetest.NewMini(t, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	s := NewService(m.Store)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.MinimumCalls = 2
	b, created, err := s.Put(ctx, "pay", cfg)
	t.Logf("%+v %v %v", b, created, err)
	d, err := s.Acquire(ctx, "pay")
	t.Logf("%+v %v", d, err)
	d, err = s.Report(ctx, "pay", []Outcome{{Success: false, Count: 3, Generation: -1}})
	t.Logf("%+v %v", d, err)
	m.Advance(31 * time.Second)
	d, err = s.Acquire(ctx, "pay")
	t.Logf("%+v %v", d, err)
	d, err = s.Report(ctx, "pay", []Outcome{{Success: true, Count: 1, Permit: d.Permit, Generation: -1}})
	t.Logf("%+v %v", d, err)
	b, err = s.Force(ctx, "pay", ForceRequest{State: StateForcedOpen, Reason: "x", By: "me", TTL: time.Minute})
	t.Logf("%+v %v", b, err)
}
