package client

import (
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// breakerConfig is a circuit breaker's policy as the control plane keeps
// it, the "config" object of the REST API's breaker: the contract's type,
// so that the SDK and the control plane read one definition.
//
// Where this package uses a breakerConfig for a local breaker (when the
// control plane cannot be reached), withDefaults fills it in: a field that
// is zero or less takes its default, except ConsecutiveFailures,
// SlowStartMS and the retry budget's fields, whose zero means off; a
// field above its maximum is cut to the maximum; a window type other than
// "count" means "time".
type breakerConfig = contract.BreakerConfig

// breakerWindow is the sliding window a breaker computes its failure and
// slow-call rates over.
type breakerWindow = contract.Window

// Window types of breakerWindow.Type.
const (
	windowTime  = contract.WindowTime
	windowCount = contract.WindowCount
)

// defaultBreakerConfig returns the config the control plane gives a breaker
// created with no fields.
func defaultBreakerConfig() breakerConfig { return contract.DefaultBreakerConfig() }

// withDefaults returns c with zero fields given their defaults and every
// field cut to its range, as the type's doc describes.
func withDefaults(c breakerConfig) breakerConfig {
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
	c.SlowStartMS = min(max(c.SlowStartMS, 0), contract.MaxSlowStartMS)
	c.RetryBudgetPercent = min(max(c.RetryBudgetPercent, 0), 100)
	if !(c.RetryBudgetMinPerSecond > 0) { // NaN too
		c.RetryBudgetMinPerSecond = 0
	}
	c.RetryBudgetMinPerSecond = min(c.RetryBudgetMinPerSecond, contract.MaxRetryMinPerSecond)
	return c
}

// ms converts milliseconds to a Duration.
func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
