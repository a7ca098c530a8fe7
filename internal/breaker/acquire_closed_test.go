package breaker

import (
	"context"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
	"github.com/google/go-cmp/cmp"
)

// TestAcquireClosedPath: acquire answers exactly as it would without
// acquire_closed.lua, whether or not that file answers: two breakers go
// through the same steps on one clock, and at each step one is asked with
// the acquire script and the other with common.lua and acquire.lua alone.
func TestAcquireClosedPath(t *testing.T) {
	ctx := context.Background()
	full := store.LoadScript(luaDir, "breaker", "acquire", "common")
	m := storetest.NewMini(t, time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))
	s := NewService(m.Store)
	ramp := slowStart
	ramp.CacheTTLMS = 750 // not the default: an answer must carry the breaker's own
	both := func(f func(name string)) {
		f("x")
		f("y")
	}
	permit := map[string]string{}
	compare := func(step string) {
		t.Helper()
		got, err := m.Store.Run(ctx, scriptAcquire, keys("x"), "x")
		if err != nil {
			t.Fatalf("%s: acquire: %v", step, err)
		}
		want, err := m.Store.Run(ctx, full, keys("y"), "y")
		if err != nil {
			t.Fatalf("%s: acquire without acquire_closed.lua: %v", step, err)
		}
		if d, err := parseDecision(got); err == nil && d.Permit != "" {
			permit["x"] = d.Permit
		}
		if d, err := parseDecision(want); err == nil && d.Permit != "" {
			permit["y"] = d.Permit
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: acquire answered differently from common.lua and acquire.lua alone (-without +with):\n%s", step, diff)
		}
	}
	force := func(state string, ttl int64) func(string) {
		return func(name string) {
			if _, err := s.Force(ctx, name, ForceRequest{State: state, Reason: "drill", By: "test", TTLMS: ttl}); err != nil {
				t.Fatal(err)
			}
		}
	}

	compare("no breaker")
	both(func(name string) {
		if _, _, err := s.Put(ctx, name, fast); err != nil {
			t.Fatal(err)
		}
	})
	compare("closed")
	both(force(StateForcedOpen, 0))
	compare("forced open")
	both(func(name string) { s.Unforce(ctx, name) })
	compare("override released")
	both(force(StateForcedClosed, 500))
	compare("forced closed for 500 ms")
	m.Advance(time.Second)
	compare("forced closed, expired")

	both(func(name string) {
		if _, _, err := s.Put(ctx, name, ramp); err != nil {
			t.Fatal(err)
		}
	})
	compare("closed, slow start configured, never tripped")
	both(func(name string) {
		if d, err := s.Report(ctx, name, []Outcome{{Success: false, Count: 20, Generation: -1}}); err != nil || d.State != StateOpen {
			t.Fatalf("Report(20 failures) = %+v, %v; want open", d, err)
		}
	})
	compare("open")
	m.Advance(1100 * time.Millisecond)
	compare("open duration over: half-open, a probe permit")
	compare("half-open, no permit left")
	both(func(name string) {
		if d, err := s.Report(ctx, name, []Outcome{{Success: true, Count: 1, Permit: permit[name], Generation: -1}}); err != nil || d.State != StateClosed {
			t.Fatalf("Report(probe ok) = %+v, %v; want closed", d, err)
		}
	})
	compare("closed, slow start begins")
	m.Advance(5 * time.Second)
	compare("closed, slow start half way")
	m.Advance(5 * time.Second)
	compare("closed, slow start just over")
	m.Advance(time.Minute)
	compare("closed, long after the slow start")
}
