package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/jsonapi"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// sendKey POSTs body to url with an Idempotency-Key (none when key is "").
func sendKey(t *testing.T, url, key, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if key != "" {
		req.Header.Set(idempotencyKeyHeader, key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, string(b)}
}

// A caller that retries a decision with its Idempotency-Key gets the first
// answer again, marked replayed, and nothing is applied twice: an outcome
// is counted once, a token spent once, a permit handed out once.
func TestAgentIdempotentDecisions(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	cp.do(t, "PUT", "/v1/breakers/inv", `{"minimum_calls":1000}`)
	cp.do(t, "PUT", "/v1/ratelimits/inv", `{"capacity":2,"refill_per_second":0.001}`)
	agent := startAgent(t, "--controlplane", cp.srv.URL)

	t.Run("outcomes", func(t *testing.T) {
		report := `{"outcomes":[{"success":false,"duration_ms":5,"count":7}]}`
		first := sendKey(t, agent+"/v1/breakers/inv/outcomes", "report-1", report)
		if first.status != 200 || first.header.Get(replayedHeader) != "" {
			t.Fatalf("first report = %d %s (replayed %q), want 200, not replayed", first.status, first.body, first.header.Get(replayedHeader))
		}
		// The same value written another way is the same request.
		again := sendKey(t, agent+"/v1/breakers/inv/outcomes", "report-1", `{ "outcomes": [ {"count":7, "duration_ms":5, "success":false} ] }`)
		if again.status != first.status || again.body != first.body || again.header.Get(replayedHeader) != "true" {
			t.Errorf("repeated report = %d %s (replayed %q), want the first answer %d %s, replayed", again.status, again.body, again.header.Get(replayedHeader), first.status, first.body)
		}
		// A marker without a key: once it is counted, so is anything
		// recorded before it.
		if a := sendKey(t, agent+"/v1/breakers/inv/outcomes", "", `{"outcomes":[{"success":true}]}`); a.status != 200 {
			t.Fatalf("marker report = %d %s", a.status, a.body)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			var v struct {
				Stats struct{ Calls, Failures int64 }
			}
			json.Unmarshal([]byte(get(t, cp.srv.URL+"/v1/breakers/inv").body), &v)
			if v.Stats.Calls >= 8 {
				if v.Stats.Calls != 8 || v.Stats.Failures != 7 {
					t.Errorf("control plane counted %d calls, %d failures; want 8, 7: the repeat was applied", v.Stats.Calls, v.Stats.Failures)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("control plane counted %+v within 10s, want 8 calls", v.Stats)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("acquire", func(t *testing.T) {
		first := sendKey(t, agent+"/v1/breakers/inv/acquire", "acq-1", "")
		again := sendKey(t, agent+"/v1/breakers/inv/acquire", "acq-1", "")
		var d1, d2 contract.Decision
		json.Unmarshal([]byte(first.body), &d1)
		json.Unmarshal([]byte(again.body), &d2)
		if !d1.Allowed || d1.Permit == "" {
			t.Fatalf("acquire = %d %s, want a permit", first.status, first.body)
		}
		if d2.Permit != d1.Permit || again.header.Get(replayedHeader) != "true" {
			t.Errorf("repeated acquire = %s (replayed %q), want the first permit %q again, replayed", again.body, again.header.Get(replayedHeader), d1.Permit)
		}
		other := sendKey(t, agent+"/v1/breakers/inv/acquire", "acq-2", "")
		var d3 contract.Decision
		json.Unmarshal([]byte(other.body), &d3)
		if d3.Permit == "" || d3.Permit == d1.Permit || other.header.Get(replayedHeader) != "" {
			t.Errorf("acquire with another key = %s (replayed %q), want a new permit", other.body, other.header.Get(replayedHeader))
		}
	})

	t.Run("take", func(t *testing.T) {
		url := agent + "/v1/ratelimits/inv/take"
		for i := range 3 {
			a := sendKey(t, url, "take-1", `{"key":"k1"}`)
			var tr contract.TakeResult
			json.Unmarshal([]byte(a.body), &tr)
			wantReplayed := map[bool]string{false: "", true: "true"}[i > 0]
			if !tr.Allowed || a.header.Get(replayedHeader) != wantReplayed {
				t.Fatalf("take %d with one key = %d %s (replayed %q), want allowed, replayed %q", i, a.status, a.body, a.header.Get(replayedHeader), wantReplayed)
			}
		}
		// Capacity 2: one token is left, not none.
		var tr contract.TakeResult
		json.Unmarshal([]byte(sendKey(t, url, "", `{"key":"k1"}`).body), &tr)
		if !tr.Allowed {
			t.Fatalf("take after three with one key = %+v, want allowed: the repeats spent tokens", tr)
		}
		json.Unmarshal([]byte(sendKey(t, url, "", `{"key":"k1"}`).body), &tr)
		if tr.Allowed {
			t.Fatalf("third token of a bucket of 2 = %+v, want refused", tr)
		}
		// A key is scoped to the limit's key: the same Idempotency-Key for
		// another key is another request.
		a := sendKey(t, url, "take-1", `{"key":"k2"}`)
		json.Unmarshal([]byte(a.body), &tr)
		if !tr.Allowed || a.header.Get(replayedHeader) != "" {
			t.Errorf("take of key k2 with k1's Idempotency-Key = %d %s (replayed %q), want a fresh take", a.status, a.body, a.header.Get(replayedHeader))
		}
	})

	t.Run("concurrent repeats", func(t *testing.T) {
		cp.do(t, "PUT", "/v1/ratelimits/burst", `{"capacity":1,"refill_per_second":0.001}`)
		var wg sync.WaitGroup
		var allowed, replayed atomic.Int64
		for range 8 {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, agent+"/v1/ratelimits/burst/take", strings.NewReader(`{}`))
				req.Header.Set(idempotencyKeyHeader, "burst-1")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("take: %v", err)
					return
				}
				defer res.Body.Close()
				var tr contract.TakeResult
				json.NewDecoder(res.Body).Decode(&tr)
				if tr.Allowed {
					allowed.Add(1)
				}
				if res.Header.Get(replayedHeader) == "true" {
					replayed.Add(1)
				}
			})
		}
		wg.Wait()
		if allowed.Load() != 8 || replayed.Load() != 7 {
			t.Errorf("8 concurrent takes with one key: %d allowed, %d replayed; want 8 and 7 (one take of the bucket's one token)", allowed.Load(), replayed.Load())
		}
	})

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name   string
			keys   []string
			path   string
			body   string
			status int
		}{
			{"an empty key", []string{""}, "/v1/breakers/inv/outcomes", `{"outcomes":[{"success":true}]}`, 400},
			{"a key of 129 characters", []string{strings.Repeat("k", 129)}, "/v1/breakers/inv/outcomes", `{"outcomes":[{"success":true}]}`, 400},
			{"a key with a control character", []string{"a\tb"}, "/v1/breakers/inv/acquire", ``, 400},
			{"a key that is not ASCII", []string{"clé"}, "/v1/ratelimits/inv/take", `{}`, 400},
			{"a key sent twice", []string{"a", "b"}, "/v1/ratelimits/inv/take", `{}`, 400},
			{"a used key with another body", []string{"report-1"}, "/v1/breakers/inv/outcomes", `{"outcomes":[{"success":false,"duration_ms":5,"count":8}]}`, 422},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, agent+tt.path, strings.NewReader(tt.body))
				req.Header[idempotencyKeyHeader] = tt.keys
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				var p jsonapi.Problem
				json.NewDecoder(res.Body).Decode(&p)
				if res.StatusCode != tt.status || p.Field != idempotencyKeyHeader {
					t.Errorf("POST %s with Idempotency-Key %q = %d %+v, want %d naming %s", tt.path, tt.keys, res.StatusCode, p, tt.status, idempotencyKeyHeader)
				}
			})
		}
	})
}

