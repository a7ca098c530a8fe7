package ratelimit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// start is where the test clocks begin.
var start = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// backend is a token bucket under test: the reference model, or the
// scripts in a store whose clock the test sets.
type backend interface {
	advance(d time.Duration)
	put(t *testing.T, name string, cfg Config) (Limit, bool)
	delete(name string) error
	take(name string, req TakeRequest) (TakeResult, error)
	tokens(name, key string) (float64, error)
}

// modelBackend is the reference model as a backend.
type modelBackend struct{ *refModel }

func (m modelBackend) put(t *testing.T, name string, cfg Config) (Limit, bool) {
	return m.refModel.put(name, cfg)
}

// miniBackend runs the scripts in miniredis, with the clock the test sets.
type miniBackend struct {
	mini *storetest.Mini
	svc  *Service
	now  time.Time
}

func newMiniBackend(t testing.TB) *miniBackend {
	t.Helper()
	m := storetest.NewMini(t, start)
	return &miniBackend{mini: m, svc: NewService(m.Store), now: start}
}

// advance moves the store's clock, forward or back. TTLs move with it (a
// negative FastForward lengthens them), so keys expire at absolute times of
// the store's clock, as PEXPIREAT makes them in Redis.
func (b *miniBackend) advance(d time.Duration) {
	b.now = b.now.Add(d)
	b.mini.M.SetTime(b.now)
	b.mini.M.FastForward(d)
}

// reset empties the store and sets its clock back to start.
func (b *miniBackend) reset() {
	b.mini.M.FlushAll()
	b.now = start
	b.mini.M.SetTime(start)
}

func (b *miniBackend) put(t *testing.T, name string, cfg Config) (Limit, bool) {
	t.Helper()
	l, created, err := b.svc.Put(context.Background(), name, cfg)
	if err != nil {
		t.Fatalf("Put(%q, %+v) error: %v", name, cfg, err)
	}
	return l, created
}

func (b *miniBackend) delete(name string) error {
	return b.svc.Delete(context.Background(), name)
}

func (b *miniBackend) take(name string, req TakeRequest) (TakeResult, error) {
	return b.svc.Take(context.Background(), name, req)
}

func (b *miniBackend) tokens(name, key string) (float64, error) {
	l, err := b.svc.Get(context.Background(), name, &key)
	if err != nil {
		return 0, err
	}
	return *l.Tokens, nil
}

// sameError reports whether two errors say the same: both nil, both
// ErrNotFound, or validation errors naming the same field.
func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if errors.Is(a, ErrNotFound) || errors.Is(b, ErrNotFound) {
		return errors.Is(a, ErrNotFound) && errors.Is(b, ErrNotFound)
	}
	var va, vb *ValidationError
	return errors.As(a, &va) && errors.As(b, &vb) && va.Field == vb.Field
}

// wantField checks that err is a *ValidationError naming field.
func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("%s error = %v, want a *ValidationError naming %q", what, err, field)
		return
	}
	if ve.InvalidField() != field {
		t.Errorf("%s error names %q (%v), want %q", what, ve.InvalidField(), err, field)
	}
}
