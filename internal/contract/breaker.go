package contract

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Breaker states as the API names them.
const (
	StateClosed       = "closed"
	StateOpen         = "open"
	StateHalfOpen     = "half_open"
	StateForcedOpen   = "forced_open"
	StateForcedClosed = "forced_closed"
)

// States is every breaker state, in the order metrics list them.
var States = []string{StateClosed, StateOpen, StateHalfOpen, StateForcedOpen, StateForcedClosed}

// Window types.
const (
	WindowTime  = "time"  // the last Size seconds, bucketed per second
	WindowCount = "count" // the last Size calls
)

// Window is the sliding window a breaker's failure and slow-call rates are
// computed over.
type Window struct {
	// Type is WindowTime (default) or WindowCount.
	Type string `json:"type"`
	// Size is seconds (1..MaxTimeWindow) for a time window, calls
	// (1..MaxCountWindow) for a count window. Default 10.
	Size int64 `json:"size"`
}

// BreakerConfig is a breaker's policy, the "config" object of the API's
// breaker. DefaultBreakerConfig gives every field its default; Validate
// checks the ranges. Durations are in milliseconds, rates are percentages.
type BreakerConfig struct {
	Window Window `json:"window"`
	// MinimumCalls is how many calls must be in the window before a rate
	// can trip the breaker. Default 20.
	MinimumCalls int64 `json:"minimum_calls"`
	// FailureRateThreshold is the percentage (1..100) of failures at or
	// above which the breaker opens. Default 50.
	FailureRateThreshold int64 `json:"failure_rate_threshold"`
	// SlowCallDurationMS is the duration at or above which a call is slow.
	// Default 60000.
	SlowCallDurationMS int64 `json:"slow_call_duration_ms"`
	// SlowCallRateThreshold is the percentage (1..100) of slow calls at or
	// above which the breaker opens. Default 100.
	SlowCallRateThreshold int64 `json:"slow_call_rate_threshold"`
	// ConsecutiveFailures, when above zero, opens the breaker after this
	// many failures in a row, whatever the window says. Default 0 (off).
	ConsecutiveFailures int64 `json:"consecutive_failures"`
	// OpenDurationMS is how long the breaker stays open before probes are
	// let through. Default 30000.
	OpenDurationMS int64 `json:"open_duration_ms"`
	// HalfOpenMaxCalls is how many probes may be out at once, fleet-wide,
	// in half-open; that many successes close the breaker. Default 1.
	HalfOpenMaxCalls int64 `json:"half_open_max_calls"`
	// ProbeTimeoutMS is how long a probe permit is held before it is given
	// back if never reported. Default 10000.
	ProbeTimeoutMS int64 `json:"probe_timeout_ms"`
	// CacheTTLMS is how long a client may reuse a "closed" answer without
	// asking again (1..MaxCacheTTLMS). Default 1000.
	CacheTTLMS int64 `json:"cache_ttl_ms"`
	// SlowStartMS is how long, after half-open closes the breaker, the
	// share of calls let through ramps up to 100% (0..MaxSlowStartMS); see
	// Decision.AdmitPercent. Default 0 (off).
	SlowStartMS int64 `json:"slow_start_ms"`
	// RetryBudgetPercent caps the fleet's retries to the dependency at
	// this percentage (0..100) of its calls in the window, plus
	// RetryBudgetMinPerSecond. Default 0.
	RetryBudgetPercent int64 `json:"retry_budget_percent"`
	// RetryBudgetMinPerSecond is the retries per second (0..MaxRetryMinPerSecond,
	// kept to RetryMinPrecision) allowed whatever the calls, times the
	// window's seconds (10 for a count window). Default 0. With both retry
	// fields 0 there is no retry budget.
	RetryBudgetMinPerSecond float64 `json:"retry_budget_min_per_second"`
}

// HasRetryBudget reports whether retries to the dependency are budgeted.
func (c BreakerConfig) HasRetryBudget() bool {
	return c.RetryBudgetPercent > 0 || c.RetryBudgetMinPerSecond > 0
}

// RetryMinMilli is RetryBudgetMinPerSecond in thousandths of a retry per
// second, rounded to the nearest: how the store keeps it.
func (c BreakerConfig) RetryMinMilli() int64 {
	return int64(math.Round(c.RetryBudgetMinPerSecond * 1000))
}

