// Package ratelimit is Breakwater's fleet-wide rate limit: a token bucket
// per limit and key, kept in the store. It owns the limit's config, the Lua
// scripts that are the bucket, and a Service that runs them. Every take is
// one atomic script run that reads the store's clock, so any number of
// control-plane replicas hand out tokens as one limiter would.
package ratelimit

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
)

// Config is a rate limit's policy: a token bucket that starts full, holds at
// most Capacity tokens and refills continuously at RefillPerSecond. Each
// distinct key of a take has its own bucket with this config.
//
// Neither field has a default: a limit for an unknown dependency has no
// sensible capacity, so both must be given, and the zero Config fails
// Validate.
type Config struct {
	// Capacity is the most tokens a bucket holds (1..MaxCapacity), and so
	// the largest burst and the most one take may ask for.
	Capacity int64 `json:"capacity"`
	// RefillPerSecond is how many tokens a bucket gains per second
	// (MinRefillPerSecond..MaxRefillPerSecond). The store keeps it to
	// RefillPrecision (a thousandth of a token per second), rounding to the
	// nearest; Service.Put returns the rate in force.
	RefillPerSecond float64 `json:"refill_per_second"`
}

// Limits of the config fields.
const (
	MaxCapacity        = 1_000_000_000
	MinRefillPerSecond = 0.001
	MaxRefillPerSecond = 1e9
	// RefillPrecision is the step the refill rate is kept to. The bucket
	// counts in millionths of a token and in milliseconds, so a rate is a
	// whole number of millionths of a token per millisecond.
	RefillPrecision = 0.001
	// MaxKeyLen is the longest key of a take, in bytes.
	MaxKeyLen = 256
)

// Validate checks a config and returns a *ValidationError naming the first
// field out of range, by its JSON name.
func (c Config) Validate() error {
	if c.Capacity < 1 || c.Capacity > MaxCapacity {
		return &ValidationError{Field: "capacity", Reason: fmt.Sprintf("must be between 1 and %d, got %d", MaxCapacity, c.Capacity)}
	}
	r := c.RefillPerSecond
	if math.IsNaN(r) || r < MinRefillPerSecond || r > MaxRefillPerSecond {
		return &ValidationError{Field: "refill_per_second", Reason: fmt.Sprintf("must be between %g and %g, got %s",
			MinRefillPerSecond, MaxRefillPerSecond, strconv.FormatFloat(r, 'g', -1, 64))}
	}
	return nil
}

// milliRate is the refill rate as the scripts count it: thousandths of a
// token per second, which is millionths of a token per millisecond. It
// rounds to the nearest; a valid config gives 1..1e12.
func (c Config) milliRate() int64 { return int64(math.Round(c.RefillPerSecond * 1000)) }

// fromStore rebuilds a config from the stored capacity and milli-rate.
func fromStore(capacity, milliRate int64) Config {
	return Config{Capacity: capacity, RefillPerSecond: float64(milliRate) / 1000}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidateName returns a *ValidationError when name cannot name a rate
// limit: names match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return &ValidationError{Field: "name", Reason: "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}
	}
	return nil
}
