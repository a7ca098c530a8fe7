package ratelimit

import (
	"fmt"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// ErrNotFound is returned for a rate limit that does not exist. It matches
// contract.ErrNotFound.
var ErrNotFound = fmt.Errorf("rate limit %w", contract.ErrNotFound)

// ValidationError is bad input: Field names the offending field as the API
// spells it ("capacity", "refill_per_second", "tokens", "key", "name").
type ValidationError = contract.FieldError
