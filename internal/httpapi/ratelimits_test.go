package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

type takeResult struct {
	Allowed      bool  `json:"allowed"`
	Granted      int64 `json:"granted"`
	Remaining    int64 `json:"remaining"`
	RetryAfterMS int64 `json:"retry_after_ms"`
}

func TestTakeHTTP(t *testing.T) {
	ta := newTestAPI(t, nil)
	if res := ta.do("PUT", "/v1/ratelimits/api", `{"capacity":3,"refill_per_second":1}`, ""); res.Status != http.StatusCreated {
		t.Fatalf("PUT = %d %s", res.Status, res.Body)
	}
	var tr takeResult
	res := ta.do("POST", "/v1/ratelimits/api/take", `{"tokens":2}`, "")
	res.JSON(t, &tr)
	if !tr.Allowed || tr.Granted != 2 || tr.Remaining != 1 {
		t.Fatalf("take 2 of 3 = %+v", tr)
	}
	if h := res.Header; h.Get("RateLimit-Limit") != "3" || h.Get("RateLimit-Remaining") != "1" || h.Get("RateLimit-Reset") != "2" || h.Get("Retry-After") != "" {
		t.Errorf("headers = %v, want limit 3, remaining 1, reset 2s, no Retry-After", h)
	}
	res = ta.do("POST", "/v1/ratelimits/api/take", `{"tokens":3}`, "")
	res.JSON(t, &tr)
	if tr.Allowed || tr.Granted != 0 || tr.RetryAfterMS != 2000 || res.Header.Get("Retry-After") != "2" {
		t.Fatalf("take 3 with 1 left = %+v Retry-After %q, want denied, retry 2000 ms", tr, res.Header.Get("Retry-After"))
	}
	ta.do("POST", "/v1/ratelimits/api/take", `{"tokens":3,"partial":true}`, "").JSON(t, &tr)
	if !tr.Allowed || tr.Granted != 1 || tr.Remaining != 0 {
		t.Fatalf("partial take 3 with 1 left = %+v, want 1 granted", tr)
	}
	// Keys have buckets of their own, whatever bytes they hold.
	for _, key := range []string{"tenant-42", "{weird}:key\n", "☃"} {
		body := `{"key":` + jsonString(key) + `}`
		ta.do("POST", "/v1/ratelimits/api/take", body, "").JSON(t, &tr)
		if !tr.Allowed || tr.Remaining != 2 {
			t.Errorf("take on key %q = %+v, want a fresh bucket", key, tr)
		}
	}
	ta.Mini.Advance(1500 * time.Millisecond)
	var l struct {
		Tokens *float64 `json:"tokens"`
	}
	ta.do("GET", "/v1/ratelimits/api?key=", nil, "").JSON(t, &l)
	if l.Tokens == nil || *l.Tokens != 1.5 {
		t.Errorf("default bucket after 1.5 s = %v, want 1.5 tokens", l.Tokens)
	}
	body := string(ta.do("GET", "/metrics", nil, "").Body)
	for _, want := range []string{`breakwater_ratelimit_decisions_total{decision="allowed",ratelimit="api"} 5`, `breakwater_ratelimit_decisions_total{decision="denied",ratelimit="api"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "tenant-42") {
		t.Error("a rate-limit key appears in /metrics")
	}
}

func TestTakeBadInput(t *testing.T) {
	ta := newTestAPI(t, nil)
	ta.do("PUT", "/v1/ratelimits/api", `{"capacity":10,"refill_per_second":1}`, "")
	tests := []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"capacity zero", "PUT", "/v1/ratelimits/api", `{"capacity":0,"refill_per_second":1}`, 400, "capacity"},
		{"capacity huge", "PUT", "/v1/ratelimits/api", `{"capacity":1000000001,"refill_per_second":1}`, 400, "capacity"},
		{"capacity missing", "PUT", "/v1/ratelimits/api", `{"refill_per_second":1}`, 400, "capacity"},
		{"rate zero", "PUT", "/v1/ratelimits/api", `{"capacity":1,"refill_per_second":0}`, 400, "refill_per_second"},
		{"rate negative", "PUT", "/v1/ratelimits/api", `{"capacity":1,"refill_per_second":-3}`, 400, "refill_per_second"},
		{"rate missing", "PUT", "/v1/ratelimits/api", `{"capacity":1}`, 400, "refill_per_second"},
		{"rate string", "PUT", "/v1/ratelimits/api", `{"capacity":1,"refill_per_second":"5"}`, 400, "refill_per_second"},
		{"unknown field", "PUT", "/v1/ratelimits/api", `{"capacity":1,"refill_per_second":1,"burst":3}`, 400, "burst"},
		{"bad name", "PUT", "/v1/ratelimits/a%7Bb", `{"capacity":1,"refill_per_second":1}`, 400, "name"},
		{"tokens zero", "POST", "/v1/ratelimits/api/take", `{"tokens":0}`, 400, "tokens"},
		{"tokens over capacity", "POST", "/v1/ratelimits/api/take", `{"tokens":11}`, 400, "tokens"},
		{"key too long", "POST", "/v1/ratelimits/api/take", `{"key":"` + strings.Repeat("k", 257) + `"}`, 400, "key"},
		{"key not utf-8", "POST", "/v1/ratelimits/api/take", "{\"key\":\"\xff\xfe\"}", 400, ""},
		{"take unknown field", "POST", "/v1/ratelimits/api/take", `{"n":1}`, 400, "n"},
		{"take unknown limit", "POST", "/v1/ratelimits/nope/take", `{}`, 404, ""},
		{"get unknown", "GET", "/v1/ratelimits/nope", ``, 404, ""},
		{"delete unknown", "DELETE", "/v1/ratelimits/nope", ``, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ta.do(tt.method, tt.path, tt.body, "")
			if res.Status != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, res.Status, res.Body, tt.status)
			}
			if p := res.Problem(t); p.Field != tt.field {
				t.Errorf("field = %q, want %q (%s)", p.Field, tt.field, p.Detail)
			}
		})
	}
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestTakeCountsClients: the clients taking from a limit through any
// replica are counted fleet-wide, and each take answers with the count.
func TestTakeCountsClients(t *testing.T) {
	r := storetest.StartRedis(t)
	serve := func() *testAPI {
		st := r.Open(t)
		api := New(Options{Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Store: st, ClientsEvery: 50 * time.Millisecond})
		t.Cleanup(api.Close)
		return &testAPI{t: t, srv: newServer(t, api)}
	}
	a, b := serve(), serve()
	a.do("PUT", "/v1/ratelimits/api", `{"capacity":100,"refill_per_second":10}`, "")
	take := func(ta *testAPI, client string) string {
		req, _ := http.NewRequest("POST", ta.srv.URL+"/v1/ratelimits/api/take", strings.NewReader(`{}`))
		if client != "" {
			req.Header.Set(ClientHeader, client)
		}
		res, err := ta.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.Header.Get(ClientsHeader)
	}
	if got := take(a, ""); got != "" {
		t.Errorf("a take without %s answered %s %q", ClientHeader, ClientsHeader, got)
	}
	take(a, "client-a")
	take(b, "client-b")
	take(b, "client-c")
	deadline := time.Now().Add(5 * time.Second)
	for take(a, "client-a") != "3" {
		if time.Now().After(deadline) {
			t.Fatalf("%s on replica A never reached 3 (three clients over two replicas)", ClientsHeader)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := take(a, "bad id with spaces"); got == "" {
		// a malformed id is ignored, not counted
	} else if got != "3" {
		t.Errorf("a malformed client id changed the count to %s", got)
	}
}
