package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCachedDecisionAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops objects on purpose under the race detector")
	}
	srv := closedStub(t)
	c := newTestClient(t, Config{DisableEvents: true}, srv.URL)
	b := c.Breaker("bench")
	ctx := context.Background()
	calls(t, b, 1, succeed)
	waitFor(t, 2*time.Second, "config known", func() bool { return b.slowNS.Load() > 0 })
	allocs := testing.AllocsPerRun(1000, func() {
		b.Do(ctx, succeed)
		b.Do(ctx, fail)
	})
	if allocs != 0 {
		t.Errorf("Do with a fresh cache: %v allocations, want 0", allocs)
	}
	// Allow hands out a done func of the call's own: one tracker and its
	// method value.
	allocs = testing.AllocsPerRun(1000, func() {
		done, err := b.Allow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
	})
	if allocs > 2 {
		t.Errorf("Allow + done with a fresh cache: %v allocations, want at most 2", allocs)
	}
}

// madeCall is a call's outcome: whether it succeeded and how long it took.
type madeCall struct {
	ok  bool
	dur time.Duration
}

func TestOutcomeBatchDrain(t *testing.T) {
	c := &core{stripeMask: uint32(stripes - 1), batchTrigger: 1 << 40, flushNow: make(chan struct{}, 1)}
	const slow = int64(100 * time.Millisecond)
	tests := []struct {
		name   string
		calls  []madeCall
		slowNS int64
		want   []outcome
	}{
		{
			name: "four kinds, mean durations",
			calls: []madeCall{
				{true, 10 * time.Millisecond}, {true, 30 * time.Millisecond},
				{true, 100 * time.Millisecond}, {false, 5 * time.Millisecond},
				{false, 200 * time.Millisecond}, {false, 400 * time.Millisecond},
			},
			slowNS: slow,
			want: []outcome{
				{Success: true, DurationMS: 20, Count: 2, Generation: 7},
				{Success: true, DurationMS: 100, Count: 1, Generation: 7},
				{Success: false, DurationMS: 5, Count: 1, Generation: 7},
				{Success: false, DurationMS: 300, Count: 2, Generation: 7},
			},
		},
		{
			name: "slow-call duration not known yet: duration buckets",
			calls: []madeCall{
				{true, 0}, {true, 6 * time.Millisecond}, {true, 7 * time.Millisecond}, {false, 900 * time.Millisecond},
			},
			want: []outcome{
				{Success: true, DurationMS: 0, Count: 1, Generation: 7},
				{Success: true, DurationMS: 6, Count: 2, Generation: 7},
				{Success: false, DurationMS: 900, Count: 1, Generation: 7},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ob := newOutcomeBatch(7)
			for i, call := range tt.calls {
				ob.add(c, uint32(i), call.ok, false, int64(call.dur), tt.slowNS)
			}
			if diff := cmp.Diff(tt.want, ob.drain(nil)); diff != "" {
				t.Errorf("drain() mismatch (-want +got):\n%s", diff)
			}
			if got := ob.drain(nil); len(got) != 0 {
				t.Errorf("second drain() = %v, want nothing", got)
			}
		})
	}
}

func TestAppendOutcomeSplitsCounts(t *testing.T) {
	got := appendOutcome(nil, false, false, 2_500_000, 3, 4)
	want := []outcome{
		{Success: false, DurationMS: 3, Count: 1_000_000, Generation: 4},
		{Success: false, DurationMS: 3, Count: 1_000_000, Generation: 4},
		{Success: false, DurationMS: 3, Count: 500_000, Generation: 4},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("appendOutcome() mismatch (-want +got):\n%s", diff)
	}
}

