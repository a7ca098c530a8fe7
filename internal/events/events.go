// Package events delivers the state and config changes that the breaker,
// rate-limit and fault scripts publish, as contract.Events. It owns the format
// the scripts publish in (see published) and the store's events channel;
// the HTTP layer fans the events out to its streams.
package events

import (
	"context"
	"encoding/json"
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/store"
)

// Service subscribes to the store's events. It is safe for concurrent
// use; each Subscribe is a subscription of its own.
type Service struct {
	store *store.Store
}

// NewService returns a Service over st.
func NewService(st *store.Store) *Service { return &Service{store: st} }

// Subscribe delivers every event published from now until ctx ends, then
// closes the channel. The subscription reconnects by itself after a store
// outage; events published meanwhile are lost (pub/sub delivers at most
// once). Payloads that are not events are skipped. The caller must keep
// up: the store buffers only so much.
func (s *Service) Subscribe(ctx context.Context) <-chan contract.Event {
	in := s.store.Subscribe(ctx, store.EventsChannel)
	out := make(chan contract.Event, cap(in))
	go func() {
		defer close(out)
		for payload := range in {
			e, ok := Parse(payload)
			if !ok {
				continue
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// published is an event as the scripts publish it (see the publish calls
// in internal/breaker/lua, internal/ratelimit/lua and internal/fault/lua).
type published struct {
	Type       string `json:"type"`
	Name       string `json:"name"`
	From       string `json:"from,omitempty"`
	To         string `json:"to,omitempty"`
	Reason     string `json:"reason,omitempty"`
	AtMS       int64  `json:"at_ms"`
	Generation int64  `json:"generation,omitempty"`
	SlowStart  int64  `json:"slow_start_ms,omitempty"`
}

// Parse reads one payload as the scripts publish it. It reports false for
// a payload that is not an event.
func Parse(payload string) (contract.Event, bool) {
	var p published
	if err := json.Unmarshal([]byte(payload), &p); err != nil || p.Type == "" {
		return contract.Event{}, false
	}
	return contract.Event{Type: p.Type, Name: p.Name, From: p.From, To: p.To, Reason: p.Reason,
		At: time.UnixMilli(p.AtMS).UTC(), Generation: p.Generation, SlowStartMS: p.SlowStart}, true
}
