package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/events"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// sse is an open event stream.
type sse struct {
	t      *testing.T
	events chan sseEvent
	cancel context.CancelFunc
}

type sseEvent struct {
	Name string // "" for a comment
	Data string
}

// openEvents connects to /v1/events and reads it in the background.
func (ta *testAPI) openEvents(t *testing.T, query, token string) (*sse, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ta.srv.URL+"/v1/events"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := ta.srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /v1/events: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		cancel()
		res.Body.Close()
		return nil, res
	}
	s := &sse{t: t, events: make(chan sseEvent, 100), cancel: cancel}
	t.Cleanup(func() { cancel(); res.Body.Close() })
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				s.events <- sseEvent{Data: line}
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	// The stream is registered once its first comment arrives.
	s.next(func(e sseEvent) bool { return e.Name == "" })
	return s, res
}

// next waits for an event that match accepts, skipping others.
func (s *sse) next(match func(sseEvent) bool) sseEvent {
	s.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				s.t.Fatal("event stream ended")
			}
			if match(e) {
				return e
			}
		case <-timeout:
			s.t.Fatal("no matching event within 5s")
		}
	}
}

func named(name string) func(sseEvent) bool {
	return func(e sseEvent) bool { return e.Name == name }
}

// TestEventsReachEveryReplica: a change made through one control plane
// shows on the streams of both.
func TestEventsReachEveryReplica(t *testing.T) {
	r := storetest.StartRedis(t)
	a := serveAPI(t, r.Open(t), nil)
	b := serveAPI(t, r.Open(t), nil)
	onA, _ := a.openEvents(t, "", "")
	onB, _ := b.openEvents(t, "", "")

	a.do("PUT", "/v1/breakers/pay", map[string]any{"minimum_calls": 2}, "")
	for _, s := range []*sse{onA, onB} {
		e := s.next(named("breaker.config"))
		if !strings.Contains(e.Data, `"name":"pay"`) {
			t.Errorf("breaker.config data = %s", e.Data)
		}
	}
	b.do("POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":false,"count":2}]}`, "")
	for _, s := range []*sse{onA, onB} {
		e := s.next(named("breaker.state"))
		var ev Event
		if err := json.Unmarshal([]byte(e.Data), &ev); err != nil {
			t.Fatalf("data %s: %v", e.Data, err)
		}
		if ev.Name != "pay" || ev.From != "closed" || ev.To != "open" || ev.Reason != "failure_rate" || ev.At.IsZero() || ev.Generation != 2 {
			t.Errorf("breaker.state = %+v, want pay closed->open by failure_rate at generation 2", ev)
		}
	}
	a.do("DELETE", "/v1/breakers/pay", nil, "")
	onB.next(named("breaker.deleted"))
}

func TestEventsFilterAndHeartbeat(t *testing.T) {
	ta := newTestAPI(t, nil)
	ta.do("PUT", "/v1/breakers/one", `{}`, "")
	ta.do("PUT", "/v1/breakers/two", `{}`, "")
	s, _ := ta.openEvents(t, "?breaker=two", "")
	ta.do("PUT", "/v1/breakers/one/override", `{"state":"forced_open","reason":"x"}`, "")
	ta.do("PUT", "/v1/breakers/two/override", `{"state":"forced_open","reason":"y"}`, "")
	e := s.next(named("breaker.state"))
	if !strings.Contains(e.Data, `"name":"two"`) {
		t.Fatalf("filtered stream got %s, want only breaker two", e.Data)
	}
	s.next(func(e sseEvent) bool { return e.Data == ": heartbeat" }) // every 200ms in tests

	if _, res := ta.openEvents(t, "?breaker=bad%7Bname", ""); res == nil || res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad filter: %v, want 400", res)
	}
}

// TestEventsStreamCap: one token may hold a bounded number of streams on
// a replica; the next gets 429.
func TestEventsStreamCap(t *testing.T) {
	m := storetest.NewMini(t, testStart)
	api := New(Options{Breakers: nil, Store: m.Store, Events: events.NewService(m.Store), MaxStreamsPerToken: 2})
	t.Cleanup(api.Close)
	ta := &testAPI{t: t, srv: newServer(t, api)}
	ta.openEvents(t, "", "")
	ta.openEvents(t, "", "")
	_, res := ta.openEvents(t, "", "")
	if res == nil || res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream: %v, want 429 with Retry-After", res)
	}
}

// TestEventsSlowReaderDropped: a stream that does not read is dropped when
// it falls behind, and the others keep receiving.
func TestEventsSlowReaderDropped(t *testing.T) {
	m := storetest.NewMini(t, testStart)
	h := newHub(events.NewService(m.Store))
	t.Cleanup(h.close)
	fast, _, _ := h.add(streamKey{"t", "b"}, "", 10, 10)
	// The subscription is live once an event gets through.
	for live := false; !live; {
		m.M.Publish("bw:events", `{"type":"breaker.config","name":"warmup","at_ms":1}`)
		select {
		case <-fast.ch:
			live = true
		case <-time.After(50 * time.Millisecond):
		}
	}
	for len(fast.ch) > 0 {
		<-fast.ch
	}
	slow, _, _ := h.add(streamKey{"t", "a"}, "", 10, 10)
	// Publish in rounds of 100, waiting each time until the reading stream
	// has every event of the round: it never falls far behind, while the
	// stream that never reads does.
	for round := range 4 {
		for i := range 100 {
			m.M.Publish("bw:events", `{"type":"breaker.config","name":"x`+itoa(round*100+i)+`","at_ms":1}`)
		}
		for i := range 100 {
			select {
			case <-fast.ch:
			case <-fast.gone:
				t.Fatalf("the reading stream was dropped in round %d after %d events", round, i)
			case <-time.After(5 * time.Second):
				t.Fatalf("the reading stream got %d of round %d's 100 events", i, round)
			}
		}
	}
	select {
	case <-slow.gone:
	case <-time.After(time.Second):
		t.Fatal("the stream that never read was not dropped")
	}
}
