package resilience

import (
	"context"
	"fmt"
	"time"
)

// A Bulkhead bounds how many calls to a dependency run at once, so that a
// slow dependency ties up at most that many of a replica's goroutines,
// connections and memory, and the rest of the replica keeps working.
//
// A call that finds every slot taken waits up to the Bulkhead's maximum
// wait for one to free up, in arrival order, and otherwise fails with
// ErrBulkheadFull without being made. A Bulkhead starts no goroutines.
//
// Most callers want Do, which is a Policy; Acquire and Release are for
// calls whose end is not the end of a function, such as an HTTP response
// whose body is read later. A Bulkhead must be made with NewBulkhead and is
// safe for concurrent use.
type Bulkhead struct {
	slots   chan struct{} // one element per call running
	maxWait time.Duration
}

// NewBulkhead returns a Bulkhead that lets maxConcurrent calls run at once
// and makes others wait up to maxWait for a slot; a maxWait of zero or less
// means a call that finds no free slot fails at once. NewBulkhead panics if
// maxConcurrent is less than 1.
func NewBulkhead(maxConcurrent int, maxWait time.Duration) *Bulkhead {
	if maxConcurrent < 1 {
		panic(fmt.Sprintf("client: NewBulkhead(%d, %v): maxConcurrent must be at least 1", maxConcurrent, maxWait))
	}
	return &Bulkhead{slots: make(chan struct{}, maxConcurrent), maxWait: max(maxWait, 0)}
}

// Do takes a slot, calls fn, and gives the slot back. It returns
// ErrBulkheadFull if no slot freed up within the maximum wait, ctx's error
// if ctx ended while waiting, and fn's error otherwise.
func (b *Bulkhead) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := b.Acquire(ctx); err != nil {
		return err
	}
	defer b.Release()
	return fn(ctx)
}

// Acquire takes a slot, waiting as Do does, and returns nil once it
// has one; the caller must then call Release exactly once. On error no slot
// is held.
func (b *Bulkhead) Acquire(ctx context.Context) error {
	select {
	case b.slots <- struct{}{}:
		return nil
	default:
	}
	if b.maxWait == 0 {
		return ErrBulkheadFull
	}
	t := time.NewTimer(b.maxWait)
	defer t.Stop()
	select {
	case b.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBulkheadFull
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release gives back a slot taken by a successful Acquire. It panics if no
// slot is held, since that is a bug that would otherwise let too many calls
// through.
func (b *Bulkhead) Release() {
	select {
	case <-b.slots:
	default:
		panic("client: Bulkhead.Release without Acquire")
	}
}

// InFlight returns the number of slots taken now.
func (b *Bulkhead) InFlight() int { return len(b.slots) }

// MaxConcurrent returns the number of slots.
func (b *Bulkhead) MaxConcurrent() int { return cap(b.slots) }
