package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store"
)

// closedWithin reports whether ch closes within d (is closed, for 0).
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	default:
	}
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

type ctxKey string

// TestRequestContextIsADeadlineContext holds the request context to what
// context.WithDeadline promises, whichever of Done and Err is asked first.
func TestRequestContextIsADeadlineContext(t *testing.T) {
	const soon = 50 * time.Millisecond
	parent := context.WithValue(context.Background(), ctxKey("k"), "v")

	t.Run("deadline, Done first", func(t *testing.T) {
		at := time.Now().Add(soon)
		rc := newRequestContext(parent, at)
		defer rc.cancel()
		if d, ok := rc.Deadline(); !ok || !d.Equal(at) {
			t.Errorf("Deadline() = %v, %v; want %v, true", d, ok, at)
		}
		if err := rc.Err(); err != nil {
			t.Errorf("Err() before the deadline = %v, want nil", err)
		}
		if !closedWithin(rc.Done(), 5*time.Second) {
			t.Fatal("Done did not close at the deadline")
		}
		if time.Now().Before(at) {
			t.Errorf("Done closed %v before the deadline", time.Until(at))
		}
		if err := rc.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Err() after the deadline = %v, want DeadlineExceeded", err)
		}
		if got := rc.Value(ctxKey("k")); got != "v" {
			t.Errorf("Value(k) = %v, want the parent's v", got)
		}
	})

	t.Run("deadline, Err first", func(t *testing.T) {
		rc := newRequestContext(parent, time.Now().Add(soon))
		defer rc.cancel()
		time.Sleep(2 * soon)
		if err := rc.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Err() after the deadline = %v, want DeadlineExceeded", err)
		}
		if !closedWithin(rc.Done(), 0) {
			t.Error("Done is open after Err said the context ended")
		}
	})

	t.Run("the parent's end", func(t *testing.T) {
		p, cancelParent := context.WithCancel(parent)
		rc := newRequestContext(p, time.Now().Add(time.Hour))
		defer rc.cancel()
		done := rc.Done()
		cancelParent()
		if !closedWithin(done, 5*time.Second) {
			t.Fatal("Done did not close when the parent was canceled")
		}
		if err := rc.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("Err() = %v, want Canceled", err)
		}
	})

	t.Run("a parent's earlier deadline", func(t *testing.T) {
		early := time.Now().Add(soon)
		p, cancelParent := context.WithDeadline(parent, early)
		defer cancelParent()
		rc := newRequestContext(p, time.Now().Add(time.Hour))
		defer rc.cancel()
		if d, _ := rc.Deadline(); !d.Equal(early) {
			t.Errorf("Deadline() = %v, want the parent's %v", d, early)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		rc := newRequestContext(parent, time.Now().Add(time.Hour))
		done := rc.Done()
		rc.cancel()
		if !closedWithin(done, 0) {
			t.Error("Done is open after cancel")
		}
		if err := rc.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("Err() = %v, want Canceled", err)
		}
		rc = newRequestContext(parent, time.Now().Add(time.Hour))
		rc.cancel()
		if !closedWithin(rc.Done(), 0) {
			t.Error("a Done made after cancel is open")
		}
	})

	t.Run("children", func(t *testing.T) {
		rc := newRequestContext(parent, time.Now().Add(soon))
		defer rc.cancel()
		child, cancelChild := context.WithCancel(rc)
		defer cancelChild()
		if !closedWithin(child.Done(), 5*time.Second) {
			t.Fatal("a child's Done did not close at the request's deadline")
		}
		if err := child.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("child Err() = %v, want DeadlineExceeded", err)
		}
	})
}

// TestStoreContext: the store's view of a request context keeps its
// deadline and values, and ends with the client's cancel, not at the
// deadline (the store's own timers end its calls then).
func TestStoreContext(t *testing.T) {
	p, cancelParent := context.WithCancel(context.WithValue(context.Background(), ctxKey("k"), "v"))
	at := time.Now().Add(10 * time.Millisecond)
	rc := newRequestContext(p, at)
	defer rc.cancel()
	rc.id, rc.hasID = Identity{Name: "svc", Role: RoleAgent}, true

	var c context.Context = rc
	sc, ok := c.(store.StoreContexter)
	if !ok {
		t.Fatal("the request context offers the store no context of its own")
	}
	sctx := sc.StoreContext()
	if d, ok := sctx.Deadline(); !ok || !d.Equal(at) {
		t.Errorf("Deadline() = %v, %v; want %v, true", d, ok, at)
	}
	if got := IdentityFrom(sctx); got.Name != "svc" {
		t.Errorf("IdentityFrom(store context) = %+v, want svc", got)
	}
	if got := sctx.Value(ctxKey("k")); got != "v" {
		t.Errorf("Value(k) = %v, want v", got)
	}
	if closedWithin(sctx.Done(), 50*time.Millisecond) {
		t.Error("the store context's Done closed at the deadline")
	}
	cancelParent()
	if !closedWithin(sctx.Done(), 5*time.Second) {
		t.Fatal("the store context's Done did not close at the client's cancel")
	}
	if err := sctx.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() = %v, want Canceled", err)
	}
}
