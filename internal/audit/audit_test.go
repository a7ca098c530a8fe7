package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

var testStart = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// TestRunResults: each action is one entry, newest first, with who, what
// and why, and a result that says how it ended: applied, failed as the
// caller describes it, or unknown when the store's reply was lost; a put
// that applied carries the config version it made.
func TestRunResults(t *testing.T) {
	m := storetest.NewMini(t, testStart)
	l := New(m.Store, nil)
	l.now = func() time.Time { return testStart }
	describe := func(err error) string { return "described: " + err.Error() }
	ctx := context.Background()
	runs := []struct {
		act     contract.AuditAction
		version int64
		err     error
	}{
		{contract.AuditAction{By: "ops", Action: "breaker.put", Target: "pay"}, 3, nil},
		{contract.AuditAction{By: "ops", Action: "breaker.put", Target: "nope"}, 4, errors.New("breaker not found")},
		{contract.AuditAction{By: "ana", Action: "breaker.override.put", Target: "pay", Reason: "  forced_open: incident 12 "},
			0, fmt.Errorf("script override: %w", contract.ErrMaybeApplied)},
	}
	for _, r := range runs {
		ran := false
		err := l.Run(ctx, r.act, func(context.Context) (int64, error) { ran = true; return r.version, r.err }, describe)
		if !errors.Is(err, r.err) || !ran {
			t.Fatalf("Run(%+v) = %v, ran %v; want %v, ran", r.act, err, ran, r.err)
		}
	}
	got, err := l.Newest(ctx, 10)
	if err != nil {
		t.Fatalf("Newest(10) = %v", err)
	}
	want := []contract.AuditEntry{
		{At: testStart, By: "ana", Action: "breaker.override.put", Target: "pay", Reason: "forced_open: incident 12", Result: "unknown"},
		{At: testStart, By: "ops", Action: "breaker.put", Target: "nope", Result: "error: described: breaker not found"},
		{At: testStart, By: "ops", Action: "breaker.put", Target: "pay", Result: "ok", ConfigVersion: 3},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(contract.AuditEntry{}, "ID")); diff != "" {
		t.Errorf("Newest(10) mismatch (-want +got):\n%s", diff)
	}
	if got, _ := l.Newest(ctx, 2); len(got) != 2 || got[0].Action != "breaker.override.put" || got[1].Target != "nope" {
		t.Errorf("Newest(2) = %+v, want the two newest", got)
	}
}

// TestRunRefusedWithoutTrail: when the action cannot be recorded, it does
// not run.
func TestRunRefusedWithoutTrail(t *testing.T) {
	m := storetest.NewMini(t, testStart)
	l := New(m.Store, nil)
	m.Stop(t)
	ran := false
	err := l.Run(context.Background(), contract.AuditAction{By: "ops", Action: "breaker.reset", Target: "pay"},
		func(context.Context) (int64, error) { ran = true; return 0, nil }, func(error) string { return "" })
	if !errors.Is(err, contract.ErrUnavailable) || ran {
		t.Errorf("Run with the store down = %v, ran %v; want ErrUnavailable and not run", err, ran)
	}
}

// TestRunOutlivesCancel: once recorded, an action runs with a context the
// caller's cancel does not reach, and its result is recorded.
func TestRunOutlivesCancel(t *testing.T) {
	m := storetest.NewMini(t, testStart)
	l := New(m.Store, nil)
	ctx, cancel := context.WithCancel(context.Background())
	err := l.Run(ctx, contract.AuditAction{By: "ops", Action: "breaker.reset", Target: "pay"},
		func(actx context.Context) (int64, error) { cancel(); return 0, actx.Err() }, func(error) string { return "" })
	if err != nil {
		t.Fatalf("Run canceled by its caller = %v, want nil: the action's context outlives the cancel", err)
	}
	got, err := l.Newest(context.Background(), 1)
	if err != nil || len(got) != 1 || got[0].Result != contract.AuditOK {
		t.Errorf("Newest(1) = %+v, %v; want the action recorded ok", got, err)
	}
}

// TestRunKeepsDeadline: the action's context, which the caller's cancel
// does not reach, still ends at the caller's deadline, the one deadline
// the API gives each request for all its store calls.
func TestRunKeepsDeadline(t *testing.T) {
	m := storetest.NewMini(t, testStart)
	l := New(m.Store, nil)
	want := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.Background(), want)
	defer cancel()
	var got time.Time
	var ok bool
	err := l.Run(ctx, contract.AuditAction{By: "ops", Action: "breaker.reset", Target: "pay"},
		func(actx context.Context) (int64, error) { got, ok = actx.Deadline(); return 0, nil }, func(error) string { return "" })
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if !ok || !got.Equal(want) {
		t.Errorf("action's Deadline() = %v, %t; want the caller's %v, true", got, ok, want)
	}
}

// TestNewestWithoutResult: an action whose result record is missing (the
// control plane stopped between the two) reads "unknown".
func TestNewestWithoutResult(t *testing.T) {
	m := storetest.NewMini(t, testStart)
	ctx := context.Background()
	if _, err := m.Store.Append(ctx, Key, MaxLen, map[string]string{"kind": "action", "at": "1", "by": "ops", "action": "breaker.reset", "target": "pay"}); err != nil {
		t.Fatal(err)
	}
	got, err := New(m.Store, nil).Newest(ctx, 5)
	if err != nil || len(got) != 1 || got[0].Result != contract.AuditUnknown {
		t.Errorf("Newest(5) = %+v, %v; want one entry with result unknown", got, err)
	}
}

func TestTrimReason(t *testing.T) {
	long := strings.Repeat("é", contract.MaxReasonLen) // the most the API takes, 2 bytes a character
	tests := []struct {
		name, in, want string
	}{
		{"space", "  why \n", "why"},
		{"the longest valid reason, kept whole", long, long},
		{"inner space kept", " INC-12  resolved ", "INC-12  resolved"},
	}
	for _, tt := range tests {
		if got := trimReason(tt.in); got != tt.want {
			t.Errorf("trimReason(%s) = %q (%d bytes), want %d bytes", tt.name, got, len(got), len(tt.want))
		}
	}
}
