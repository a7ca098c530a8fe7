package resilience

import "context"

// Fallback is a Policy that turns a failure into a degraded answer: when fn
// fails with an error that If accepts, Do returns what Func returns
// instead, such as nil after serving cached or default data, or an error
// of the caller's choosing.
//
// Once the caller's ctx has ended nobody waits for the answer, so Func is
// not called and fn's error is returned unchanged. Otherwise, by default
// (If nil), every error is replaced. Refusals (client.ErrOpen,
// client.ErrRateLimited, ErrBulkheadFull) are errors like any other here: failing fast into a
// fallback is what they are for.
//
// Func gets the caller's context, still live, and the error it replaces;
// it may return nil, a new error, or err itself. With a nil Func, Do
// returns fn's error unchanged. For calls that return a value, see Call.
// A Fallback holds no state and is safe for concurrent use if its
// functions are.
type Fallback struct {
	// If reports whether err should be replaced. Nil means every error.
	// If is not asked once ctx has ended.
	If func(err error) bool

	// Func is called with fn's error and returns Do's result.
	Func func(ctx context.Context, err error) error
}

// Do calls fn once and, if it fails with an error that f.If accepts,
// returns f.Func's result instead.
func (f Fallback) Do(ctx context.Context, fn func(context.Context) error) error {
	err := fn(ctx)
	if err == nil || f.Func == nil || ctx.Err() != nil {
		return err
	}
	if f.If != nil && !f.If(err) {
		return err
	}
	return f.Func(ctx, err)
}
