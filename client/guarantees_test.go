package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// These tests hold the SDK to what a service relies on when things fail:
// decisions that are safe to retry, a re-created breaker followed, the
// control plane's refusals of service told from refusals of calls, an
// operator's override kept through an outage, and done funcs, panics and
// counters that cannot corrupt outcomes.

// sent is one request a recording control plane got.
type sent struct {
	method, path, key string
	body              string
}

// recorder is a control plane stub that records what the SDK sends and
// answers with its answer func.
type recorder struct {
	mu   sync.Mutex
	reqs []sent
}

func (rc *recorder) record(r *http.Request) sent {
	b, _ := io.ReadAll(r.Body)
	s := sent{method: r.Method, path: r.URL.Path, key: r.Header.Get("Idempotency-Key"), body: string(b)}
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, s)
	rc.mu.Unlock()
	return s
}

func (rc *recorder) sent(method, suffix string) []sent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []sent
	for _, s := range rc.reqs {
		if s.method == method && strings.HasSuffix(s.path, suffix) {
			out = append(out, s)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// validKey reports whether k is an Idempotency-Key the API accepts.
func validKey(k string) bool {
	if len(k) < 1 || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func TestDecisionRequestsCarryIdempotencyKeys(t *testing.T) {
	var rc recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.record(r)
		switch {
		case r.Method == http.MethodGet:
			http.NotFound(w, r)
		case strings.HasSuffix(r.URL.Path, "/take"):
			writeJSON(w, 200, takeResult{Allowed: true, Granted: 1})
		default:
			// A cache of 1 ms: every call acquires again.
			writeJSON(w, 200, decision{Allowed: true, State: "closed", CacheTTLMS: 1, Generation: 1})
		}
	}))
	defer srv.Close()
	c := newTestClient(t, Config{DisableEvents: true, FlushInterval: 5 * time.Millisecond, LeaseSize: 1}, srv.URL)
	b, l := c.Breaker("payments"), c.Limiter("api")
	for range 5 {
		calls(t, b, 1, succeed)
		time.Sleep(3 * time.Millisecond)
		if err := l.Take(context.Background()); err != nil {
			t.Fatalf("Allow() = %v", err)
		}
	}
	waitFor(t, 2*time.Second, "outcomes reported", func() bool { return len(rc.sent(http.MethodPost, "/outcomes")) > 0 })

	seen := map[string]string{}
	for _, op := range []string{"/acquire", "/outcomes", "/take"} {
		reqs := rc.sent(http.MethodPost, op)
		if len(reqs) == 0 {
			t.Fatalf("no POST %s sent", op)
		}
		for _, s := range reqs {
			if !validKey(s.key) {
				t.Errorf("POST %s Idempotency-Key = %q, want 1..128 printable ASCII characters", s.path, s.key)
			}
			if prev, dup := seen[s.key]; dup {
				t.Errorf("Idempotency-Key %q sent with POST %s and %s, want one per logical request", s.key, prev, s.path)
			}
			seen[s.key] = s.path
		}
	}
}

