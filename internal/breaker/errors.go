package breaker

import (
	"fmt"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// ErrNotFound is returned for a breaker that does not exist. It matches
// contract.ErrNotFound.
var ErrNotFound = fmt.Errorf("breaker %w", contract.ErrNotFound)

// ValidationError is bad input: Field names the offending field as the
// API spells it (a JSON path such as "window.size" or "outcomes[3].count").
type ValidationError = contract.FieldError