// RetryBudget is the most retries the window of a breaker with config c
// may hold when it holds calls calls: RetryBudgetPercent of them plus
// RetryBudgetMinPerSecond times the window's seconds (10 for a count
// window), rounded down. The scripts compute the same.
func (c BreakerConfig) RetryBudget(calls int64) int64 {
	secs := int64(RetryBudgetCountWindowSeconds)
	if c.Window.Type != WindowCount {
		secs = c.Window.Size
	}
	return (c.RetryBudgetPercent*calls*10 + c.RetryMinMilli()*secs) / 1000
}

// DefaultBreakerConfig returns the config of a breaker created with no
// fields. Decode a request over it so that missing fields keep their
// defaults and fields set to zero are checked like any other value.
func DefaultBreakerConfig() BreakerConfig {
	return BreakerConfig{
		Window:                Window{Type: WindowTime, Size: 10},
		MinimumCalls:          20,
		FailureRateThreshold:  50,
		SlowCallDurationMS:    60000,
		SlowCallRateThreshold: 100,
		OpenDurationMS:        30000,
		HalfOpenMaxCalls:      1,
		ProbeTimeoutMS:        10000,
		CacheTTLMS:            1000,
	}
}

// MaxWindowSize is the largest Size of a window of type t: MaxCountWindow
// for WindowCount, MaxTimeWindow otherwise.
func MaxWindowSize(t string) int64 {
	if t == WindowCount {
		return MaxCountWindow
	}
	return MaxTimeWindow
}

// Validate checks a config and returns a *FieldError naming the first
// field out of range.
func (c BreakerConfig) Validate() error {
	switch c.Window.Type {
	case WindowTime, WindowCount:
		if err := inRange("window.size", c.Window.Size, 1, MaxWindowSize(c.Window.Type)); err != nil {
			return err
		}
	default:
		return &FieldError{Field: "window.type", Reason: fmt.Sprintf("must be %q or %q", WindowTime, WindowCount)}
	}
	checks := []struct {
		field    string
		v        int64
		min, max int64
	}{
		{"minimum_calls", c.MinimumCalls, 1, MaxMinimumCalls},
		{"failure_rate_threshold", c.FailureRateThreshold, 1, 100},
		{"slow_call_duration_ms", c.SlowCallDurationMS, 1, MaxDurationMS},
		{"slow_call_rate_threshold", c.SlowCallRateThreshold, 1, 100},
		{"consecutive_failures", c.ConsecutiveFailures, 0, MaxMinimumCalls},
		{"open_duration_ms", c.OpenDurationMS, 1, MaxDurationMS},
		{"half_open_max_calls", c.HalfOpenMaxCalls, 1, MaxProbes},
		{"probe_timeout_ms", c.ProbeTimeoutMS, 1, MaxDurationMS},
		{"cache_ttl_ms", c.CacheTTLMS, 1, MaxCacheTTLMS},
		{"slow_start_ms", c.SlowStartMS, 0, MaxSlowStartMS},
		{"retry_budget_percent", c.RetryBudgetPercent, 0, 100},
	}
	for _, ch := range checks {
		if err := inRange(ch.field, ch.v, ch.min, ch.max); err != nil {
			return err
		}
	}
	if m := c.RetryBudgetMinPerSecond; !(m >= 0 && m <= MaxRetryMinPerSecond) { // NaN too
		return &FieldError{Field: "retry_budget_min_per_second", Reason: "must be between 0 and " + itoa(int64(MaxRetryMinPerSecond)) + ", got " + strconv.FormatFloat(m, 'g', -1, 64)}
	}
	// A count window never holds more than Size calls, so a rate could
	// never be judged: the breaker would trip on consecutive_failures only.
	if c.Window.Type == WindowCount && c.MinimumCalls > c.Window.Size {
		return &FieldError{Field: "minimum_calls", Reason: fmt.Sprintf("must be at most window.size (%d) for a count window, got %d", c.Window.Size, c.MinimumCalls)}
	}
	return nil
}

// Breaker is a breaker as GET /v1/breakers/{name} shows it.
type Breaker struct {
	Name   string        `json:"name"`
	Config BreakerConfig `json:"config"`
	// State is the effective state: an override's, when there is one.
	State string    `json:"state"`
	Since time.Time `json:"since"`
	// OpenUntil is set only while open.
	OpenUntil *time.Time `json:"open_until,omitempty"`
	// Override is set only while forced.
	Override *Override `json:"override,omitempty"`
	Stats    Stats     `json:"stats"`
	// Generation moves at every transition; see Decision.
	Generation int64 `json:"generation"`
	// ConfigVersion is 1 when the breaker is first created and moves by
	// one at every write that changes its config; it never goes back, not
	// even across delete and re-create. GET and PUT send it as the ETag.
	ConfigVersion int64 `json:"config_version"`
	// AdmitPercent is the share of calls clients let through now (1..100):
	// below 100 only during a slow start. See Decision.AdmitPercent.
	AdmitPercent int64 `json:"admit_percent"`
	// SlowStartUntil is set only during a slow start: when the share
	// reaches 100%.
	SlowStartUntil *time.Time `json:"slow_start_until,omitempty"`
	// Transitions counts every state change since the breaker was created,
	// fleet-wide, by "from", "to" pair. The control plane's metrics read
	// it; it is not sent.
	Transitions []Transition `json:"-"`
}

