package events

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/fault"
	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

func TestParse(t *testing.T) {
	at := time.UnixMilli(1764493200123).UTC()
	tests := []struct {
		name    string
		payload string
		want    contract.Event
		ok      bool
	}{
		{"state change", `{"type":"breaker.state","name":"pay","from":"closed","to":"open","reason":"failure rate 60%","at_ms":1764493200123,"generation":4}`,
			contract.Event{Type: "breaker.state", Name: "pay", From: "closed", To: "open", Reason: "failure rate 60%", At: at, Generation: 4}, true},
		{"close that starts a slow start", `{"type":"breaker.state","name":"pay","from":"half_open","to":"closed","reason":"probes succeeded","at_ms":1764493200123,"generation":6,"slow_start_ms":30000}`,
			contract.Event{Type: "breaker.state", Name: "pay", From: "half_open", To: "closed", Reason: "probes succeeded", At: at, Generation: 6, SlowStartMS: 30000}, true},
		{"config", `{"type":"ratelimit.config","name":"api","at_ms":1764493200123}`,
			contract.Event{Type: "ratelimit.config", Name: "api", At: at}, true},
		{"no type", `{"name":"pay","at_ms":1}`, contract.Event{}, false},
		{"not JSON", `hello`, contract.Event{}, false},
	}
	for _, tt := range tests {
		got, ok := Parse(tt.payload)
		if ok != tt.ok || !cmp.Equal(got, tt.want) {
			t.Errorf("Parse(%s) = %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

// TestSubscribeScriptsEvents: what the breaker and fault scripts publish
// arrives as events, in order; payloads that are not events are skipped.
func TestSubscribeScriptsEvents(t *testing.T) {
	m := storetest.NewMini(t, time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := NewService(m.Store).Subscribe(ctx)
	// The subscription is live once a published event gets through.
	for live := false; !live; {
		m.M.Publish(store.EventsChannel, `{"type":"breaker.config","name":"warmup","at_ms":1}`)
		select {
		case <-evs:
			live = true
		case <-time.After(50 * time.Millisecond):
		}
	}
	for len(evs) > 0 {
		<-evs
	}
	m.M.Publish(store.EventsChannel, `not an event`)
	svc := breaker.NewService(m.Store)
	if _, _, err := svc.Put(ctx, "pay", breaker.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Force(ctx, "pay", breaker.ForceRequest{State: contract.StateForcedOpen, Reason: "drill", By: "ops"}); err != nil {
		t.Fatal(err)
	}
	faults := fault.NewService(m.Store)
	if _, err := faults.Put(ctx, "ledger", fault.Spec{AbortPercent: 50, Reason: "game day", TTLMS: 60_000}, "ops"); err != nil {
		t.Fatal(err)
	}
	if err := faults.Delete(ctx, "ledger"); err != nil {
		t.Fatal(err)
	}
	var got []contract.Event
	for len(got) < 4 {
		select {
		case e := <-evs:
			got = append(got, e)
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d events %+v, want 4", len(got), got)
		}
	}
	if got[0].Type != contract.EventBreakerConfig || got[0].Name != "pay" {
		t.Errorf("first event = %+v, want pay's breaker.config", got[0])
	}
	if got[2].Type != contract.EventFaultConfig || got[2].Name != "ledger" || got[2].At.IsZero() {
		t.Errorf("third event = %+v, want ledger's fault.config", got[2])
	}
	if got[3].Type != contract.EventFaultDeleted || got[3].Name != "ledger" {
		t.Errorf("fourth event = %+v, want ledger's fault.deleted", got[3])
	}
	if got[1].Type != contract.EventBreakerState || got[1].To != contract.StateForcedOpen || got[1].Reason != "override: drill" || got[1].At.IsZero() {
		t.Errorf("second event = %+v, want pay's breaker.state to forced_open, reason override: drill", got[1])
	}
	cancel()
	for range evs { // closed when ctx ends
	}
}