// A keyed request that applied nothing (an error answer) is not recorded:
// its retry is decided anew. The key of a 2xx answer is kept for the TTL
// and then forgotten; past the cap the key recorded longest ago goes
// first.
func TestIdempotencyRecordsExpiresAndEvicts(t *testing.T) {
	id := newIdempotency(nil)
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	id.now = func() time.Time { return now }
	id.max = 3
	var applied atomic.Int64
	fail := atomic.Bool{}
	srv := httptest.NewServer(id.wrap("take", func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			problem(w, http.StatusServiceUnavailable, "", "down")
			return
		}
		n := applied.Add(1)
		writeJSON(w, http.StatusOK, map[string]int64{"n": n})
	}))
	t.Cleanup(srv.Close)
	take := func(key string) answer {
		t.Helper()
		return sendKey(t, srv.URL+"/v1/ratelimits/x/take", key, `{}`)
	}

	fail.Store(true)
	if a := take("k0"); a.status != 503 {
		t.Fatalf("take = %d, want the handler's 503", a.status)
	}
	fail.Store(false)
	if a := take("k0"); a.status != 200 || a.header.Get(replayedHeader) != "" || applied.Load() != 1 {
		t.Fatalf("retry of a refused take = %d %s (replayed %q), %d applied; want applied anew", a.status, a.body, a.header.Get(replayedHeader), applied.Load())
	}

	tests := []struct {
		name         string
		advance      time.Duration
		key          string
		wantReplayed bool
	}{
		{"a repeat within the TTL", idempotencyTTL - time.Second, "k0", true},
		{"a repeat past the TTL", 2 * time.Second, "k0", false},
		{"k1", 0, "k1", false},
		{"k2", 0, "k2", false},
		{"k3: four keys, one over the cap", 0, "k3", false},
		{"k0 again: the oldest, evicted", 0, "k0", false},
		{"k2: kept", 0, "k2", true},
		{"k3: kept", 0, "k3", true},
	}
	for _, tt := range tests {
		now = now.Add(tt.advance)
		before := applied.Load()
		a := take(tt.key)
		got := a.header.Get(replayedHeader) == "true"
		if a.status != 200 || got != tt.wantReplayed || (applied.Load() == before) != tt.wantReplayed {
			t.Errorf("%s: take(%q) = %d %s, replayed %v, applied %d; want replayed %v", tt.name, tt.key, a.status, a.body, got, applied.Load()-before, tt.wantReplayed)
		}
	}
	if n := len(id.entries); n > id.max {
		t.Errorf("%d keys held, want at most %d", n, id.max)
	}
}