// Transition is how many times a breaker went From -> To.
type Transition struct {
	From, To string
	Count    int64
}

// Override is an operator's forced state.
type Override struct {
	State     string     `json:"state"`
	Reason    string     `json:"reason"`
	By        string     `json:"by"`
	At        time.Time  `json:"at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Stats are the calls in a breaker's window now.
type Stats struct {
	Calls        int64   `json:"calls"`
	Failures     int64   `json:"failures"`
	SlowCalls    int64   `json:"slow_calls"`
	FailureRate  float64 `json:"failure_rate"`
	SlowCallRate float64 `json:"slow_call_rate"`
	// Retries counts the calls in the window that were retries.
	Retries int64 `json:"retries"`
}

// Decision answers acquire and outcomes.
type Decision struct {
	// Allowed says whether a call may go out now.
	Allowed bool   `json:"allowed"`
	State   string `json:"state"`
	// Permit is set when a half-open probe was granted; report it back.
	Permit string `json:"permit,omitempty"`
	// RetryAfterMS is how long until a call may be allowed, when denied.
	RetryAfterMS int64 `json:"retry_after_ms"`
	// CacheTTLMS is how long a client may reuse this answer.
	CacheTTLMS int64 `json:"cache_ttl_ms"`
	// Generation identifies the state this answer was given in. Outcomes
	// reported with another generation are ignored.
	Generation int64 `json:"generation"`
	// Ignored counts the reported calls that were not applied (outcomes only).
	Ignored int64 `json:"ignored,omitempty"`
	// AdmitPercent is the share of its calls (1..100) a client lets
	// through, refusing the rest locally as if the breaker were open:
	// below 100 only while a slow start ramps. A refused call is not an
	// outcome. Zero from a control plane that does not say, meaning 100.
	AdmitPercent int64 `json:"admit_percent"`
	// RetryAllowance, in answers to reports of a breaker with a retry
	// budget, is how many retries the reporting client may make until its
	// next report (or for cache_ttl_ms, whichever ends first). Nil
	// otherwise: no budget, or not a report.
	RetryAllowance *int64 `json:"retry_allowance,omitempty"`
}

// OverrideRequest is the body of PUT /v1/breakers/{name}/override.
type OverrideRequest struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
	// TTLMS, when set, ends the override by itself after this many
	// milliseconds (1..MaxOverrideTTL); absent, it lasts until removed.
	TTLMS *int64 `json:"ttl_ms,omitempty"`
}

// ForceRequest is an operator override as the control plane applies it.
type ForceRequest struct {
	State  string
	Reason string
	By     string
	// TTLMS ends the override by itself after this many milliseconds;
	// zero never does.
	TTLMS int64
}

// Force reads an override request made by who into a ForceRequest and
// validates it.
func (r OverrideRequest) Force(by string) (ForceRequest, error) {
	f := ForceRequest{State: r.State, Reason: r.Reason, By: by}
	if r.TTLMS != nil {
		if *r.TTLMS < 1 {
			return ForceRequest{}, &FieldError{Field: "ttl_ms", Reason: "must be at least 1 (leave it out for no expiry)"}
		}
		f.TTLMS = *r.TTLMS
	}
	return f, f.Validate()
}

// Validate checks an override.
func (r ForceRequest) Validate() error {
	if r.State != StateForcedOpen && r.State != StateForcedClosed {
		return &FieldError{Field: "state", Reason: fmt.Sprintf("must be %q or %q", StateForcedOpen, StateForcedClosed)}
	}
	if n := len([]rune(r.Reason)); n < 1 || n > MaxReasonLen {
		return &FieldError{Field: "reason", Reason: fmt.Sprintf("must be 1 to %d characters, got %d", MaxReasonLen, n)}
	}
	if r.TTLMS < 0 || r.TTLMS > MaxOverrideTTL.Milliseconds() {
		return &FieldError{Field: "ttl_ms", Reason: fmt.Sprintf("must be between 1 and %d", MaxOverrideTTL.Milliseconds())}
	}
	return nil
}
