package client

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// serveHealth asks h for the service's health as a load balancer would,
// and decodes the answer.
func serveHealth(t *testing.T, h http.Handler) (int, HealthReport) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET /health Content-Type = %q, want application/json", ct)
	}
	var rep HealthReport
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("GET /health: decode %s: %v", rec.Body, err)
	}
	return rec.Code, rep
}

// healthSummary is the part of a report a load balancer and an operator
// read first.
type healthSummary struct {
	Code     int
	Status   string
	Down     []string
	Degraded []string
	Degrade  bool
}

func summarize(code int, rep HealthReport) healthSummary {
	return healthSummary{Code: code, Status: rep.Status, Down: rep.Down, Degraded: rep.Degraded, Degrade: rep.DegradedMode}
}

// TestHealthHandler walks dependencies through trips, overrides and
// resets, and checks that the service is down (503) exactly while a
// critical dependency's breaker refuses calls, and degraded (200, the
// dependency listed) while an optional one does.
func TestHealthHandler(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	trips := map[string]any{"consecutive_failures": 1, "open_duration_ms": 60000}
	for _, name := range []string{"payments", "recs", "search"} {
		p.putBreaker(name, trips)
	}
	c := newTestClient(t, Config{FlushInterval: 10 * time.Millisecond}, p.URL)
	h := c.HealthHandler(Critical("payments"), Optional("recs"), Critical("search"), Optional("unseen"), Optional("recs"))
	payments, recs, search := c.Breaker("payments"), c.Breaker("recs"), c.Breaker("search")
	for _, b := range []*Breaker{payments, recs, search} {
		calls(t, b, 1, succeed)
	}
	waitFor(t, 2*time.Second, "event stream up", c.eventsUp.Load)

	check := func(step string, want healthSummary) {
		t.Helper()
		if diff := cmp.Diff(want, summarize(serveHealth(t, h))); diff != "" {
			t.Errorf("%s: GET /health mismatch (-want +got):\n%s", step, diff)
		}
	}
	none := []string{}
	check("all closed", healthSummary{Code: 200, Status: "ok", Down: none, Degraded: none})
	_, rep := serveHealth(t, h)
	wantDeps := []DependencyHealth{
		{Name: "payments", Critical: true, State: "closed", Source: "control_plane", Status: "ok"},
		{Name: "recs", State: "closed", Source: "control_plane", Status: "ok"},
		{Name: "search", Critical: true, State: "closed", Source: "control_plane", Status: "ok"},
		{Name: "unseen", State: "unknown", Source: "none", Status: "ok"},
	}
	if diff := cmp.Diff(wantDeps, rep.Dependencies); diff != "" {
		t.Errorf("dependencies mismatch (-want +got):\n%s", diff)
	}

	calls(t, recs, 1, fail)
	waitFor(t, 2*time.Second, "recs open", func() bool { return recs.State() == StateOpen })
	check("optional open", healthSummary{Code: 200, Status: "degraded", Down: none, Degraded: []string{"recs"}})

	p.do(http.MethodPut, "/v1/breakers/search/override", map[string]any{"state": "forced_open", "reason": "drill"}, nil)
	waitFor(t, 2*time.Second, "search forced open", func() bool { return search.State() == StateForcedOpen })
	check("critical forced open", healthSummary{Code: 503, Status: "down", Down: []string{"search"}, Degraded: []string{"recs"}})

	p.do(http.MethodPut, "/v1/breakers/search/override", map[string]any{"state": "forced_closed", "reason": "drill"}, nil)
	waitFor(t, 2*time.Second, "search forced closed", func() bool { return search.State() == StateForcedClosed })
	p.do(http.MethodPost, "/v1/breakers/recs/reset", nil, nil)
	waitFor(t, 2*time.Second, "recs closed", func() bool { return recs.State() == StateClosed })
	check("forced closed and reset", healthSummary{Code: 200, Status: "ok", Down: none, Degraded: none})

	calls(t, payments, 1, fail)
	waitFor(t, 2*time.Second, "payments open", func() bool { return payments.State() == StateOpen })
	check("critical open", healthSummary{Code: 503, Status: "down", Down: []string{"payments"}, Degraded: none})
}

