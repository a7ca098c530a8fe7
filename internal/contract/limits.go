package contract

import (
	"strconv"
	"time"
)

// Limits of breaker configs. A time window is 1..MaxTimeWindow seconds, a
// count window 1..MaxCountWindow calls.
const (
	MaxTimeWindow   = 3600
	MaxCountWindow  = 10000
	MaxDurationMS   = 24 * 60 * 60 * 1000 // a day: durations and timeouts
	MaxCacheTTLMS   = 60000
	MaxMinimumCalls = 1_000_000
	MaxProbes       = 1000
	// MaxSlowStartMS is the longest slow start, in milliseconds.
	MaxSlowStartMS = 600000
	// MaxRetryMinPerSecond is the largest retry_budget_min_per_second.
	MaxRetryMinPerSecond = 1e6
	// RetryBudgetCountWindowSeconds is the seconds a count window's retry
	// budget counts retry_budget_min_per_second over.
	RetryBudgetCountWindowSeconds = 10
)

// Limits of outcome reports.
const (
	// MaxOutcomes is the most entries in one report.
	MaxOutcomes = 1000
	// MaxOutcomeCount is the most calls one entry may stand for.
	MaxOutcomeCount = 1_000_000
	// MaxBatchReports is the most reports in one batch (POST /v1/outcomes).
	MaxBatchReports = 1000
	// MaxPermitLen is the longest permit, in bytes.
	MaxPermitLen = 64
)

// Limits of operator overrides.
const (
	// MaxReasonLen is the longest reason, in characters.
	MaxReasonLen = 500
	// MaxOverrideTTL is the longest an override may be set to last.
	MaxOverrideTTL = 30 * 24 * time.Hour
)

// Limits of rate limits and takes.
const (
	// MaxCapacity is the largest capacity of a rate limit, and so the most
	// tokens one take may ask for.
	MaxCapacity = 1_000_000_000
	// MinRefillPerSecond and MaxRefillPerSecond bound a limit's refill rate.
	MinRefillPerSecond = 0.001
	MaxRefillPerSecond = 1e9
	// RefillPrecision is the step the refill rate is kept to: a thousandth
	// of a token per second.
	RefillPrecision = 0.001
	// MaxKeyBytes is the longest key of a take, in bytes.
	MaxKeyBytes = 256
)

// Limits of requests.
const (
	// MaxIdempotencyKeyLen is the longest Idempotency-Key, in characters.
	MaxIdempotencyKeyLen = 128
	// IdempotencyTTL is how long the control plane remembers an
	// Idempotency-Key and its first answer.
	IdempotencyTTL = 10 * time.Minute
	// MaxAuditLimit is the most entries one GET /v1/audit returns, and
	// DefaultAuditLimit how many it returns when not told.
	MaxAuditLimit     = 1000
	DefaultAuditLimit = 100
)

func itoa[T ~int | ~int64](n T) string { return strconv.FormatInt(int64(n), 10) }

// inRange returns a *FieldError naming field unless lo <= v <= hi.
func inRange(field string, v, lo, hi int64) error {
	if v < lo || v > hi {
		return &FieldError{Field: field, Reason: "must be between " + itoa(lo) + " and " + itoa(hi) + ", got " + itoa(v)}
	}
	return nil
}