func TestReportRetriedOnTheNextEndpointWithTheSameKey(t *testing.T) {
	faults := []struct {
		name  string
		fault func(w http.ResponseWriter)
	}{
		{"503", func(w http.ResponseWriter) {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": 503, "detail": "store timed out"})
		}},
		{"2xx answer that does not decode", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"allowed": tru`))
		}},
		{"reply lost after the request was read", func(w http.ResponseWriter) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}},
	}
	for _, tt := range faults {
		t.Run(tt.name, func(t *testing.T) {
			var rc recorder
			var faulty atomic.Bool
			faulty.Store(true)
			handler := func(failing bool) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodGet {
						writeJSON(w, 200, map[string]any{"name": "payments", "config": defaultBreakerConfig(), "state": "closed", "generation": 1})
						return
					}
					s := rc.record(r)
					if failing && strings.HasSuffix(s.path, "/outcomes") && faulty.Load() {
						tt.fault(w)
						return
					}
					closed := decision{Allowed: true, State: "closed", CacheTTLMS: 60000, Generation: 1}
					if s.path == "/v1/outcomes" {
						var in struct{ Reports []json.RawMessage }
						json.Unmarshal([]byte(s.body), &in)
						results := make([]decision, len(in.Reports))
						for i := range results {
							results[i] = closed
						}
						writeJSON(w, 200, map[string]any{"results": results})
						return
					}
					writeJSON(w, 200, closed)
				})
			}
			bad := httptest.NewServer(handler(true))
			defer bad.Close()
			good := httptest.NewServer(handler(false))
			defer good.Close()
			// Only the Close of the client flushes: one report.
			c, err := New(Config{Endpoints: []string{bad.URL, good.URL}, DisableEvents: true, FlushInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			b := c.Breaker("payments")
			calls(t, b, 3, fail)
			waitFor(t, 2*time.Second, "config known", func() bool { return b.cfg.Load() != nil })
			// The round robin starts the report on either endpoint: make
			// the first one the failing one.
			c.cp.next.Store(0)
			if err := c.Close(); err != nil {
				t.Fatalf("Close() = %v, want the report retried and answered", err)
			}
			// net/http itself may resend a request with an
			// Idempotency-Key on a fresh connection first.
			reports := rc.sent(http.MethodPost, "/outcomes")
			if len(reports) < 2 {
				t.Fatalf("sent %d outcomes reports, want the first and its retry: %+v", len(reports), reports)
			}
			for _, r := range reports[1:] {
				if reports[0].key == "" || r.key != reports[0].key {
					t.Errorf("Idempotency-Keys of the report and its retry = %q, %q, want the same key", reports[0].key, r.key)
				}
				if r.body != reports[0].body {
					t.Errorf("retry body = %s, want the first's %s", r.body, reports[0].body)
				}
			}
		})
	}
}

func TestRecreatedBreakerIsFollowed(t *testing.T) {
	r := storetest.StartRedis(t)
	for _, events := range []bool{true, false} {
		name := map[bool]string{true: "breaker.deleted event", false: "404 without events"}[events]
		t.Run(name, func(t *testing.T) {
			p := startPlane(t, r)
			cfg := map[string]any{"cache_ttl_ms": 50, "window": map[string]any{"type": "count", "size": 100}, "minimum_calls": 100}
			p.putBreaker("orders", cfg)
			// Move the generation up: reset twice.
			p.do(http.MethodPost, "/v1/breakers/orders/reset", nil, nil)
			p.do(http.MethodPost, "/v1/breakers/orders/reset", nil, nil)
			c := newTestClient(t, Config{FlushInterval: 10 * time.Millisecond, DisableEvents: !events}, p.URL)
			b := c.Breaker("orders")
			if events {
				waitFor(t, 2*time.Second, "event stream up", c.eventsUp.Load)
			}
			calls(t, b, 1, succeed)
			waitFor(t, 2*time.Second, "first outcome counted", func() bool { return p.getBreaker("orders").Stats.Calls == 1 })
			old := b.cur.Load().gen

			p.do(http.MethodDelete, "/v1/breakers/orders", nil, nil, http.StatusNoContent)
			if events {
				waitFor(t, 2*time.Second, "the deletion learned", func() bool { return b.State() == StateNotFound })
			} else {
				// The report of this call meets the 404.
				time.Sleep(60 * time.Millisecond)
				calls(t, b, 1, succeed)
				waitFor(t, 2*time.Second, "the 404 learned", func() bool { return b.State() == StateNotFound })
			}
			p.putBreaker("orders", cfg)
			if g := p.getBreaker("orders").Generation; g > old {
				t.Logf("the control plane kept counting generations (%d after %d)", g, old)
			}
			// Past the unknown answer's cache: at once after the event,
			// unknownTTL after a 404.
			time.Sleep(60 * time.Millisecond)
			if !events {
				time.Sleep(unknownTTL)
			}
			calls(t, b, 7, fail)
			waitFor(t, 3*time.Second, "the new breaker's outcomes counted", func() bool {
				return p.getBreaker("orders").Stats.Calls == 7
			})
			if got := b.State(); got != StateClosed {
				t.Errorf("State() = %q after the breaker was made again, want closed", got)
			}
		})
	}
}

func TestAPICapIsAnOutageNotARefusal(t *testing.T) {
	var probes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			probes.Add(1)
		}
		w.Header().Set("Retry-After", "2")
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"status":429,"title":"Too Many Requests","detail":"token \"svc\" is over its API request rate; retry in 1200 ms"}`))
	}))
	defer srv.Close()
	c := newTestClient(t, Config{DisableEvents: true, DegradedProbeInterval: 20 * time.Millisecond}, srv.URL)
	b, l := c.Breaker("payments"), c.Limiter("api")

	if err := b.Do(context.Background(), succeed); err != nil {
		t.Errorf("Do() with the control plane over its API cap = %v, want the call made (degraded)", err)
	}
	if err := l.Take(context.Background()); err != nil {
		t.Errorf("Limiter.Take() with the control plane over its API cap = %v, want nil (degraded)", err)
	}
	if !c.Degraded() {
		t.Errorf("Degraded() = false after a 429 of the API cap, want true")
	}
	// Retry-After: 2 s; the probe interval of 20 ms must wait for it.
	time.Sleep(time.Second)
	if n := probes.Load(); n != 0 {
		t.Errorf("probed the control plane %d times within 1 s of Retry-After: 2, want 0", n)
	}
}

