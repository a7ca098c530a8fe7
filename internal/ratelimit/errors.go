package ratelimit

import "errors"

// ErrNotFound is returned for a rate limit that does not exist.
var ErrNotFound = errors.New("rate limit not found")

// ValidationError is bad input: Field names the offending field as the API
// spells it ("capacity", "refill_per_second", "tokens", "key", "name").
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// InvalidField names the field at fault.
func (e *ValidationError) InvalidField() string { return e.Field }
