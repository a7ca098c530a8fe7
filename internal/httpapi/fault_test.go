package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestRedisStopped kills redis-server under a serving control plane: every
// store-backed request answers a 503 problem, /healthz stays 200, and the
// same server recovers by itself when Redis is back.
func TestRedisStopped(t *testing.T) {
	r := storetest.StartRedis(t)
	ta := serveAPI(t, r.Open(t), nil)
	if res := ta.do("PUT", "/v1/breakers/pay", `{}`, ""); res.Status != http.StatusCreated {
		t.Fatalf("PUT = %d %s", res.Status, res.Body)
	}
	ta.do("PUT", "/v1/ratelimits/api", `{"capacity":5,"refill_per_second":1}`, "")

	r.Stop()
	requests := []struct{ method, path, body string }{
		{"GET", "/readyz", ""},
		{"GET", "/v1/breakers", ""},
		{"GET", "/v1/breakers/pay", ""},
		{"PUT", "/v1/breakers/pay", `{}`},
		{"POST", "/v1/breakers/pay/acquire", ""},
		{"POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":false}]}`},
		{"PUT", "/v1/breakers/pay/override", `{"state":"forced_open","reason":"x"}`},
		{"DELETE", "/v1/breakers/pay/override", ""},
		{"POST", "/v1/breakers/pay/reset", ""},
		{"DELETE", "/v1/breakers/pay", ""},
		{"GET", "/v1/ratelimits", ""},
		{"GET", "/v1/ratelimits/api?key=k", ""},
		{"PUT", "/v1/ratelimits/api", `{"capacity":5,"refill_per_second":1}`},
		{"POST", "/v1/ratelimits/api/take", `{"key":"k"}`},
		{"DELETE", "/v1/ratelimits/api", ""},
		{"GET", "/v1/audit", ""},
	}
	for _, rq := range requests {
		res := ta.do(rq.method, rq.path, rq.body, "")
		if res.Status != http.StatusServiceUnavailable {
			t.Errorf("%s %s with Redis down = %d %s, want 503", rq.method, rq.path, res.Status, res.Body)
			continue
		}
		if p := res.Problem(t); p.Status != 503 || res.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: problem %+v, Retry-After %q; want a 503 problem with Retry-After", rq.method, rq.path, p, res.Header.Get("Retry-After"))
		}
	}
	// Bad input is still bad input, not an outage.
	if res := ta.do("PUT", "/v1/breakers/pay", `{"minimum_calls":0}`, ""); res.Status != http.StatusBadRequest {
		t.Errorf("bad PUT with Redis down = %d, want 400", res.Status)
	}
	if res := ta.do("GET", "/healthz", "", ""); res.Status != http.StatusOK {
		t.Errorf("/healthz with Redis down = %d, want 200", res.Status)
	}

	r.Start() // an empty Redis on the same port: no data, no scripts loaded
	deadline := time.Now().Add(10 * time.Second)
	for ta.do("GET", "/readyz", "", "").Status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz not 200 within 10s of Redis coming back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res := ta.do("PUT", "/v1/breakers/pay", `{}`, ""); res.Status != http.StatusCreated {
		t.Fatalf("PUT after recovery = %d %s, want 201", res.Status, res.Body)
	}
	var d breaker.Decision
	ta.do("POST", "/v1/breakers/pay/acquire", nil, "").JSON(t, &d)
	if !d.Allowed {
		t.Fatalf("acquire after recovery = %+v, want allowed", d)
	}
	ta.do("PUT", "/v1/ratelimits/api", `{"capacity":5,"refill_per_second":1}`, "")
	if res := ta.do("POST", "/v1/ratelimits/api/take", `{}`, ""); res.Status != http.StatusOK {
		t.Fatalf("take after recovery = %d %s, want 200", res.Status, res.Body)
	}
}

// TestRedisFrozen stops redis-server with SIGSTOP: it keeps its sockets but
// answers nothing. Requests must end with 503 within the store's deadline,
// not hang.
func TestRedisFrozen(t *testing.T) {
	r := storetest.StartRedis(t)
	st, err := store.Open(store.Config{URL: r.URL(), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ta := serveAPI(t, st, nil)
	ta.do("PUT", "/v1/breakers/pay", `{}`, "")

	r.Freeze()
	defer r.Thaw()
	start := time.Now()
	res := ta.do("POST", "/v1/breakers/pay/acquire", nil, "")
	took := time.Since(start)
	if res.Status != http.StatusServiceUnavailable {
		t.Fatalf("acquire with Redis frozen = %d %s, want 503", res.Status, res.Body)
	}
	if took > 5*time.Second {
		t.Errorf("acquire with Redis frozen took %v; the store deadline is 300ms", took)
	}
	if res := ta.do("GET", "/readyz", "", ""); res.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis frozen = %d, want 503", res.Status)
	}
	r.Thaw()
	deadline := time.Now().Add(10 * time.Second)
	for ta.do("POST", "/v1/breakers/pay/acquire", nil, "").Status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("acquire not 200 within 10s of Redis thawing")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadyzRunsAScript: a flushed script cache is reloaded and works; a
// Redis that answers PING but cannot run scripts is not ready.
func TestReadyzRunsAScript(t *testing.T) {
	r := storetest.StartRedis(t)
	ta := serveAPI(t, r.Open(t), nil)
	ta.do("PUT", "/v1/breakers/pay", `{}`, "")
	if got := r.Do("SCRIPT", "FLUSH"); got != "+OK" {
		t.Fatalf("SCRIPT FLUSH = %q", got)
	}
	if res := ta.do("GET", "/readyz", "", ""); res.Status != http.StatusOK {
		t.Fatalf("/readyz after SCRIPT FLUSH = %d, want 200 (scripts reload)", res.Status)
	}
	if res := ta.do("POST", "/v1/breakers/pay/acquire", nil, ""); res.Status != http.StatusOK {
		t.Fatalf("acquire after SCRIPT FLUSH = %d %s, want 200", res.Status, res.Body)
	}

	// A Redis whose scripting commands are disabled still answers PING.
	noScripts := startRedisArgs(t, "--rename-command", "EVALSHA", "", "--rename-command", "EVAL", "")
	ta2 := serveAPI(t, noScripts.Open(t), nil)
	if got := noScripts.Do("PING"); got != "+PONG" {
		t.Fatalf("PING = %q", got)
	}
	if res := ta2.do("GET", "/readyz", "", ""); res.Status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz on a Redis without scripting = %d, want 503", res.Status)
	}
}

// startRedisArgs starts a redis-server with extra arguments.
func startRedisArgs(t *testing.T, args ...string) *storetest.Redis {
	t.Helper()
	return storetest.StartRedisWith(t, args...)
}
