package contract

import (
	"fmt"
	"time"
)

// Limits of a fault (a drill; see docs/drills.md).
const (
	MaxFaultTTL   = 24 * time.Hour
	MaxFaultDelay = 60 * time.Second
	// DefaultAbortStatus is the status of an aborted call when a fault
	// names none.
	DefaultAbortStatus = 503
)

// FaultSpec is what an operator sets on a dependency, the body of
// PUT /v1/faults/{name}: which calls to fault and how, why, and for how
// long.
type FaultSpec struct {
	// AbortPercent (0..100) of calls are answered AbortStatus without
	// reaching the dependency.
	AbortPercent float64 `json:"abort_percent"`
	// AbortStatus is a 4xx or 5xx status; DefaultAbortStatus when zero.
	AbortStatus int `json:"abort_status"`
	// DelayPercent (0..100) of calls wait DelayMS before they go out (or
	// are aborted).
	DelayPercent float64 `json:"delay_percent"`
	// DelayMS is the delay, 0..MaxFaultDelay in milliseconds; above zero
	// when DelayPercent is.
	DelayMS int64 `json:"delay_ms"`
	// Reason says why, 1..MaxReasonLen characters.
	Reason string `json:"reason"`
	// TTLMS ends the fault by itself after this many milliseconds
	// (1..MaxFaultTTL).
	TTLMS int64 `json:"ttl_ms"`
}

// Fault is an active fault as the API lists it.
type Fault struct {
	Name string `json:"name"`
	FaultSpec
	// By is the token name that set it.
	By string `json:"by"`
	// At is when it was set and ExpiresAt when it ends, by the store's
	// clock.
	At        time.Time `json:"at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Normalize fills in AbortStatus's default and validates s.
func (s *FaultSpec) Normalize() error {
	if s.AbortStatus == 0 {
		s.AbortStatus = DefaultAbortStatus
	}
	return s.Validate()
}

// Validate checks every field; the *FieldError names the first one at
// fault.
func (s FaultSpec) Validate() error {
	switch {
	case !(s.AbortPercent >= 0 && s.AbortPercent <= 100):
		return &FieldError{Field: "abort_percent", Reason: fmt.Sprintf("must be between 0 and 100, got %v", s.AbortPercent)}
	case s.AbortStatus < 400 || s.AbortStatus > 599:
		return &FieldError{Field: "abort_status", Reason: fmt.Sprintf("must be a 4xx or 5xx status, got %d", s.AbortStatus)}
	case !(s.DelayPercent >= 0 && s.DelayPercent <= 100):
		return &FieldError{Field: "delay_percent", Reason: fmt.Sprintf("must be between 0 and 100, got %v", s.DelayPercent)}
	case s.DelayMS < 0 || s.DelayMS > MaxFaultDelay.Milliseconds():
		return &FieldError{Field: "delay_ms", Reason: fmt.Sprintf("must be between 0 and %d, got %d", MaxFaultDelay.Milliseconds(), s.DelayMS)}
	case s.DelayPercent > 0 && s.DelayMS == 0:
		return &FieldError{Field: "delay_ms", Reason: "must be above 0 when delay_percent is"}
	case s.AbortPercent == 0 && s.DelayPercent == 0:
		return &FieldError{Field: "abort_percent", Reason: "a fault must abort or delay some calls: abort_percent or delay_percent above 0"}
	}
	if n := len([]rune(s.Reason)); n < 1 || n > MaxReasonLen {
		return &FieldError{Field: "reason", Reason: fmt.Sprintf("must be 1 to %d characters, got %d", MaxReasonLen, n)}
	}
	if s.TTLMS < 1 || s.TTLMS > MaxFaultTTL.Milliseconds() {
		return &FieldError{Field: "ttl_ms", Reason: fmt.Sprintf("must be between 1 and %d (24 h), got %d", MaxFaultTTL.Milliseconds(), s.TTLMS)}
	}
	return nil
}
