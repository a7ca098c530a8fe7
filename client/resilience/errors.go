package resilience

import (
	"context"
	"errors"

	"github.com/breakwater-dev/breakwater/client/internal/retry"
)

var (
	// ErrTimeout means a Timeout policy's own deadline ended the call. An
	// error that matches ErrTimeout also matches context.DeadlineExceeded,
	// and its Timeout method reports true, like a net.Error's.
	ErrTimeout error = timeoutError{}

	// ErrBulkheadFull means a Bulkhead had no free slot within its wait:
	// the call was not made.
	ErrBulkheadFull = errors.New("breakwater: bulkhead full")
)

// timeoutError is the type of ErrTimeout. It matches
// context.DeadlineExceeded, so code that checks for the context's error
// keeps working when a Timeout policy is added in front of it.
type timeoutError struct{}

func (timeoutError) Error() string   { return "breakwater: timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// Is reports whether target is context.DeadlineExceeded.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Permanent marks err as not worth retrying: Retry returns it at once,
// whatever its RetryIf says. The result matches err with errors.Is and
// errors.As and has the same message. Permanent(nil) is nil.
func Permanent(err error) error { return retry.Permanent(err) }

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool { return retry.IsPermanent(err) }