func TestForcedOpenHeldThroughAnOutage(t *testing.T) {
	r := storetest.StartRedis(t)
	tests := []struct {
		name  string
		ttlMS int64 // of the override; 0 never ends
	}{
		{"override that never ends", 0},
		{"override with a ttl", 2500}, // past the 900 ms of refusals below, on a busy machine
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startPlane(t, r)
			name := "pay" + map[bool]string{true: "ttl", false: "forever"}[tt.ttlMS > 0]
			p.putBreaker(name, map[string]any{"cache_ttl_ms": 100})
			// No events: the override is learned from an acquire's answer,
			// whose retry_after_ms is the cache_ttl_ms of 100 ms.
			c := newTestClient(t, Config{FlushInterval: 10 * time.Millisecond, DegradedProbeInterval: time.Hour, DisableEvents: true}, p.URL)
			b := c.Breaker(name)
			calls(t, b, 1, succeed)
			force := map[string]any{"state": "forced_open", "reason": "dependency cut off"}
			if tt.ttlMS > 0 {
				force["ttl_ms"] = tt.ttlMS
			}
			var forced struct {
				Override struct {
					ExpiresAt time.Time `json:"expires_at"`
				} `json:"override"`
			}
			p.do(http.MethodPut, "/v1/breakers/"+name+"/override", force, &forced)
			waitFor(t, 2*time.Second, "forced_open learned, with its end", func() bool {
				b.Allow(context.Background())
				ov := b.ovr.Load()
				return b.State() == StateForcedOpen && ov != nil && ov.state == StateForcedOpen
			})

			p.kill()
			if _, err := b.Allow(context.Background()); !errors.Is(err, ErrOpen) {
				t.Fatalf("Allow() forced open = %v, want ErrOpen", err)
			}
			// Past cache_ttl_ms, and again a while after the switch to
			// degraded mode: refused every time.
			for range 3 {
				time.Sleep(300 * time.Millisecond)
				if tt.ttlMS > 0 && time.Now().After(forced.Override.ExpiresAt.Add(-100*time.Millisecond)) {
					t.Fatalf("the override ended before the check; the machine is too slow for this ttl")
				}
				for range 5 {
					if _, err := b.Allow(context.Background()); !errors.Is(err, ErrOpen) {
						t.Fatalf("Allow() forced open, control plane gone, past cache_ttl_ms = %v, want ErrOpen", err)
					}
				}
			}
			if tt.ttlMS == 0 {
				if !c.Degraded() {
					t.Errorf("Degraded() = false with the control plane gone")
				}
				return
			}
			time.Sleep(time.Until(forced.Override.ExpiresAt.Add(200 * time.Millisecond)))
			if _, err := b.Allow(context.Background()); err != nil {
				t.Errorf("Allow() after the override's end, degraded = %v, want the call let through", err)
			}
		})
	}
}

