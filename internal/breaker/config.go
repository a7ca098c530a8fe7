// Package breaker is Breakwater's fleet-wide circuit breaker: its config,
// the Lua scripts that are its state machine, and a Service that runs them
// in the store. Every decision is one atomic script run that reads the
// store's clock, so any number of control-plane replicas act as one.
package breaker

import (
	"fmt"
	"regexp"
)

// Window types.
const (
	WindowTime  = "time"  // the last Size seconds, bucketed per second
	WindowCount = "count" // the last Size calls
)

// Window is the sliding window the failure and slow-call rates are
// computed over.
type Window struct {
	// Type is WindowTime (default) or WindowCount.
	Type string `json:"type"`
	// Size is seconds (1..3600) for a time window, calls (1..10000) for a
	// count window. Default 10.
	Size int64 `json:"size"`
}

// Config is a breaker's policy. DefaultConfig gives every field its
// default; Validate checks the ranges.
type Config struct {
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
	// asking again (1..60000). Default 1000.
	CacheTTLMS int64 `json:"cache_ttl_ms"`
}

// Limits of the config fields.
const (
	MaxTimeWindow  = 3600
	MaxCountWindow = 10000
	maxDurationMS  = 24 * 60 * 60 * 1000 // a day
	MaxCacheTTLMS  = 60000
	MaxMinimumCall = 1_000_000
	MaxProbes      = 1000
)

// DefaultConfig returns the config of a breaker created with no fields.
// Decode a request over it so that missing fields keep their defaults and
// fields set to zero are checked like any other value.
func DefaultConfig() Config {
	return Config{
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

// Validate checks a config and returns a *ValidationError naming
// the first field out of range.
func (c Config) Validate() error {
	switch c.Window.Type {
	case WindowTime:
		if err := inRange("window.size", c.Window.Size, 1, MaxTimeWindow); err != nil {
			return err
		}
	case WindowCount:
		if err := inRange("window.size", c.Window.Size, 1, MaxCountWindow); err != nil {
			return err
		}
	default:
		return &ValidationError{Field: "window.type", Reason: fmt.Sprintf("must be %q or %q", WindowTime, WindowCount)}
	}
	checks := []struct {
		field    string
		v        int64
		min, max int64
	}{
		{"minimum_calls", c.MinimumCalls, 1, MaxMinimumCall},
		{"failure_rate_threshold", c.FailureRateThreshold, 1, 100},
		{"slow_call_duration_ms", c.SlowCallDurationMS, 1, maxDurationMS},
		{"slow_call_rate_threshold", c.SlowCallRateThreshold, 1, 100},
		{"consecutive_failures", c.ConsecutiveFailures, 0, MaxMinimumCall},
		{"open_duration_ms", c.OpenDurationMS, 1, maxDurationMS},
		{"half_open_max_calls", c.HalfOpenMaxCalls, 1, MaxProbes},
		{"probe_timeout_ms", c.ProbeTimeoutMS, 1, maxDurationMS},
		{"cache_ttl_ms", c.CacheTTLMS, 1, MaxCacheTTLMS},
	}
	for _, ch := range checks {
		if err := inRange(ch.field, ch.v, ch.min, ch.max); err != nil {
			return err
		}
	}
	// A count window never holds more than Size calls, so a rate could
	// never be judged: the breaker would trip on consecutive_failures only.
	if c.Window.Type == WindowCount && c.MinimumCalls > c.Window.Size {
		return &ValidationError{Field: "minimum_calls", Reason: fmt.Sprintf("must be at most window.size (%d) for a count window, got %d", c.Window.Size, c.MinimumCalls)}
	}
	return nil
}

func inRange(field string, v, lo, hi int64) error {
	if v < lo || v > hi {
		return &ValidationError{Field: field, Reason: fmt.Sprintf("must be between %d and %d, got %d", lo, hi, v)}
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidName reports whether name can name a breaker or a rate limit.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// ValidateName returns a *ValidationError for a bad name.
func ValidateName(name string) error {
	if !ValidName(name) {
		return &ValidationError{Field: "name", Reason: "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}
	}
	return nil
}
