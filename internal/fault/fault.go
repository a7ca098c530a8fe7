// Package fault keeps the faults operators inject for drills: for a
// dependency, the share of calls that clients (the SDK's Transport, the
// agent's proxy routes) abort with a status without sending them, and the
// share they delay first. A fault has a reason and an expiry, and lives in
// the store until it ends, so every control plane serves the same faults.
//
// The store never applies a fault: clients do. See docs/drills.md.
package fault

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Limits of a fault.
const (
	MaxTTL       = 24 * time.Hour
	MaxDelay     = 60 * time.Second
	MaxReasonLen = 500
	// DefaultAbortStatus is the status of an aborted call when a fault
	// names none.
	DefaultAbortStatus = 503
)

// Spec is what an operator sets: which calls to fault and how, why, and
// for how long.
type Spec struct {
	// AbortPercent (0..100) of calls are answered AbortStatus without
	// reaching the dependency.
	AbortPercent float64 `json:"abort_percent"`
	// AbortStatus is a 4xx or 5xx status; DefaultAbortStatus when zero.
	AbortStatus int `json:"abort_status"`
	// DelayPercent (0..100) of calls wait DelayMS before they go out (or
	// are aborted).
	DelayPercent float64 `json:"delay_percent"`
	// DelayMS is the delay, 0..MaxDelay in milliseconds; above zero when
	// DelayPercent is.
	DelayMS int64 `json:"delay_ms"`
	// Reason says why, 1..MaxReasonLen characters.
	Reason string `json:"reason"`
	// TTLMS ends the fault by itself after this many milliseconds
	// (1..MaxTTL).
	TTLMS int64 `json:"ttl_ms"`
}

// Fault is an active fault as the API lists it.
type Fault struct {
	Name string `json:"name"`
	Spec
	// By is the token name that set it.
	By string `json:"by"`
	// At is when it was set and ExpiresAt when it ends, by the store's
	// clock.
	At        time.Time `json:"at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ErrNotFound is returned for a fault that is not active.
var ErrNotFound = errors.New("fault not found")

// ValidationError is bad input: Field names the offending field as the API
// spells it.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// InvalidField names the field at fault.
func (e *ValidationError) InvalidField() string { return e.Field }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidateName returns a *ValidationError when name cannot name a
// dependency: names match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$, as breakers'.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return &ValidationError{Field: "name", Reason: "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}
	}
	return nil
}

// Normalize fills in AbortStatus's default and validates s.
func (s *Spec) Normalize() error {
	if s.AbortStatus == 0 {
		s.AbortStatus = DefaultAbortStatus
	}
	return s.Validate()
}

// Validate checks every field; the error names the first one at fault.
func (s Spec) Validate() error {
	switch {
	case !(s.AbortPercent >= 0 && s.AbortPercent <= 100):
		return &ValidationError{Field: "abort_percent", Reason: fmt.Sprintf("must be between 0 and 100, got %v", s.AbortPercent)}
	case s.AbortStatus < 400 || s.AbortStatus > 599:
		return &ValidationError{Field: "abort_status", Reason: fmt.Sprintf("must be a 4xx or 5xx status, got %d", s.AbortStatus)}
	case !(s.DelayPercent >= 0 && s.DelayPercent <= 100):
		return &ValidationError{Field: "delay_percent", Reason: fmt.Sprintf("must be between 0 and 100, got %v", s.DelayPercent)}
	case s.DelayMS < 0 || s.DelayMS > MaxDelay.Milliseconds():
		return &ValidationError{Field: "delay_ms", Reason: fmt.Sprintf("must be between 0 and %d, got %d", MaxDelay.Milliseconds(), s.DelayMS)}
	case s.DelayPercent > 0 && s.DelayMS == 0:
		return &ValidationError{Field: "delay_ms", Reason: "must be above 0 when delay_percent is"}
	case s.AbortPercent == 0 && s.DelayPercent == 0:
		return &ValidationError{Field: "abort_percent", Reason: "a fault must abort or delay some calls: abort_percent or delay_percent above 0"}
	}
	if n := len([]rune(s.Reason)); n < 1 || n > MaxReasonLen {
		return &ValidationError{Field: "reason", Reason: fmt.Sprintf("must be 1 to %d characters, got %d", MaxReasonLen, n)}
	}
	if s.TTLMS < 1 || s.TTLMS > MaxTTL.Milliseconds() {
		return &ValidationError{Field: "ttl_ms", Reason: fmt.Sprintf("must be between 1 and %d (24 h), got %d", MaxTTL.Milliseconds(), s.TTLMS)}
	}
	return nil
}