func TestDoneTwiceIsANoop(t *testing.T) {
	srv := closedStub(t)
	c := newTestClient(t, Config{DisableEvents: true, FlushInterval: time.Hour}, srv.URL)
	b := c.Breaker("bench")
	calls(t, b, 1, succeed)
	b.pending()

	first, err := b.Allow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first(nil)
	second, err := b.Allow(context.Background()) // may get the first's tracker back
	if err != nil {
		t.Fatal(err)
	}
	first(errDown) // must touch nothing
	second(nil)
	second(errDown)

	var succeeded, failed int64
	for _, o := range b.pending() {
		if o.Success {
			succeeded += o.Count
		} else {
			failed += o.Count
		}
	}
	if succeeded != 2 || failed != 0 {
		t.Errorf("outcomes after done called twice on each of 2 calls: %d successes, %d failures, want 2 and 0", succeeded, failed)
	}
}

func TestPanicsStillCountTheOutcome(t *testing.T) {
	srv := closedStub(t)
	var panicky atomic.Bool
	c := newTestClient(t, Config{DisableEvents: true, FlushInterval: time.Hour, IsFailure: func(err error) bool {
		if panicky.Load() {
			panic("IsFailure bug")
		}
		return true
	}}, srv.URL)
	b := c.Breaker("bench")
	calls(t, b, 1, succeed)
	b.pending()

	tests := []struct {
		name      string
		isFailure bool // IsFailure panics
		fn        func(context.Context) error
	}{
		{"callback panics", false, func(context.Context) error { panic("callback bug") }},
		{"IsFailure panics", true, fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			panicky.Store(tt.isFailure)
			defer panicky.Store(false)
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("Do() returned, want the panic to go on up")
					}
				}()
				b.Do(context.Background(), tt.fn)
			}()
			outs := b.pending()
			if len(outs) != 1 || outs[0].Success || outs[0].Count != 1 {
				t.Errorf("outcomes after the panic = %+v, want one failure", outs)
			}
		})
	}
}

func TestRecordLargeCountsDoNotOverflow(t *testing.T) {
	srv := closedStub(t)
	c := newTestClient(t, Config{DisableEvents: true, FlushInterval: time.Hour}, srv.URL)
	b := c.Breaker("bench")
	calls(t, b, 1, succeed)
	waitFor(t, 2*time.Second, "config known", func() bool { return b.slowNS.Load() > 0 })
	b.pending()

	const n = 1_000_000
	day := 86_400_000 * time.Millisecond
	if err := b.Record(false, day, n); err != nil {
		t.Fatal(err)
	}
	if err := b.Record(false, day, n); err != nil {
		t.Fatal(err)
	}
	var got int64
	for _, o := range b.pending() {
		got += o.Count
		if o.DurationMS != 86_400_000 || o.Success {
			t.Errorf("entry %+v, want failures of 86400000 ms", o)
		}
	}
	if got != 2*n {
		t.Errorf("Record(false, 24h, %d) twice reported %d calls, want %d", n, got, 2*n)
	}
}

