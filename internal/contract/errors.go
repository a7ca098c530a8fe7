package contract

import "errors"

// FieldError is bad input: Field names the offending field as the API
// spells it (a JSON path such as "window.size" or "outcomes[3].count", a
// query parameter, or a header), Reason says what is wrong with it. The
// API answers it with 400 and a problem document naming the field.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// InvalidField names the field at fault.
func (e *FieldError) InvalidField() string { return e.Field }

// Error kinds the API answers with besides bad input. Errors of the other
// packages wrap or are one of these, and the HTTP layer maps each to its
// status in one place.
var (
	// ErrNotFound is an unknown breaker, rate limit or route (404).
	ErrNotFound = errors.New("not found")
	// ErrUnavailable is a store that cannot be reached or does not answer
	// in time (503).
	ErrUnavailable = errors.New("store unavailable")
	// ErrKeyReused is an Idempotency-Key sent again with another request
	// (422).
	ErrKeyReused = errors.New("idempotency key reused with a different request")
	// ErrMaybeApplied is a call whose reply was lost after it was sent: it
	// may or may not have been applied.
	ErrMaybeApplied = errors.New("outcome unknown: the call may have been applied")
)
