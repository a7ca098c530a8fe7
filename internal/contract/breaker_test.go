package contract

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestBreakerConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		f     func(*BreakerConfig)
		field string // "" means valid
	}{
		{"defaults", func(c *BreakerConfig) {}, ""},
		{"count window at its max", func(c *BreakerConfig) { c.Window = Window{Type: WindowCount, Size: MaxCountWindow} }, ""},
		{"time window at its max", func(c *BreakerConfig) { c.Window.Size = MaxTimeWindow }, ""},
		{"unknown window type", func(c *BreakerConfig) { c.Window.Type = "sliding" }, "window.type"},
		{"time window too long", func(c *BreakerConfig) { c.Window.Size = MaxTimeWindow + 1 }, "window.size"},
		{"count window of minimum_calls", func(c *BreakerConfig) { c.Window = Window{Type: WindowCount, Size: c.MinimumCalls} }, ""},
		{"count window below minimum_calls", func(c *BreakerConfig) { c.Window = Window{Type: WindowCount, Size: c.MinimumCalls - 1} }, "minimum_calls"},
		{"count window too long", func(c *BreakerConfig) { c.Window = Window{Type: WindowCount, Size: MaxCountWindow + 1} }, "window.size"},
		{"window zero", func(c *BreakerConfig) { c.Window.Size = 0 }, "window.size"},
		{"minimum_calls zero", func(c *BreakerConfig) { c.MinimumCalls = 0 }, "minimum_calls"},
		{"failure rate zero", func(c *BreakerConfig) { c.FailureRateThreshold = 0 }, "failure_rate_threshold"},
		{"failure rate over 100", func(c *BreakerConfig) { c.FailureRateThreshold = 101 }, "failure_rate_threshold"},
		{"slow duration negative", func(c *BreakerConfig) { c.SlowCallDurationMS = -1 }, "slow_call_duration_ms"},
		{"slow rate over 100", func(c *BreakerConfig) { c.SlowCallRateThreshold = 101 }, "slow_call_rate_threshold"},
		{"consecutive negative", func(c *BreakerConfig) { c.ConsecutiveFailures = -1 }, "consecutive_failures"},
		{"open duration zero", func(c *BreakerConfig) { c.OpenDurationMS = 0 }, "open_duration_ms"},
		{"open duration over a day", func(c *BreakerConfig) { c.OpenDurationMS = MaxDurationMS + 1 }, "open_duration_ms"},
		{"probes zero", func(c *BreakerConfig) { c.HalfOpenMaxCalls = 0 }, "half_open_max_calls"},
		{"probes too many", func(c *BreakerConfig) { c.HalfOpenMaxCalls = MaxProbes + 1 }, "half_open_max_calls"},
		{"probe timeout zero", func(c *BreakerConfig) { c.ProbeTimeoutMS = 0 }, "probe_timeout_ms"},
		{"cache ttl zero", func(c *BreakerConfig) { c.CacheTTLMS = 0 }, "cache_ttl_ms"},
		{"cache ttl over a minute", func(c *BreakerConfig) { c.CacheTTLMS = MaxCacheTTLMS + 1 }, "cache_ttl_ms"},
		{"slow start at its max", func(c *BreakerConfig) { c.SlowStartMS = MaxSlowStartMS }, ""},
		{"slow start negative", func(c *BreakerConfig) { c.SlowStartMS = -1 }, "slow_start_ms"},
		{"slow start too long", func(c *BreakerConfig) { c.SlowStartMS = MaxSlowStartMS + 1 }, "slow_start_ms"},
		{"retry budget of every call", func(c *BreakerConfig) { c.RetryBudgetPercent = 100; c.RetryBudgetMinPerSecond = MaxRetryMinPerSecond }, ""},
		{"retry budget negative", func(c *BreakerConfig) { c.RetryBudgetPercent = -1 }, "retry_budget_percent"},
		{"retry budget over 100", func(c *BreakerConfig) { c.RetryBudgetPercent = 101 }, "retry_budget_percent"},
		{"retry minimum negative", func(c *BreakerConfig) { c.RetryBudgetMinPerSecond = -0.001 }, "retry_budget_min_per_second"},
		{"retry minimum too big", func(c *BreakerConfig) { c.RetryBudgetMinPerSecond = MaxRetryMinPerSecond + 1 }, "retry_budget_min_per_second"},
		{"retry minimum NaN", func(c *BreakerConfig) { c.RetryBudgetMinPerSecond = math.NaN() }, "retry_budget_min_per_second"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultBreakerConfig()
			tt.f(&c)
			err := c.Validate()
			var ve *FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.field != "" && !errors.As(err, &ve):
				t.Fatalf("Validate() = %v, want a FieldError on %s", err, tt.field)
			case tt.field != "" && ve.Field != tt.field:
				t.Fatalf("Validate() names %q, want %q", ve.Field, tt.field)
			}
		})
	}
}

