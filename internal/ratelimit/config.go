// Package ratelimit is Breakwater's fleet-wide rate limit: a token bucket
// per limit and key, kept in the store. It owns the Lua scripts that are
// the bucket and a Service that runs them. Every take is one atomic script
// run that reads the store's clock, so any number of control-plane replicas
// hand out tokens as one limiter would.
//
// The limit's config, its view and the take's request and result are wire
// types shared with the SDK and the agent: they are defined in
// internal/contract, and named here too for this package's callers.
package ratelimit

import (
	"math"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// Config is a rate limit's policy (contract.RateLimitConfig): a token
// bucket that starts full, holds at most Capacity tokens and refills
// continuously at RefillPerSecond. Neither field has a default, and the
// zero Config fails Validate.
type Config = contract.RateLimitConfig

// Limits of the config fields.
const (
	MaxCapacity        = contract.MaxCapacity
	MinRefillPerSecond = contract.MinRefillPerSecond
	MaxRefillPerSecond = contract.MaxRefillPerSecond
	// RefillPrecision is the step the refill rate is kept to. The bucket
	// counts in millionths of a token and in milliseconds, so a rate is a
	// whole number of millionths of a token per millisecond.
	RefillPrecision = contract.RefillPrecision
	// MaxKeyLen is the longest key of a take, in bytes.
	MaxKeyLen = contract.MaxKeyBytes
)

// milliRate is the refill rate as the scripts count it: thousandths of a
// token per second, which is millionths of a token per millisecond. It
// rounds to the nearest; a valid config gives 1..1e12.
func milliRate(c Config) int64 { return int64(math.Round(c.RefillPerSecond * 1000)) }

// fromStore rebuilds a config from the stored capacity and milli-rate.
func fromStore(capacity, milliRate int64) Config {
	return Config{Capacity: capacity, RefillPerSecond: float64(milliRate) / 1000}
}

// ValidateName returns a *ValidationError when name cannot name a rate
// limit (see contract.NamePattern).
func ValidateName(name string) error { return contract.ValidateName("name", name) }
