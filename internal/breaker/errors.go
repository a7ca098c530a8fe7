package breaker

import "errors"

// ErrNotFound is returned for a breaker that does not exist.
var ErrNotFound = errors.New("breaker not found")

// ValidationError is bad input: Field names the offending field as the
// API spells it (a JSON path such as "window.size" or "outcomes[3].count").
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// InvalidField names the field at fault.
func (e *ValidationError) InvalidField() string { return e.Field }
