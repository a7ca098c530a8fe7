// Package breaker is Breakwater's fleet-wide circuit breaker: the Lua
// scripts that are its state machine, and a Service that runs them in the
// store. Every decision is one atomic script run that reads the store's
// clock, so any number of control-plane replicas act as one.
//
// The breaker's config, its view and its decisions are wire types shared
// with the SDK and the agent: they are defined in internal/contract, and
// named here too for this package's callers.
package breaker

import "github.com/breakwater-dev/breakwater/internal/contract"

// Window types.
const (
	WindowTime  = contract.WindowTime
	WindowCount = contract.WindowCount
)

// Window is the sliding window the failure and slow-call rates are
// computed over (contract.Window).
type Window = contract.Window

// Config is a breaker's policy (contract.BreakerConfig). DefaultConfig
// gives every field its default; Validate checks the ranges.
type Config = contract.BreakerConfig

// Limits of the config fields.
const (
	MaxTimeWindow  = contract.MaxTimeWindow
	MaxCountWindow = contract.MaxCountWindow
	MaxCacheTTLMS  = contract.MaxCacheTTLMS
	MaxMinimumCall = contract.MaxMinimumCalls
	MaxProbes      = contract.MaxProbes
	MaxSlowStartMS = contract.MaxSlowStartMS
)

// DefaultConfig returns the config of a breaker created with no fields.
// Decode a request over it so that missing fields keep their defaults and
// fields set to zero are checked like any other value.
func DefaultConfig() Config { return contract.DefaultBreakerConfig() }

// ValidName reports whether name can name a breaker or a rate limit.
func ValidName(name string) bool { return contract.ValidName(name) }

// ValidateName returns a *ValidationError for a bad name.
func ValidateName(name string) error { return contract.ValidateName("name", name) }
