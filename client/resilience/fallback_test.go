package resilience

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestFallback(t *testing.T) {
	errServed := errors.New("served from cache")
	toCache := func(context.Context, error) error { return errServed }
	tests := []struct {
		name       string
		fallback   Fallback
		fnErr      error
		cancelled  bool
		wantErr    error
		wantCalled bool
	}{
		{name: "success is kept", fallback: Fallback{Func: toCache}},
		{name: "any error falls back", fallback: Fallback{Func: toCache}, fnErr: errBoom, wantErr: errServed, wantCalled: true},
		{name: "refusal falls back", fallback: Fallback{Func: toCache}, fnErr: &waitError{Err: errOpen, After: 1}, wantErr: errServed, wantCalled: true},
		{name: "fallback may succeed", fallback: Fallback{Func: func(context.Context, error) error { return nil }}, fnErr: errBoom, wantCalled: true},
		{
			name:     "If false keeps the error",
			fallback: Fallback{If: func(err error) bool { return errors.Is(err, errOpen) }, Func: toCache},
			fnErr:    errBoom,
			wantErr:  errBoom,
		},
		{
			name:       "If true falls back",
			fallback:   Fallback{If: func(err error) bool { return errors.Is(err, errOpen) }, Func: toCache},
			fnErr:      fmt.Errorf("charge: %w", errOpen),
			wantErr:    errServed,
			wantCalled: true,
		},
		{name: "caller's cancellation is kept", fallback: Fallback{Func: toCache}, fnErr: context.Canceled, cancelled: true, wantErr: context.Canceled},
		{name: "any error after the caller gave up is kept", fallback: Fallback{Func: toCache}, fnErr: errBoom, cancelled: true, wantErr: errBoom},
		{name: "nil Func keeps the error", fallback: Fallback{}, fnErr: errBoom, wantErr: errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.cancelled {
				cancel()
			}
			called := false
			f := tt.fallback
			if f.Func != nil {
				inner := f.Func
				f.Func = func(ctx context.Context, err error) error {
					called = true
					if err != tt.fnErr {
						t.Errorf("Func got error %v, want %v", err, tt.fnErr)
					}
					return inner(ctx, err)
				}
			}
			err := f.Do(ctx, func(context.Context) error { return tt.fnErr })
			if err != tt.wantErr && !errors.Is(err, tt.wantErr) {
				t.Errorf("Do() = %v, want %v", err, tt.wantErr)
			}
			if called != tt.wantCalled {
				t.Errorf("Do() called Func: %v, want %v", called, tt.wantCalled)
			}
		})
	}
}
