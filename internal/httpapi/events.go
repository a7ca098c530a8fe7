package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// EventSource delivers the fleet's state and config changes, from the
// call until ctx ends, then closes the channel; *events.Service is one.
type EventSource interface {
	Subscribe(ctx context.Context) <-chan contract.Event
}

// Event is an event as /v1/events sends it: its type on the event line,
// the rest as JSON on the data line.
type Event = contract.Event

// sseMessage is one event ready to write.
type sseMessage struct {
	name  string // breaker or rate limit it is about
	bytes []byte
}

// hub fans the store's events out to every open stream of this replica.
// One store subscription serves all streams. A stream that cannot keep up
// is dropped; it never slows the others.
type hub struct {
	mu       sync.Mutex
	streams  map[*stream]struct{}
	perName  map[streamKey]int
	perToken map[string]int
	cancel   context.CancelFunc
	done     chan struct{}
}

type stream struct {
	filter string // "" for every event
	ch     chan sseMessage
	gone   chan struct{} // closed when the hub drops the stream
	once   sync.Once
}

func (s *stream) drop() { s.once.Do(func() { close(s.gone) }) }

// streamBuffer is how many events a stream may fall behind before it is
// dropped.
const streamBuffer = 256

func newHub(src EventSource) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hub{streams: map[*stream]struct{}{}, perName: map[streamKey]int{}, perToken: map[string]int{}, cancel: cancel, done: make(chan struct{})}
	go h.run(src.Subscribe(ctx))
	return h
}

func (h *hub) run(in <-chan contract.Event) {
	defer close(h.done)
	for e := range in {
		data, _ := json.Marshal(e)
		msg := sseMessage{name: e.Name, bytes: fmt.Appendf(nil, "event: %s\ndata: %s\n\n", e.Type, data)}
		h.mu.Lock()
		for s := range h.streams {
			if s.filter != "" && s.filter != e.Name {
				continue
			}
			select {
			case s.ch <- msg:
			default:
				s.drop() // too slow: the client reconnects and refetches
				delete(h.streams, s)
			}
		}
		h.mu.Unlock()
	}
	h.mu.Lock()
	for s := range h.streams {
		s.drop()
	}
	h.streams = nil
	h.mu.Unlock()
}

// streamsPerToken caps the event streams one token (or, with no tokens,
// everyone) may hold open on one replica: enough for a fleet of thousands
// of clients sharing a service's token, few enough that one leaked token
// cannot exhaust the replica.
const streamsPerToken = 4096

// streamKey is whom a stream is counted against: a client (the
// Breakwater-Client header the SDK sends, else the remote address) within
// a token.
type streamKey struct{ token, client string }

// add registers a stream for the client, unless the client already holds
// perClient streams or its token perToken. It says which cap refused.
func (h *hub) add(who streamKey, filter string, perClient, perToken int) (s *stream, ok bool, refusedBy string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.streams == nil:
		return nil, false, "shutdown"
	case h.perName[who] >= perClient:
		return nil, false, "client"
	case h.perToken[who.token] >= perToken:
		return nil, false, "token"
	}
	s = &stream{filter: filter, ch: make(chan sseMessage, streamBuffer), gone: make(chan struct{})}
	h.streams[s] = struct{}{}
	h.perName[who]++
	h.perToken[who.token]++
	return s, true, ""
}

func (h *hub) remove(who streamKey, s *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams != nil {
		delete(h.streams, s)
	}
	h.perName[who]--
	if h.perName[who] <= 0 {
		delete(h.perName, who)
	}
	h.perToken[who.token]--
	if h.perToken[who.token] <= 0 {
		delete(h.perToken, who.token)
	}
}

// streamClient returns whom r's stream is counted against within its
// token.
func streamClient(r *http.Request) string {
	if id := r.Header.Get(ClientHeader); contract.ValidClientID(id) {
		return "client " + id
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "address " + host
}

func (h *hub) close() {
	h.cancel()
	<-h.done
}

// events serves GET /v1/events as Server-Sent Events.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	filter := r.URL.Query().Get("breaker")
	if filter != "" {
		if err := contract.ValidateName("breaker", filter); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	if a.hub == nil {
		a.writeError(w, r, &requestError{Status: http.StatusServiceUnavailable, Detail: "this replica serves no events"})
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		a.writeError(w, r, fmt.Errorf("streaming unsupported by the response writer"))
		return
	}
	who := streamKey{token: IdentityFrom(r.Context()).Name, client: streamClient(r)}
	s, ok, refusedBy := a.hub.add(who, filter, a.maxStreams, max(streamsPerToken, a.maxStreams))
	if !ok {
		detail := fmt.Sprintf("%s of token %q already holds %d event streams on this replica", who.client, who.token, a.maxStreams)
		switch refusedBy {
		case "token":
			detail = fmt.Sprintf("token %q already holds %d event streams on this replica", who.token, max(streamsPerToken, a.maxStreams))
		case "shutdown":
			detail = "this replica is shutting down"
		}
		a.log.Warn("event stream refused: "+detail, "token", who.token, "client", who.client, "cap", refusedBy)
		w.Header().Set("Retry-After", "5")
		a.writeError(w, r, &requestError{Status: http.StatusTooManyRequests, Detail: detail})
		return
	}
	defer a.hub.remove(who, s)

	// A stream outlives the server's write timeout; lift it for this one.
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{})

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": breakwater events\nretry: 1000\n\n")
	flusher.Flush()

	beat := time.NewTicker(a.heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.gone:
			return
		case m := <-s.ch:
			rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := w.Write(m.bytes); err != nil {
				return
			}
			flusher.Flush()
		case <-beat.C:
			rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := fmt.Fprintf(w, ": heartbeat\n\n"); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}
