package resilience

import (
	"errors"
	"time"
)

// Refusals shaped as package client makes them (which imports this
// package, so its tests cannot import it back).
var (
	errOpen        = errors.New("breakwater: circuit breaker is open")
	errRateLimited = errors.New("breakwater: rate limited")
)

// waitError is a refusal that says when to try again, as a
// *client.RetryAfterError does.
type waitError struct {
	Err   error
	After time.Duration
}

func (e *waitError) Error() string             { return e.Err.Error() + " (retry after " + e.After.String() + ")" }
func (e *waitError) Unwrap() error             { return e.Err }
func (e *waitError) RetryAfter() time.Duration { return e.After }
