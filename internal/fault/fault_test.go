package fault_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/fault"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

func TestValidate(t *testing.T) {
	ok := fault.Spec{AbortPercent: 10, Reason: "r", TTLMS: 1000}
	tests := []struct {
		name  string
		edit  func(*fault.Spec)
		field string
	}{
		{"valid", func(*fault.Spec) {}, ""},
		{"fractional percent", func(s *fault.Spec) { s.AbortPercent = 0.5 }, ""},
		{"delay only", func(s *fault.Spec) { s.AbortPercent, s.DelayPercent, s.DelayMS = 0, 100, 60000 }, ""},
		{"ttl of a day", func(s *fault.Spec) { s.TTLMS = 86_400_000 }, ""},
		{"abort above 100", func(s *fault.Spec) { s.AbortPercent = 100.01 }, "abort_percent"},
		{"status 399", func(s *fault.Spec) { s.AbortStatus = 399 }, "abort_status"},
		{"status 600", func(s *fault.Spec) { s.AbortStatus = 600 }, "abort_status"},
		{"delay negative", func(s *fault.Spec) { s.DelayPercent = -0.1 }, "delay_percent"},
		{"delay ms negative", func(s *fault.Spec) { s.DelayMS = -1 }, "delay_ms"},
		{"nothing to do", func(s *fault.Spec) { s.AbortPercent = 0 }, "abort_percent"},
		{"reason of 501 runes", func(s *fault.Spec) { s.Reason = string(make([]rune, 501)) }, "reason"},
		{"ttl over a day", func(s *fault.Spec) { s.TTLMS = 86_400_001 }, "ttl_ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.edit(&s)
			err := s.Normalize()
			var ve *fault.ValidationError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("Normalize(%+v) = %v, want nil", s, err)
			case tt.field != "" && (!errors.As(err, &ve) || ve.Field != tt.field):
				t.Fatalf("Normalize(%+v) = %v, want a ValidationError of %s", s, err, tt.field)
			}
		})
	}
	s := ok
	s.Normalize()
	if s.AbortStatus != fault.DefaultAbortStatus {
		t.Errorf("Normalize left abort_status %d, want %d", s.AbortStatus, fault.DefaultAbortStatus)
	}
}

// TestExpiryAndIndex: a fault is gone at its expiry, from Get and List,
// and List drops its name from the index, while a fault set again under
// that name is listed.
func TestExpiryAndIndex(t *testing.T) {
	m := storetest.NewMini(t, time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))
	svc := fault.NewService(m.Store)
	ctx := context.Background()
	spec := fault.Spec{AbortPercent: 100, Reason: "drill", TTLMS: 2000}
	f, err := svc.Put(ctx, "pay", spec, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.ExpiresAt.Sub(f.At); got != 2*time.Second || f.By != "ops" || f.AbortStatus != 503 {
		t.Fatalf("Put = %+v; want by ops, 503, expiring 2 s after it was set", f)
	}
	if _, err := svc.Put(ctx, "inv", fault.Spec{DelayPercent: 50, DelayMS: 100, Reason: "slow", TTLMS: 60000}, "ops"); err != nil {
		t.Fatal(err)
	}
	m.Advance(2 * time.Second)
	if _, err := svc.Get(ctx, "pay"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("Get at expiry = %v, want ErrNotFound", err)
	}
	fs, err := svc.List(ctx)
	if err != nil || len(fs) != 1 || fs[0].Name != "inv" {
		t.Fatalf("List after pay's expiry = %+v, %v; want inv alone", fs, err)
	}
	names, _ := m.Store.SetMembers(ctx, "bw:idx:f")
	if len(names) != 1 || names[0] != "inv" {
		t.Errorf("index after List = %v, want [inv]", names)
	}
	if err := svc.Delete(ctx, "pay"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("Delete of an expired fault = %v, want ErrNotFound", err)
	}
}
