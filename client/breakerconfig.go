package client

import (
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// breakerWindow is the sliding window a breaker computes its failure and
// slow-call rates over. Its JSON form is the "window" object of the REST
// API's breaker config.
type breakerWindow struct {
	// Type is "time" (the last Size seconds, bucketed per second) or
	// "count" (the last Size calls). Default "time".
	Type string `json:"type"`
	// Size is seconds (1..3600) for a time window, calls (1..10000) for a
	// count window. Default 10.
	Size int64 `json:"size"`
}

// breakerConfig is a circuit breaker's policy, as the control plane keeps
// it: its JSON form is the "config" object of the REST API's breaker, field
// for field. Durations are integers in milliseconds, rates are percentages.
//
// defaultBreakerConfig returns the control plane's defaults. Where this
// package uses a breakerConfig for a local breaker (when the control plane
// cannot be reached), a field that is zero or less takes its default,
// except ConsecutiveFailures, whose zero means off; a field above its
// maximum is cut to the maximum; a window type other than "count" means
// "time".
type breakerConfig struct {
	// Window is the window the rates are computed over.
	Window breakerWindow `json:"window"`
	// MinimumCalls is how many calls must be in the window before a rate
	// can open the breaker. Default 20.
	MinimumCalls int64 `json:"minimum_calls"`
	// FailureRateThreshold is the percentage (1..100) of failed calls in
	// the window at or above which the breaker opens. Default 50.
	FailureRateThreshold int64 `json:"failure_rate_threshold"`
	// SlowCallDurationMS is the duration at or above which a call is slow,
	// in milliseconds. Default 60000.
	SlowCallDurationMS int64 `json:"slow_call_duration_ms"`
	// SlowCallRateThreshold is the percentage (1..100) of slow calls in the
	// window at or above which the breaker opens. Default 100.
	SlowCallRateThreshold int64 `json:"slow_call_rate_threshold"`
	// ConsecutiveFailures, when above zero, opens the breaker after this
	// many failures in a row, whatever the window says. Default 0 (off).
	ConsecutiveFailures int64 `json:"consecutive_failures"`
	// OpenDurationMS is how long the breaker stays open before probes are
	// let through, in milliseconds. Default 30000.
	OpenDurationMS int64 `json:"open_duration_ms"`
	// HalfOpenMaxCalls is how many probes may be out at once in half-open
	// (fleet-wide, for the control plane's breaker); that many successes
	// close the breaker, one failure or slow probe opens it again.
	// Default 1.
	HalfOpenMaxCalls int64 `json:"half_open_max_calls"`
	// ProbeTimeoutMS is how long a probe permit is held before it is given
	// back if never reported, in milliseconds. Default 10000.
	ProbeTimeoutMS int64 `json:"probe_timeout_ms"`
	// CacheTTLMS is how long a client may reuse a "closed" answer without
	// asking again, in milliseconds (1..60000). Default 1000.
	CacheTTLMS int64 `json:"cache_ttl_ms"`
}

// Window types of breakerWindow.Type.
const (
	windowTime  = contract.WindowTime
	windowCount = contract.WindowCount
)

// defaultBreakerConfig returns the config the control plane gives a breaker
// created with no fields.
func defaultBreakerConfig() breakerConfig {
	return breakerConfig{
		Window:                breakerWindow{Type: windowTime, Size: 10},
		MinimumCalls:          20,
		FailureRateThreshold:  50,
		SlowCallDurationMS:    60000,
		SlowCallRateThreshold: 100,
		ConsecutiveFailures:   0,
		OpenDurationMS:        30000,
		HalfOpenMaxCalls:      1,
		ProbeTimeoutMS:        10000,
		CacheTTLMS:            1000,
	}
}

// withDefaults returns c with zero fields given their defaults and every
// field cut to its range, as the type's doc describes.
func (c breakerConfig) withDefaults() breakerConfig {
	d := defaultBreakerConfig()
	if c.Window.Type != windowCount {
		c.Window.Type = windowTime
	}
	maxSize := contract.MaxWindowSize(c.Window.Type)
	orDefault := func(v *int64, def, hi int64) {
		if *v <= 0 {
			*v = def
		}
		*v = min(*v, hi)
	}
	const huge = 1 << 62
	orDefault(&c.Window.Size, d.Window.Size, maxSize)
	orDefault(&c.MinimumCalls, d.MinimumCalls, huge)
	orDefault(&c.FailureRateThreshold, d.FailureRateThreshold, 100)
	orDefault(&c.SlowCallDurationMS, d.SlowCallDurationMS, huge/int64(time.Millisecond))
	orDefault(&c.SlowCallRateThreshold, d.SlowCallRateThreshold, 100)
	orDefault(&c.OpenDurationMS, d.OpenDurationMS, huge/int64(time.Millisecond))
	orDefault(&c.HalfOpenMaxCalls, d.HalfOpenMaxCalls, contract.MaxProbes)
	orDefault(&c.ProbeTimeoutMS, d.ProbeTimeoutMS, huge/int64(time.Millisecond))
	orDefault(&c.CacheTTLMS, d.CacheTTLMS, contract.MaxCacheTTLMS)
	c.ConsecutiveFailures = max(c.ConsecutiveFailures, 0)
	return c
}

// ms converts milliseconds to a Duration.
func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