func TestBatchFullSignalsTheFlusher(t *testing.T) {
	c := &core{stripeMask: 0, batchTrigger: 3, flushNow: make(chan struct{}, 1)}
	ob := newOutcomeBatch(1)
	for range 2 {
		ob.add(c, 0, true, false, 0, 1)
	}
	if len(c.flushNow) != 0 {
		t.Fatalf("flusher signalled before the batch filled")
	}
	for range 5 { // the signal never blocks
		ob.add(c, 0, true, false, 0, 1)
	}
	if len(c.flushNow) != 1 {
		t.Errorf("flusher not signalled when the batch filled")
	}
}

// sseStub serves /v1/events from a channel of raw chunks; a nil chunk
// ends the stream. Decisions are "closed" with a minute of cache.
type sseStub struct {
	chunks  chan []byte
	streams chan struct{} // one element per stream opened
}

func newSSEStub(t *testing.T) (*sseStub, *httptest.Server) {
	s := &sseStub{chunks: make(chan []byte, 16), streams: make(chan struct{}, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/events" {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(decision{Allowed: true, State: "closed", CacheTTLMS: 60000, Generation: 3})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		s.streams <- struct{}{}
		for {
			select {
			case b := <-s.chunks:
				if b == nil {
					return
				}
				w.Write(b)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

func TestEventStream(t *testing.T) {
	stub, srv := newSSEStub(t)
	type change struct {
		name     string
		from, to State
	}
	changes := make(chan change, 16)
	c := newTestClient(t, Config{Hooks: Hooks{OnStateChange: func(name string, from, to State) {
		changes <- change{name, from, to}
	}}}, srv.URL)
	<-stub.streams
	b := c.Breaker("payments")
	calls(t, b, 1, succeed)

	// A comment, an event for a breaker the client does not use, one split
	// over two chunks, data on two lines, and one from an older generation.
	stub.chunks <- []byte(": heartbeat\n\nevent: breaker.state\ndata: {\"name\":\"other\",\"to\":\"open\",\"generation\":9}\n\n")
	stub.chunks <- []byte("event: breaker.state\ndata: {\"name\":\"payments\",")
	stub.chunks <- []byte("\ndata: \"from\":\"closed\",\"to\":\"forced_open\",\"generation\":4}\n\n")
	stub.chunks <- []byte("event: breaker.state\ndata: {\"name\":\"payments\",\"to\":\"closed\",\"generation\":2}\n\n")
	got := <-changes
	if want := (change{"payments", StateClosed, StateForcedOpen}); got != want {
		t.Fatalf("OnStateChange(%v), want %v", got, want)
	}
	if a := b.cur.Load(); a.state != StateForcedOpen || a.gen != 4 || a.allowed {
		t.Fatalf("cached answer after forced_open = %+v", a)
	}

	// A closing event lets calls through at once, with no request.
	stub.chunks <- []byte("event: breaker.state\ndata: {\"name\":\"payments\",\"to\":\"closed\",\"generation\":5}\n\n")
	if got := <-changes; got.to != StateClosed {
		t.Fatalf("OnStateChange(%v), want closed", got)
	}
	if a := b.cur.Load(); !a.allowed || a.expires == 0 {
		t.Fatalf("cached answer after closed = %+v, want fresh and allowed", a)
	}

	// A close that starts a slow start admits the least share, and asks
	// for the share now at the next Allow.
	stub.chunks <- []byte("event: breaker.state\ndata: {\"name\":\"payments\",\"to\":\"forced_open\",\"generation\":6}\n\n")
	<-changes
	stub.chunks <- []byte("event: breaker.state\ndata: {\"name\":\"payments\",\"from\":\"half_open\",\"to\":\"closed\",\"generation\":7,\"slow_start_ms\":30000}\n\n")
	<-changes
	if a := b.cur.Load(); !a.allowed || a.ramp != 1 || a.gen != 7 {
		t.Fatalf("cached answer after a close with a slow start = %+v, want allowed at 1%%", a)
	}

	// A dropped stream reconnects, and every cached answer goes stale.
	stub.chunks <- nil
	select {
	case <-stub.streams:
	case <-time.After(5 * time.Second):
		t.Fatalf("no reconnect within 5s")
	}
	waitFor(t, 2*time.Second, "second stream counted", func() bool { return c.eventsEpoch.Load() == 2 })
	if a := b.cur.Load(); a.expires != 0 {
		t.Errorf("cached answer after a reconnect = %+v, want stale", a)
	}
	if len(changes) != 0 {
		t.Errorf("unexpected OnStateChange(%v)", <-changes)
	}

	// A limit's new config drops its leases: the capacity may have shrunk.
	l := c.Limiter("api").For("tenant-1")
	ls := &lease{granted: 50, expires: 1 << 62}
	ls.tokens.Store(50)
	l.lease.Store(ls)
	stub.chunks <- []byte("event: ratelimit.config\ndata: {\"name\":\"api\",\"at\":\"2026-11-27T10:00:00Z\"}\n\n")
	waitFor(t, 2*time.Second, "lease dropped", func() bool { return l.lease.Load() == nil })
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no endpoint", Config{}},
		{"not a URL", Config{Endpoints: []string{"10.0.0.1:8080"}}},
		{"negative lease size", Config{Endpoints: []string{"http://x"}, LeaseSize: -1}},
		{"fleet share above one", Config{Endpoints: []string{"http://x"}, FleetShare: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := New(tt.cfg); err == nil {
				c.Close()
				t.Errorf("New(%+v) = nil error, want one", tt.cfg)
			}
		})
	}
}

func TestSourceString(t *testing.T) {
	for s, want := range map[Source]string{SourceCache: "cache", SourceServer: "server", SourceDegraded: "degraded", 0: "unknown"} {
		if got := s.String(); got != want {
			t.Errorf("Source(%d).String() = %q, want %q", s, got, want)
		}
	}
}

// Answers about one open period can arrive out of order: an outcomes
// report's, decided when the breaker opened, after an acquire's decided
// later. The late one must not make the client wait longer than the
// fleet's breaker stays open; a new period (a later generation) is taken
// as it comes.
func TestBreakerKeepsTheEarliestEndOfAnOpenPeriod(t *testing.T) {
	c := newTestClient(t, Config{DisableEvents: true}, closedPort(t))
	b := c.Breaker("payments")
	now := c.clock.unixNano()
	b.apply(decision{State: "open", RetryAfterMS: 10_000, CacheTTLMS: 10_000, Generation: 4}, now) // the acquire's
	b.apply(decision{State: "open", RetryAfterMS: 30_000, CacheTTLMS: 30_000, Generation: 4}, now) // the report's, late
	var ra *RetryAfterError
	if _, err := b.Allow(context.Background()); !errors.As(err, &ra) || ra.After > 10*time.Second {
		t.Fatalf("Allow() after a late answer about the same open period = %v, want ErrOpen with a retry within 10s", err)
	}
	b.apply(decision{State: "open", RetryAfterMS: 30_000, CacheTTLMS: 30_000, Generation: 6}, now) // opened again
	if _, err := b.Allow(context.Background()); !errors.As(err, &ra) || ra.After <= 20*time.Second {
		t.Errorf("Allow() after the breaker opened again = %v, want ErrOpen with a retry after 20s", err)
	}
}

// TestBreakerConfigJSON checks that a breaker's config as the control
// plane returns it decodes over the defaults: missing fields keep them.
func TestBreakerConfigJSON(t *testing.T) {
	cfg := defaultBreakerConfig()
	body := `{"window": {"type": "count", "size": 50}, "consecutive_failures": 5}`
	if err := json.Unmarshal([]byte(body), &cfg); err != nil {
		t.Fatal(err)
	}
	want := defaultBreakerConfig()
	want.Window = breakerWindow{Type: "count", Size: 50}
	want.ConsecutiveFailures = 5
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("json.Unmarshal(%s) over the defaults: (-want +got)\n%s", body, diff)
	}
}
