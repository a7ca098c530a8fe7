// Package fault keeps the faults operators inject for drills: for a
// dependency, the share of calls that clients (the SDK's Transport, the
// agent's proxy routes) abort with a status without sending them, and the
// share they delay first. A fault has a reason and an expiry, and lives in
// the store until it ends, so every control plane serves the same faults.
//
// The store never applies a fault: clients do. See docs/drills.md.
package fault

import (
	"fmt"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// Limits of a fault.
const (
	MaxTTL       = contract.MaxFaultTTL
	MaxDelay     = contract.MaxFaultDelay
	MaxReasonLen = contract.MaxReasonLen
	// DefaultAbortStatus is the status of an aborted call when a fault
	// names none.
	DefaultAbortStatus = contract.DefaultAbortStatus
)

// The wire types of faults, named here for this package's callers.
type (
	// Spec is what an operator sets: which calls to fault and how, why,
	// and for how long.
	Spec = contract.FaultSpec
	// Fault is an active fault as the API lists it.
	Fault = contract.Fault
	// ValidationError is bad input: Field names the offending field as the
	// API spells it.
	ValidationError = contract.FieldError
)

// ErrNotFound is returned for a fault that is not active. It matches
// contract.ErrNotFound.
var ErrNotFound = fmt.Errorf("fault %w", contract.ErrNotFound)

// ValidateName returns a *ValidationError when name cannot name a
// dependency: names are breakers' (contract.NamePattern).
func ValidateName(name string) error { return contract.ValidateName("name", name) }
