package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/audit"
	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/events"
	"github.com/breakwater-dev/breakwater/internal/fault"
	"github.com/breakwater-dev/breakwater/internal/httpapi"
	"github.com/breakwater-dev/breakwater/internal/jsonapi"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// upstream is a dependency the test can break, counting its calls.
type upstream struct {
	srv   *httptest.Server
	calls atomic.Int64
	fail  atomic.Bool
	slow  atomic.Bool // answer after 300 ms
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		if u.slow.Load() {
			time.Sleep(300 * time.Millisecond)
		}
		if u.fail.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/stream") {
			fl := w.(http.Flusher)
			for i := range 3 {
				io.WriteString(w, "chunk"+string(rune('0'+i))+"\n")
				fl.Flush()
				time.Sleep(20 * time.Millisecond)
			}
			return
		}
		if strings.HasSuffix(r.URL.Path, "/teapot") {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		io.WriteString(w, "ok "+r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// controlPlane is a real control plane over a real Redis, served by httptest.
type controlPlane struct {
	srv *httptest.Server
	api *httpapi.API
}

func startControlPlane(t testing.TB, st *store.Store) *controlPlane {
	t.Helper()
	api := httpapi.New(httpapi.Options{Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Faults: fault.NewService(st), Store: st,
		Events: events.NewService(st), Audit: audit.New(st, nil)})
	srv := httptest.NewServer(api)
	t.Cleanup(func() { api.Close(); srv.Close() })
	return &controlPlane{srv: srv, api: api}
}

func (cp *controlPlane) do(t *testing.T, method, path, body string) {
	t.Helper()
	req, _ := http.NewRequest(method, cp.srv.URL+path, strings.NewReader(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode >= 300 {
		t.Fatalf("%s %s = %d %s", method, path, res.StatusCode, b)
	}
}

// startAgent calls run with args and waits until it listens.
func startAgent(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), func(string) string { return "" }, io.Discard, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("agent did not stop")
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "listening" {
				addr <- m["addr"].(string)
			}
		}
	}()
	select {
	case a := <-addr:
		url := "http://" + a
		deadline := time.Now().Add(10 * time.Second)
		for {
			if res, err := http.Get(url + "/readyz"); err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					return url
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("agent not ready within 10s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	case err := <-done:
		t.Fatalf("agent exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not listen within 10s")
	}
	return ""
}

type answer struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, url string) answer {
	t.Helper()
	return send(t, "GET", url, "")
}

func send(t *testing.T, method, url, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, string(b)}
}

// TestAgentProxy: the agent trips on upstream failures, fails fast without
// calling the upstream, and recovers through one probe.
func TestAgentProxy(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	up := newUpstream(t)
	cp.do(t, "PUT", "/v1/breakers/pay", `{"minimum_calls":5,"open_duration_ms":2000,"cache_ttl_ms":200}`)
	agent := startAgent(t, "--controlplane", cp.srv.URL, "--route", "pay="+up.srv.URL+"/base", "--route-attempts", "1")

	if a := get(t, agent+"/pay/orders/7?x=1"); a.status != 200 || a.body != "ok GET /base/orders/7?x=1" {
		t.Fatalf("proxied GET = %d %q", a.status, a.body)
	}
	if a := get(t, agent+"/pay/teapot"); a.status != http.StatusTeapot {
		t.Fatalf("4xx passes through: got %d", a.status)
	}
	if a := get(t, agent+"/nope/x"); a.status != 404 || a.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unknown route = %d %s, want a 404 problem", a.status, a.header.Get("Content-Type"))
	}
	if a := get(t, agent+"/pay/stream"); a.body != "chunk0\nchunk1\nchunk2\n" {
		t.Fatalf("streamed body = %q", a.body)
	}

	up.fail.Store(true)
	for range 10 {
		get(t, agent+"/pay/x")
	}
	// The agent reports in batches: within a flush or two the fleet's breaker opens.
	deadline := time.Now().Add(3 * time.Second)
	for {
		before := up.calls.Load()
		a := get(t, agent+"/pay/x")
		if a.status == http.StatusServiceUnavailable && a.header.Get("Content-Type") == "application/problem+json" {
			if up.calls.Load() != before {
				t.Fatal("an open circuit still called the upstream")
			}
			if a.header.Get("Retry-After") == "" {
				t.Error("open circuit answer has no Retry-After")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("circuit not open 3s after failures; last answer %d %s", a.status, a.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := up.calls.Load()
	for range 20 {
		get(t, agent+"/pay/x")
	}
	if n := up.calls.Load() - before; n != 0 {
		t.Fatalf("while open, the upstream got %d calls, want 0", n)
	}

	up.fail.Store(false)
	up.slow.Store(true)                 // the probe is still out when the others ask
	time.Sleep(2100 * time.Millisecond) // open_duration_ms
	var wg sync.WaitGroup
	var ok atomic.Int64
	before = up.calls.Load()
	for range 10 { // ten callers at once: one probe goes through
		wg.Go(func() {
			if get(t, agent+"/pay/x").status == 200 {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	up.slow.Store(false)
	if probes := up.calls.Load() - before; probes != 1 || ok.Load() != 1 {
		t.Fatalf("half-open: upstream got %d calls, %d callers served; want exactly one probe", probes, ok.Load())
	}
	deadline = time.Now().Add(3 * time.Second)
	for get(t, agent+"/pay/x").status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("breaker did not close after a good probe")
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := get(t, agent+"/metrics").body
	for _, want := range []string{`breakwater_client_decisions_total{kind="breaker",name="pay"`, `breakwater_client_breaker_state_changes_total{breaker="pay",from="closed",to="open"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("agent /metrics lacks %s", want)
		}
	}
}

// TestAgentRateLimit: a limited route answers 429 with Retry-After without
// calling the upstream.
func TestAgentRateLimit(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	up := newUpstream(t)
	cp.do(t, "PUT", "/v1/ratelimits/search", `{"capacity":3,"refill_per_second":0.01}`)
	agent := startAgent(t, "--controlplane", cp.srv.URL, "--route", "search="+up.srv.URL)
	codes := map[int]int{}
	var limited answer
	for range 8 {
		a := get(t, agent+"/search/q")
		codes[a.status]++
		if a.status == http.StatusTooManyRequests {
			limited = a
		}
	}
	if codes[200] > 3 || codes[429] == 0 {
		t.Fatalf("answers %v: want at most 3 through and the rest 429", codes)
	}
	if up.calls.Load() != int64(codes[200]) {
		t.Errorf("upstream got %d calls for %d answered 200", up.calls.Load(), codes[200])
	}
	if limited.header.Get("Retry-After") == "" || limited.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("429 answer %v: want a problem with Retry-After", limited.header)
	}
}

// TestAgentDecisionEndpoints: the contract's decision endpoints, answered
// from the SDK's cache.
func TestAgentDecisionEndpoints(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	cp.do(t, "PUT", "/v1/breakers/inv", `{"minimum_calls":4}`)
	cp.do(t, "PUT", "/v1/ratelimits/inv", `{"capacity":2,"refill_per_second":0.01}`)
	agent := startAgent(t, "--controlplane", cp.srv.URL)

	var d contract.Decision
	a := send(t, "POST", agent+"/v1/breakers/inv/acquire", "")
	json.Unmarshal([]byte(a.body), &d)
	if !d.Allowed || d.Permit == "" || d.State != "closed" {
		t.Fatalf("acquire = %d %s", a.status, a.body)
	}
	a = send(t, "POST", agent+"/v1/breakers/inv/outcomes", `{"outcomes":[{"success":false,"permit":"`+d.Permit+`"},{"success":false,"duration_ms":5,"count":5}]}`)
	if a.status != 200 {
		t.Fatalf("outcomes = %d %s", a.status, a.body)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		json.Unmarshal([]byte(send(t, "POST", agent+"/v1/breakers/inv/acquire", "").body), &d)
		if !d.Allowed && d.State == "open" && d.RetryAfterMS > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("breaker not open through the agent 3s after 6 failures: %+v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var tr contract.TakeResult
	granted := 0
	for range 4 {
		json.Unmarshal([]byte(send(t, "POST", agent+"/v1/ratelimits/inv/take", `{"key":"k1"}`).body), &tr)
		if tr.Allowed {
			granted++
		}
	}
	if granted != 2 || tr.RetryAfterMS <= 0 {
		t.Fatalf("4 takes on capacity 2 granted %d, last %+v; want 2 and a retry", granted, tr)
	}
	// The agent checks what the control plane checks, and says so in the
	// same words (detail, when given, is the whole of it).
	for _, bad := range []struct{ path, body, field, detail string }{
		{"/v1/breakers/in%7Bv/acquire", "", "name", "name: must match " + contract.NamePattern},
		{"/v1/breakers/inv/outcomes", `{"outcomes":[{"duration_ms":3}]}`, "outcomes[0].success", "outcomes[0].success: required"},
		{"/v1/breakers/inv/outcomes", `{"outcomes":[{"success":true,"bogus":1}]}`, "outcomes[0].bogus", ""},
		{"/v1/breakers/inv/outcomes", `{"outcomes":[]}`, "outcomes", "outcomes: must hold 1 to 1000 entries, got 0"},
		{"/v1/breakers/inv/outcomes", `{"outcomes":[{"success":true,"count":1000001}]}`, "outcomes[0].count", "outcomes[0].count: must be between 1 and 1000000, got 1000001"},
		{"/v1/breakers/inv/outcomes", `{"outcomes":[{"success":true,"generation":-3}]}`, "outcomes[0].generation", ""},
		{"/v1/breakers/inv/outcomes", `{"outcomes":[{"success":false,"count":2,"retries":3}]}`, "outcomes[0].retries", "outcomes[0].retries: must be between 0 and count (2), got 3"},
		{"/v1/ratelimits/inv/take", `{"tokens":0}`, "tokens", "tokens: must be between 1 and the limit's capacity, got 0"},
		{"/v1/ratelimits/inv/take", `{"tokens":1000000001}`, "tokens", "tokens: must be between 1 and the limit's capacity, got 1000000001"},
		{"/v1/ratelimits/inv/take", `{"key":"` + strings.Repeat("é", 129) + `"}`, "key", "key: must be at most 256 bytes, got 258"},
	} {
		a := send(t, "POST", agent+bad.path, bad.body)
		var p jsonapi.Problem
		json.Unmarshal([]byte(a.body), &p)
		if a.status != 400 || p.Field != bad.field || (bad.detail != "" && p.Detail != bad.detail) {
			t.Errorf("POST %s %s = %d %+v, want 400 naming %s: %q", bad.path, bad.body, a.status, p, bad.field, bad.detail)
		}
	}
}

// TestAgentControlPlaneGone: with the control plane killed mid-traffic the
// agent keeps serving, deciding locally.
func TestAgentControlPlaneGone(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	up := newUpstream(t)
	cp.do(t, "PUT", "/v1/breakers/pay", `{"minimum_calls":5,"cache_ttl_ms":100}`)
	agent := startAgent(t, "--controlplane", cp.srv.URL, "--route", "pay="+up.srv.URL, "--route-attempts", "1")
	for range 5 {
		if a := get(t, agent+"/pay/x"); a.status != 200 {
			t.Fatalf("before: %d %s", a.status, a.body)
		}
	}
	cp.srv.CloseClientConnections()
	cp.srv.Close()
	storetest.HoldPort(t, strings.TrimPrefix(cp.srv.URL, "http://"))
	for i := range 50 { // over 0.5 s: the cached answers (100 ms) expire
		if a := get(t, agent+"/pay/x"); a.status != 200 {
			t.Fatalf("call %d with the control plane gone = %d %s, want the upstream's 200", i, a.status, a.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a := get(t, agent+"/readyz"); a.status != 200 || !strings.Contains(a.body, "degraded") {
		t.Errorf("/readyz = %d %s, want ready and degraded", a.status, a.body)
	}
	// Local decisions still protect: failures open the local breaker.
	up.fail.Store(true)
	opened := false
	for range 150 { // the window still holds the 50 good calls
		if a := get(t, agent+"/pay/x"); a.status == http.StatusServiceUnavailable && a.header.Get("Content-Type") == "application/problem+json" {
			opened = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !opened {
		t.Fatal("failures with the control plane gone never opened the local breaker")
	}
}

func TestAgentConfig(t *testing.T) {
	none := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--controlplane"},
		{[]string{"--controlplane", "http://x", "--listen", "0.0.0.0:8090"}, "not a loopback"},
		{[]string{"--controlplane", "http://x", "--route", "pay"}, "NAME=UPSTREAM_URL"},
		{[]string{"--controlplane", "http://x", "--route", "pa{y}=http://u"}, "must match"},
		{[]string{"--controlplane", "http://x", "--route", "pay=ftp://u"}, "http(s) URL"},
		{[]string{"--controlplane", "http://x", "--route", "pay=http://u", "--route", "pay=http://v"}, "twice"},
	} {
		_, err := parseConfig(tc.args, none, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	env := map[string]string{"BREAKWATER_CONTROLPLANE": "http://a, http://b", "BREAKWATER_TOKEN": "t", "BREAKWATER_AGENT_LISTEN": "127.0.0.1:9", "BREAKWATER_AGENT_INSECURE_LISTEN": "true"}
	c, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || len(c.ControlPlanes) != 2 || c.Token != "t" || c.Listen != "127.0.0.1:9" || !c.InsecureListen {
		t.Errorf("from env: %+v, %v", c, err)
	}
}
