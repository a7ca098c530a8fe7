package breaker

import (
	"context"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// recover trips the breaker with trips failures, waits out open, and
// closes it with one successful probe, failing the test if any step does
// not answer as expected.
func recoverBreaker(t *testing.T, s *Service, name string, trips int64, wait func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	if d, err := s.Report(ctx, name, []Outcome{{Success: false, Count: trips, Generation: -1}}); err != nil || d.State != StateOpen {
		t.Fatalf("Report(%d failures) = %+v, %v; want open", trips, d, err)
	}
	wait(1100 * time.Millisecond)
	d, err := s.Acquire(ctx, name)
	if err != nil || d.Permit == "" {
		t.Fatalf("Acquire() after open = %+v, %v; want a probe permit", d, err)
	}
	if d, err = s.Report(ctx, name, []Outcome{{Success: true, Count: 1, Permit: d.Permit, Generation: -1}}); err != nil || d.State != StateClosed {
		t.Fatalf("Report(probe ok) = %+v, %v; want closed", d, err)
	}
}

// slowStart trips after 20 calls in a count window of 100 and, closed by
// its one probe, ramps over 10 s.
var slowStart = cfgWith(func(c *Config) {
	*c = fast
	c.Window = Window{Type: WindowCount, Size: 100}
	c.MinimumCalls = 20
	c.SlowStartMS = 10000
})

// TestSlowStartRamps: after half-open closes the breaker, the share of
// calls admitted starts at half_open_max_calls out of the calls the
// window held at the trip and ramps linearly to 100% over slow_start_ms,
// on the store's clock; GET shows it and when it ends.
func TestSlowStartRamps(t *testing.T) {
	ctx := context.Background()
	m := storetest.NewMini(t, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	s := NewService(m.Store)
	if _, _, err := s.Put(ctx, "ramp", slowStart); err != nil {
		t.Fatal(err)
	}
	recoverBreaker(t, s, "ramp", 20, m.Advance) // 1 probe of 20 calls: starts at 5%
	closedAt := m.Now()
	for _, tt := range []struct {
		after time.Duration
		want  int64
	}{
		{0, 5},
		{2500 * time.Millisecond, 5 + 95*2500/10000},
		{5 * time.Second, 5 + 95*5000/10000},
		{9999 * time.Millisecond, 5 + 95*9999/10000},
		{10 * time.Second, 100},
		{time.Minute, 100},
	} {
		m.Advance(closedAt.Add(tt.after).Sub(m.Now()))
		d, err := s.Acquire(ctx, "ramp")
		if err != nil || !d.Allowed || d.AdmitPercent != tt.want {
			t.Errorf("Acquire() %v after closing = %+v, %v; want allowed with admit_percent %d", tt.after, d, err, tt.want)
		}
		b, err := s.Get(ctx, "ramp")
		if err != nil {
			t.Fatal(err)
		}
		wantUntil := tt.want < 100
		if b.AdmitPercent != tt.want || (b.SlowStartUntil != nil) != wantUntil {
			t.Errorf("Get() %v after closing: admit_percent %d, slow_start_until %v; want %d, set %v", tt.after, b.AdmitPercent, b.SlowStartUntil, tt.want, wantUntil)
		}
		if wantUntil && !b.SlowStartUntil.Equal(closedAt.Add(10*time.Second)) {
			t.Errorf("Get().SlowStartUntil = %v, want %v", b.SlowStartUntil, closedAt.Add(10*time.Second))
		}
	}

	// A reset, an operator's override or a trip ends a ramp; only
	// half-open closing starts one.
	recoverBreaker(t, s, "ramp", 20, m.Advance)
	if _, err := s.Reset(ctx, "ramp"); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Acquire(ctx, "ramp"); d.AdmitPercent != 100 {
		t.Errorf("Acquire() after a reset during a ramp: admit_percent %d, want 100", d.AdmitPercent)
	}
	recoverBreaker(t, s, "ramp", 20, m.Advance)
	if _, err := s.Force(ctx, "ramp", ForceRequest{State: StateForcedClosed, Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Acquire(ctx, "ramp"); d.AdmitPercent != 100 {
		t.Errorf("Acquire() forced closed during a ramp: admit_percent %d, want 100", d.AdmitPercent)
	}
}

// TestSlowStartRealRedis checks the ramp on a real redis-server's clock:
// it starts where it must and grows, and ends within slow_start_ms.
func TestSlowStartRealRedis(t *testing.T) {
	ctx := context.Background()
	s := NewService(storetest.StartRedis(t).Open(t))
	cfg := cfgWith(func(c *Config) {
		*c = fast
		c.Window = Window{Type: WindowCount, Size: 100}
		c.MinimumCalls = 10
		c.HalfOpenMaxCalls = 1
		c.SlowStartMS = 3000
	})
	if _, _, err := s.Put(ctx, "ramp", cfg); err != nil {
		t.Fatal(err)
	}
	recoverBreaker(t, s, "ramp", 10, time.Sleep) // starts at 10%
	first, err := s.Acquire(ctx, "ramp")
	if err != nil || first.AdmitPercent < 10 || first.AdmitPercent >= 100 {
		t.Fatalf("Acquire() just after closing = %+v, %v; want admit_percent in [10, 100)", first, err)
	}
	time.Sleep(time.Second)
	mid, _ := s.Acquire(ctx, "ramp")
	if mid.AdmitPercent <= first.AdmitPercent {
		t.Errorf("admit_percent after a second = %d, want above %d", mid.AdmitPercent, first.AdmitPercent)
	}
	time.Sleep(2100 * time.Millisecond)
	if end, _ := s.Acquire(ctx, "ramp"); end.AdmitPercent != 100 {
		t.Errorf("admit_percent after slow_start_ms = %d, want 100", end.AdmitPercent)
	}
}

// TestRetryBudgetStaysWithinBudget: clients that report failing calls and
// spend every retry they are lent never retry more, in the window, than
// retry_budget_percent of its calls plus the minimum; the loans of
// clients that do not retry come back within two cache_ttl_ms.
func TestRetryBudgetStaysWithinBudget(t *testing.T) {
	for _, sub := range []struct {
		name string
		open func(t *testing.T) (*Service, func(time.Duration))
	}{
		{"miniredis", func(t *testing.T) (*Service, func(time.Duration)) {
			m := storetest.NewMini(t, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
			return NewService(m.Store), m.Advance
		}},
		{"redis", func(t *testing.T) (*Service, func(time.Duration)) {
			return NewService(storetest.StartRedis(t).Open(t)), time.Sleep
		}},
	} {
		t.Run(sub.name, func(t *testing.T) {
			ctx := context.Background()
			s, wait := sub.open(t)
			cfg := cfgWith(func(c *Config) {
				c.Window = Window{Type: WindowTime, Size: 60}
				c.MinimumCalls = 1_000_000 // the dependency fails, the breaker stays closed
				c.CacheTTLMS = 50
				c.RetryBudgetPercent = 10
				c.RetryBudgetMinPerSecond = 0.5 // 30 over the window
			})
			if _, _, err := s.Put(ctx, "budget", cfg); err != nil {
				t.Fatal(err)
			}
			const clients = 5
			held := make([]int64, clients) // each client's allowance
			var calls, retries int64
			for round := range 40 {
				for c := range clients {
					// 20 first attempts, and every retry the allowance permits.
					r := held[c]
					outs := []Outcome{{Success: false, Count: 20 + r, Retries: r, Generation: -1}}
					d, err := s.Report(ctx, "budget", outs)
					if err != nil || d.RetryAllowance == nil {
						t.Fatalf("round %d client %d: Report = %+v, %v; want a retry allowance", round, c, d, err)
					}
					held[c] = *d.RetryAllowance
					calls += 20 + r
					retries += r
				}
				wait(10 * time.Millisecond)
			}
			budget := (10*calls)/100 + 30
			if retries > budget {
				t.Errorf("%d retries of %d calls, want at most %d (10%% + 0.5/s over 60 s)", retries, calls, budget)
			}
			if retries < budget*8/10 {
				t.Errorf("%d retries of %d calls, want near the budget %d: retries to a failing dependency were starved", retries, calls, budget)
			}
			b, _ := s.Get(ctx, "budget")
			if b.Stats.Retries != retries {
				t.Errorf("Get().Stats.Retries = %d, want %d", b.Stats.Retries, retries)
			}

			// Loans no one spends lapse: once everything left is lent,
			// a report is lent nothing until the loans are two
			// cache_ttl_ms old.
			if _, _, err := s.Put(ctx, "lapse", cfgWith(func(c *Config) {
				*c = cfg
				c.RetryBudgetMinPerSecond = 0
				c.CacheTTLMS = 500 // two reports in a row land within one, however loaded the machine
			})); err != nil {
				t.Fatal(err)
			}
			report := func(n int64) int64 {
				t.Helper()
				d, err := s.Report(ctx, "lapse", []Outcome{{Success: true, Count: n, Generation: -1}})
				if err != nil || d.RetryAllowance == nil {
					t.Fatalf("Report(%d) = %+v, %v; want a retry allowance", n, d, err)
				}
				return *d.RetryAllowance
			}
			if got := report(100); got != 10 {
				t.Errorf("allowance for the first 100 calls = %d, want 10 (10%%)", got)
			}
			if got := report(1); got != 0 {
				t.Errorf("allowance with the whole budget lent = %d, want 0", got)
			}
			wait(1100 * time.Millisecond)
			if got := report(1); got != 1 {
				t.Errorf("allowance once the loans lapsed = %d, want 1", got)
			}
		})
	}
}