func TestValidateOutcomes(t *testing.T) {
	ok := Outcome{Success: true, DurationMS: 10, Count: 1, Generation: NoGeneration}
	with := func(f func(*Outcome)) []Outcome { o := ok; f(&o); return []Outcome{ok, o} }
	tests := []struct {
		name  string
		outs  []Outcome
		field string
	}{
		{"fine", []Outcome{ok}, ""},
		{"empty", nil, "outcomes"},
		{"too many", make([]Outcome, MaxOutcomes+1), "outcomes"},
		{"negative duration", with(func(o *Outcome) { o.DurationMS = -1 }), "outcomes[1].duration_ms"},
		{"count zero", with(func(o *Outcome) { o.Count = 0 }), "outcomes[1].count"},
		{"count too big", with(func(o *Outcome) { o.Count = MaxOutcomeCount + 1 }), "outcomes[1].count"},
		{"permit with count", with(func(o *Outcome) { o.Permit = "3.1"; o.Count = 2 }), "outcomes[1].count"},
		{"permit too long", with(func(o *Outcome) { o.Permit = strings.Repeat("7", MaxPermitLen+1) }), "outcomes[1].permit"},
		{"permit of another issuer", with(func(o *Outcome) { o.Permit = "ag-0f3c" }), ""},
		{"permit fine", with(func(o *Outcome) { o.Permit = "3.1" }), ""},
		{"generation negative", with(func(o *Outcome) { o.Generation = -2 }), "outcomes[1].generation"},
		{"every call a retry", with(func(o *Outcome) { o.Count = 3; o.Retries = 3 }), ""},
		{"retries over count", with(func(o *Outcome) { o.Count = 3; o.Retries = 4 }), "outcomes[1].retries"},
		{"retries negative", with(func(o *Outcome) { o.Retries = -1 }), "outcomes[1].retries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateOutcomes(tt.outs)
			var ve *FieldError
			if tt.field == "" {
				if err != nil {
					t.Fatalf("ValidateOutcomes() = %v, want nil", err)
				}
				return
			}
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("ValidateOutcomes() = %v, want a FieldError on %s", err, tt.field)
			}
		})
	}
}

// TestRetryBudget: the budget is the percent of the window's calls plus
// the minimum per second over the window's seconds (10 for a count
// window), rounded down.
func TestRetryBudget(t *testing.T) {
	tests := []struct {
		name  string
		cfg   BreakerConfig
		calls int64
		want  int64
	}{
		{"off", BreakerConfig{Window: Window{Type: WindowTime, Size: 10}}, 1000, 0},
		{"percent", BreakerConfig{Window: Window{Type: WindowTime, Size: 10}, RetryBudgetPercent: 10}, 1005, 100},
		{"minimum over a time window", BreakerConfig{Window: Window{Type: WindowTime, Size: 60}, RetryBudgetMinPerSecond: 0.5}, 0, 30},
		{"minimum over a count window", BreakerConfig{Window: Window{Type: WindowCount, Size: 500}, RetryBudgetMinPerSecond: 0.25}, 0, 2},
		{"both", BreakerConfig{Window: Window{Type: WindowTime, Size: 60}, RetryBudgetPercent: 20, RetryBudgetMinPerSecond: 0.1}, 50, 16},
		{"minimum kept to a thousandth", BreakerConfig{Window: Window{Type: WindowTime, Size: 1000}, RetryBudgetMinPerSecond: 0.0014}, 0, 1},
	}
	for _, tt := range tests {
		if got := tt.cfg.RetryBudget(tt.calls); got != tt.want {
			t.Errorf("%s: RetryBudget(%d) = %d, want %d", tt.name, tt.calls, got, tt.want)
		}
	}
}
