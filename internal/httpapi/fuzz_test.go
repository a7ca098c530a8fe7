package httpapi

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/internal/audit"
	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/fault"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// fuzzAPI serves the API over a miniredis for fuzz targets, answering
// in-process (no sockets), every answer checked against the spec.
type fuzzAPI struct {
	api *API
}

func newFuzzAPI(f *testing.F) *fuzzAPI {
	m := storetest.NewMini(f, testStart)
	st := m.Store
	api := New(Options{Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Store: st, Audit: audit.New(st, nil)})
	f.Cleanup(api.Close)
	// Objects for the requests to act on.
	for _, req := range []struct{ method, path, body string }{
		{"PUT", "/v1/breakers/fz", `{"minimum_calls":2}`},
		{"PUT", "/v1/ratelimits/fz", `{"capacity":10,"refill_per_second":5}`},
	} {
		api.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, strings.NewReader(req.body)))
	}
	return &fuzzAPI{api: api}
}

// serve sends one request and fails on a 5xx or an answer the spec does
// not allow.
func (fa *fuzzAPI) serve(t *testing.T, method, path string, body []byte) int {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	specChecked(t, fa.api).ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s %s %q = %d %s", method, path, body, rec.Code, rec.Body)
	}
	return rec.Code
}

var seedBodies = []string{
	`{}`, ``, `null`, `[]`, `{"minimum_calls":5}`, `{"window":{"type":"count","size":100}}`,
	`{"window":{"type":"time","size":3600},"failure_rate_threshold":100,"cache_ttl_ms":60000}`,
	`{"outcomes":[{"success":true,"duration_ms":5,"count":3},{"success":false,"permit":"1.1"}]}`,
	`{"outcomes":[{"success":false,"generation":1}]}`,
	`{"state":"forced_open","reason":"x","ttl_ms":1000}`, `{"state":"forced_closed","reason":"y"}`,
	`{"tokens":1,"key":"tenant-1","partial":true}`, `{"tokens":11}`, `{"capacity":1e9,"refill_per_second":0.5}`,
	`{"minimum_calls":1e400}`, `{"minimum_calls":-0}`, "{\"reason\":\"\xff\"}", `{"a":{"b":{"c":[1,2,{"d":null}]}}}`,
}

// fuzzBody fuzzes the body of one request, seeded with seedBodies.
func fuzzBody(f *testing.F, method, path string) {
	fa := newFuzzAPI(f)
	for _, s := range seedBodies {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fa.serve(t, method, path, body)
	})
}

func FuzzBreakerConfig(f *testing.F) { fuzzBody(f, "PUT", "/v1/breakers/fz") }

func FuzzOutcomes(f *testing.F) { fuzzBody(f, "POST", "/v1/breakers/fz/outcomes") }

func FuzzOverride(f *testing.F) { fuzzBody(f, "PUT", "/v1/breakers/fz/override") }

func FuzzRateLimitConfig(f *testing.F) { fuzzBody(f, "PUT", "/v1/ratelimits/fz") }

func FuzzTake(f *testing.F) { fuzzBody(f, "POST", "/v1/ratelimits/fz/take") }

func FuzzNames(f *testing.F) {
	fa := newFuzzAPI(f)
	for _, s := range []string{"fz", "a.b_c-d", "x{y}", "a:b", "..", "%2F", strings.Repeat("n", 200), "émoji-☃"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if name == "" {
			return // an empty segment is another path, not a name
		}
		path := "/v1/breakers/" + urlPathEscape(name)
		if !strings.HasPrefix(path, "/v1/breakers/") || strings.ContainsAny(path, "?#") {
			return
		}
		fa.serve(t, "GET", path, nil)
		fa.serve(t, "POST", path+"/acquire", nil)
	})
}

func urlPathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// TestRandomRequests sends thousands of random requests, built from the
// spec's operations with good and bad names and bodies, to the real
// handler: none may get a 5xx, and every answer must match the spec.
func TestRandomRequests(t *testing.T) {
	m := storetest.NewMini(t, testStart)
	st := m.Store
	api := New(Options{Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Faults: fault.NewService(st), Store: st,
		Audit: audit.New(st, nil)})
	t.Cleanup(api.Close)
	h := specChecked(t, api)
	ops := specOperations(t)
	names := []string{"r1", "r2", "bad{name", "a:b", ".x", strings.Repeat("z", 130)}
	fields := []string{"window", "minimum_calls", "failure_rate_threshold", "slow_call_duration_ms", "slow_call_rate_threshold",
		"consecutive_failures", "open_duration_ms", "half_open_max_calls", "probe_timeout_ms", "cache_ttl_ms", "outcomes",
		"success", "duration_ms", "count", "permit", "generation", "retries", "state", "reason", "ttl_ms", "capacity",
		"refill_per_second", "tokens", "key", "partial", "abort_percent", "abort_status", "delay_percent", "delay_ms", "bogus"}
	values := []string{`0`, `1`, `-1`, `5`, `100`, `1000001`, `1e9`, `2.5`, `"x"`, `""`, `true`, `null`, `[]`, `{}`,
		`"forced_open"`, `"forced_closed"`, `{"type":"count","size":3}`, `{"type":"time","size":0}`,
		`[{"success":false,"count":3}]`, `[{"success":true,"permit":"1.1"}]`, `[{}]`, `"1.1"`, `"tenant-☃"`}
	r := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	statuses := map[int]int{}
	for range n {
		op := ops[r.IntN(len(ops))]
		method, path, _ := strings.Cut(op, " ")
		path = strings.ReplaceAll(path, "{name}", urlPathEscape(names[r.IntN(len(names))]))
		if path == "/v1/events" {
			continue // a stream; covered by the events tests
		}
		var body bytes.Buffer
		body.WriteString("{")
		for i := range r.IntN(4) {
			if i > 0 {
				body.WriteString(",")
			}
			fmt.Fprintf(&body, "%q:%s", fields[r.IntN(len(fields))], values[r.IntN(len(values))])
		}
		body.WriteString("}")
		if r.IntN(10) == 0 {
			body.Truncate(r.IntN(body.Len() + 1)) // malformed
		}
		if r.IntN(20) == 0 {
			m.Advance(31_000_000_000) // 31s: breakers move on
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, bytes.NewReader(body.Bytes()))
		h.ServeHTTP(rec, req)
		statuses[rec.Code]++
		if rec.Code >= 500 {
			t.Fatalf("%s %s %s = %d %s", method, path, body.String(), rec.Code, rec.Body)
		}
	}
	t.Logf("statuses: %v", statuses)
	if statuses[http.StatusOK]+statuses[http.StatusCreated] < n/20 {
		t.Errorf("only %d successes in %d requests: the generator hardly reaches the handlers", statuses[200]+statuses[201], n)
	}
}