// TestHealthHandlerMakesNoNetworkCall counts the control plane's
// requests while the health endpoint is asked again and again, with every
// cached answer long expired: it must not ask the control plane.
func TestHealthHandlerMakesNoNetworkCall(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("payments", map[string]any{"cache_ttl_ms": 1})
	p.putBreaker("recs", map[string]any{"cache_ttl_ms": 1})
	c := newTestClient(t, Config{FlushInterval: 5 * time.Millisecond, DisableEvents: true}, p.URL)
	calls(t, c.Breaker("payments"), 3, succeed)
	h := c.HealthHandler(Critical("payments"), Optional("recs"), Critical("never-called"))
	// Wait until the outcomes are reported and nothing more is sent.
	var before int64
	waitFor(t, 5*time.Second, "the client quiet", func() bool {
		n := p.requests.Load()
		time.Sleep(50 * time.Millisecond) // ten flush intervals
		before = p.requests.Load()
		return n == before && p.getBreaker("payments").Stats.Calls == 3
	})
	before = p.requests.Load() // getBreaker above is the test's own request

	for range 200 {
		if code, rep := serveHealth(t, h); code != 200 || rep.Status != "ok" {
			t.Fatalf("GET /health = %d %q, want 200 ok", code, rep.Status)
		}
	}
	time.Sleep(50 * time.Millisecond) // anything the handler set off would be sent by now
	if got := p.requests.Load(); got != before {
		t.Errorf("control plane requests after 200 health checks = %d, want %d (no network call); by route: %v", got, before, p.routes())
	}
}

// TestHealthHandlerDegradedMode: with no control plane, the report says
// the client decides locally; a critical dependency that fails closed
// then refuses every call, so the service is down.
func TestHealthHandlerDegradedMode(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("payments", map[string]any{})
	p.putBreaker("recs", map[string]any{})
	cfg := Config{FlushInterval: 10 * time.Millisecond, DegradedProbeInterval: time.Hour}
	open := newTestClient(t, cfg, p.URL)
	cfg.FailClosedFor = func(kind, name string) bool { return name == "payments" }
	closed := newTestClient(t, cfg, p.URL)
	for _, c := range []*Client{open, closed} {
		calls(t, c.Breaker("payments"), 1, succeed)
		calls(t, c.Breaker("recs"), 1, succeed)
	}

	p.kill()
	for _, c := range []*Client{open, closed} {
		waitFor(t, 5*time.Second, "degraded", func() bool {
			c.Breaker("recs").Do(t.Context(), succeed)
			return c.Degraded()
		})
	}
	none := []string{}
	for _, tt := range []struct {
		name string
		c    *Client
		want healthSummary
		deps []DependencyHealth
	}{
		{"fails open", open, healthSummary{Code: 200, Status: "degraded", Down: none, Degraded: none, Degrade: true}, []DependencyHealth{
			{Name: "payments", Critical: true, State: "closed", Source: "local", Status: "ok"},
			{Name: "recs", State: "closed", Source: "local", Status: "ok"},
		}},
		{"fails closed", closed, healthSummary{Code: 503, Status: "down", Down: []string{"payments"}, Degraded: none, Degrade: true}, []DependencyHealth{
			{Name: "payments", Critical: true, State: "closed", Source: "fail_closed", Status: "down"},
			{Name: "recs", State: "closed", Source: "local", Status: "ok"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, rep := serveHealth(t, tt.c.HealthHandler(Critical("payments"), Optional("recs")))
			if diff := cmp.Diff(tt.want, summarize(code, rep)); diff != "" {
				t.Errorf("GET /health mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.deps, rep.Dependencies); diff != "" {
				t.Errorf("dependencies mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHealthHandlerMethods(t *testing.T) {
	c := newTestClient(t, Config{DisableEvents: true}, closedPort(t))
	h := c.HealthHandler(Critical("payments"))
	for _, tt := range []struct {
		method string
		code   int
		body   bool
		allow  string
	}{
		{http.MethodGet, 200, true, ""},
		{http.MethodHead, 200, false, ""},
		{http.MethodPost, 405, true, "GET, HEAD"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, "/health", nil))
		if rec.Code != tt.code || (rec.Body.Len() > 0) != tt.body || rec.Header().Get("Allow") != tt.allow {
			t.Errorf("%s /health = %d, body %q, Allow %q; want %d, body %v, Allow %q",
				tt.method, rec.Code, rec.Body, rec.Header().Get("Allow"), tt.code, tt.body, tt.allow)
		}
	}
	if c.Degraded() {
		t.Errorf("Degraded() = true after health checks alone, want false: the handler must not ask the control plane")
	}
}
