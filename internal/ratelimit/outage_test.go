package ratelimit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestStoreDown stops Redis under a Service: every call fails with an error
// that wraps store.ErrUnavailable, and once Redis is back the same Service
// works again.
func TestStoreDown(t *testing.T) {
	r := storetest.StartRedis(t)
	st := r.Open(t)
	s := NewService(st)
	ctx := context.Background()
	cfg := Config{Capacity: 5, RefillPerSecond: 1}
	if _, _, err := s.Put(ctx, "lim", cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Take(ctx, "lim", TakeRequest{Tokens: 1}); err != nil {
		t.Fatal(err)
	}

	r.Stop()
	calls := []struct {
		name string
		call func() error
	}{
		{"Take", func() error { _, err := s.Take(ctx, "lim", TakeRequest{Tokens: 1}); return err }},
		{"Get", func() error { _, err := s.Get(ctx, "lim", ptr("")); return err }},
		{"Put", func() error { _, _, err := s.Put(ctx, "lim", cfg); return err }},
		{"List", func() error { _, err := s.List(ctx); return err }},
		{"Delete", func() error { return s.Delete(ctx, "lim") }},
	}
	for _, c := range calls {
		begin := time.Now()
		err := c.call()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis stopped = %v, want an error wrapping store.ErrUnavailable", c.name, err)
		}
		if d := time.Since(begin); d > 3*time.Second {
			t.Errorf("%s with Redis stopped took %v", c.name, d)
		}
	}

	// The restarted Redis is empty (no persistence): the limit is made
	// again through the same Service.
	r.Start()
	storetest.WaitReady(t, st, 10*time.Second)
	if _, _, err := s.Put(ctx, "lim", cfg); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	res, err := s.Take(ctx, "lim", TakeRequest{Tokens: 5})
	if err != nil || !res.Allowed {
		t.Errorf("Take after restart = %v, %v; want allowed", res, err)
	}
}

// TestStoreHung freezes Redis: a take fails within the store's deadline
// with ErrUnavailable instead of hanging, and works once Redis thaws.
func TestStoreHung(t *testing.T) {
	r := storetest.StartRedis(t)
	s := NewService(storetest.OpenURL(t, r.URL(), time.Second))
	ctx := context.Background()
	if _, _, err := s.Put(ctx, "lim", Config{Capacity: 5, RefillPerSecond: 1}); err != nil {
		t.Fatal(err)
	}
	r.Freeze()
	begin := time.Now()
	_, err := s.Take(ctx, "lim", TakeRequest{Tokens: 1})
	r.Thaw()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Take with Redis frozen = %v, want an error wrapping store.ErrUnavailable", err)
	}
	if d := time.Since(begin); d > 2500*time.Millisecond {
		t.Errorf("Take with Redis frozen took %v, want about the 1s deadline", d)
	}
	var res TakeResult
	for range 50 { // the connection that timed out is dropped; the next one works
		if res, err = s.Take(ctx, "lim", TakeRequest{Tokens: 1}); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || !res.Allowed {
		t.Errorf("Take after thaw = %v, %v; want allowed", res, err)
	}
}