func TestForbiddenTokenIsAConfigurationError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			// The token may read: a probe with a read would succeed.
			writeJSON(w, 200, map[string]any{"name": "payments", "config": defaultBreakerConfig(), "state": "closed", "generation": 1})
			return
		}
		writeJSON(w, http.StatusForbidden, map[string]any{"status": 403, "detail": "role reader may not POST"})
	}))
	defer srv.Close()
	var logs bytes.Buffer
	var logMu sync.Mutex
	var switches atomic.Int32
	c := newTestClient(t, Config{
		DisableEvents:         true,
		DegradedProbeInterval: 10 * time.Millisecond,
		CacheTTL:              time.Millisecond,
		Logger:                slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, nil)),
		Hooks:                 Hooks{OnDegraded: func(bool) { switches.Add(1) }},
	}, srv.URL)
	b, l := c.Breaker("payments"), c.Limiter("api")
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if err := b.Do(context.Background(), succeed); err != nil {
			t.Fatalf("Do() with a token that may not decide = %v, want the call made", err)
		}
		if err := l.Take(context.Background()); err != nil {
			t.Fatalf("Limiter.Take() with a token that may not decide = %v, want nil", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if n := switches.Load(); n != 0 {
		t.Errorf("OnDegraded called %d times for a 403, want 0: a configuration error is not an outage", n)
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if n := strings.Count(out, "level=ERROR"); n != 1 || !strings.Contains(out, "403") {
		t.Errorf("log has %d error lines, want exactly 1 naming the 403:\n%s", n, out)
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestCloseClosesItsIdleConnections(t *testing.T) {
	srv := httptest.NewUnstartedServer(closedStub(t).Config.Handler)
	var open atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := New(Config{Endpoints: []string{srv.URL}, DisableEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	b := c.Breaker("bench")
	calls(t, b, 1, succeed)
	waitFor(t, 2*time.Second, "config known", func() bool { return b.slowNS.Load() > 0 })
	if open.Load() == 0 {
		t.Fatalf("no connection open before Close")
	}
	c.Close()
	waitFor(t, 5*time.Second, "the client's connections closed by Close", func() bool { return open.Load() == 0 })
}

func TestProbeDecidesAsTheClientDoes(t *testing.T) {
	// A replica that serves reads but fails every decision (its store
	// answers reads, not scripts): a read as the probe would end degraded
	// mode at once, and the next decision would start it again.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			writeJSON(w, 200, map[string]any{"name": "payments", "config": defaultBreakerConfig(), "state": "closed", "generation": 1})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": 503, "detail": "store: READONLY"})
	}))
	defer srv.Close()
	var switches atomic.Int32
	c := newTestClient(t, Config{
		DisableEvents:         true,
		DegradedProbeInterval: 10 * time.Millisecond,
		Hooks:                 Hooks{OnDegraded: func(bool) { switches.Add(1) }},
	}, srv.URL)
	b := c.Breaker("payments")
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		calls(t, b, 1, succeed)
		time.Sleep(2 * time.Millisecond)
	}
	if n := switches.Load(); n != 1 {
		t.Errorf("OnDegraded called %d times in 300 ms of failing decisions, want 1 (no flapping)", n)
	}

	// On a real control plane the probe is answered and applies nothing.
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("payments", map[string]any{"consecutive_failures": 1})
	c2 := newTestClient(t, Config{DisableEvents: true}, p.URL)
	c2.Breaker("payments")
	if !c2.probe() {
		t.Fatalf("probe() against a working control plane = false, want true")
	}
	if v := p.getBreaker("payments"); v.Stats.Calls != 0 || v.State != "closed" {
		t.Errorf("breaker after a probe: %d calls, state %s, want 0 calls and closed", v.Stats.Calls, v.State)
	}
}

func TestLowerGenerationFollowedOnceTheCacheIsStale(t *testing.T) {
	// A breaker deleted and made again while this client heard nothing of
	// it (no event stream, no 404 in between), on a control plane that
	// started its generation again: the new answers are followed once the
	// cached one has expired.
	var gen atomic.Int64
	gen.Store(5)
	var rc recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			writeJSON(w, 200, map[string]any{"name": "orders", "config": defaultBreakerConfig(), "state": "closed", "generation": gen.Load()})
			return
		}
		rc.record(r)
		writeJSON(w, 200, decision{Allowed: true, State: "closed", CacheTTLMS: 20, Generation: gen.Load()})
	}))
	defer srv.Close()
	c := newTestClient(t, Config{DisableEvents: true, FlushInterval: 5 * time.Millisecond}, srv.URL)
	b := c.Breaker("orders")
	calls(t, b, 1, succeed)
	gen.Store(1)
	time.Sleep(40 * time.Millisecond)
	calls(t, b, 1, succeed) // asks again: generation 1
	calls(t, b, 3, fail)
	waitFor(t, 2*time.Second, "the failures reported in generation 1", func() bool {
		for _, s := range rc.sent(http.MethodPost, "/outcomes") {
			if strings.Contains(s.body, `"success":false`) && strings.Contains(s.body, `"generation":1`) {
				return true
			}
		}
		return false
	})
}
