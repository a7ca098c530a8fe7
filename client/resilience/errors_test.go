package resilience

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestErrTimeoutMatchesDeadlineExceeded(t *testing.T) {
	if !errors.Is(ErrTimeout, context.DeadlineExceeded) {
		t.Errorf("errors.Is(ErrTimeout, context.DeadlineExceeded) = false, want true")
	}
	//lint:ignore SA1032 the converse is the point: a plain deadline is not an ErrTimeout.
	if errors.Is(context.DeadlineExceeded, ErrTimeout) {
		t.Errorf("errors.Is(context.DeadlineExceeded, ErrTimeout) = true, want false")
	}
}

func TestPermanent(t *testing.T) {
	if Permanent(nil) != nil {
		t.Errorf("Permanent(nil) != nil")
	}
	err := fmt.Errorf("charge: %w", Permanent(errBoom))
	if !IsPermanent(err) || !errors.Is(err, errBoom) || err.Error() != "charge: boom" {
		t.Errorf("Permanent(%v) wrapped = %q (permanent %v), want %q, permanent, matching %v", errBoom, err, IsPermanent(err), "charge: boom", errBoom)
	}
	if IsPermanent(errBoom) {
		t.Errorf("IsPermanent(%v) = true, want false", errBoom)
	}
}
