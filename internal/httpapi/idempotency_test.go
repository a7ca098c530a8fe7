package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

func withKey(k string) map[string]string { return map[string]string{IdempotencyKeyHeader: k} }

// TestIdempotentOutcomesAcrossReplicas: a report re-sent with its
// Idempotency-Key, to another replica over the same Redis, is counted once
// and answered with the first answer; the same key with another report is
// 422 and counts nothing.
func TestIdempotentOutcomesAcrossReplicas(t *testing.T) {
	r := storetest.StartRedis(t)
	a := serveAPI(t, r.Open(t), nil)
	b := serveAPI(t, r.Open(t), nil)
	a.do("PUT", "/v1/breakers/pay", `{"minimum_calls":100}`, "")
	report := `{"outcomes":[{"success":false,"count":10}]}`

	first := a.doHeader("POST", "/v1/breakers/pay/outcomes", report, "", withKey("flush-1"))
	again := b.doHeader("POST", "/v1/breakers/pay/outcomes", report, "", withKey("flush-1"))
	if first.Status != http.StatusOK || again.Status != http.StatusOK {
		t.Fatalf("outcomes = %d, then %d; want 200 twice (%s)", first.Status, again.Status, again.Body)
	}
	if got := first.Header.Get(ReplayedHeader); got != "" {
		t.Errorf("first answer has %s: %q, want none", ReplayedHeader, got)
	}
	if got := again.Header.Get(ReplayedHeader); got != "true" {
		t.Errorf("repeat has %s: %q, want true", ReplayedHeader, got)
	}
	if diff := cmp.Diff(string(first.Body), string(again.Body)); diff != "" {
		t.Errorf("repeat's body differs from the first (-first +repeat):\n%s", diff)
	}
	if got := calls(t, a, "pay"); got != 10 {
		t.Errorf("after a report sent twice with one key the window holds %d failures, want 10", got)
	}

	// Same key, another report: refused, nothing counted.
	res := b.doHeader("POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":false,"count":11}]}`, "", withKey("flush-1"))
	if res.Status != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other report = %d %s, want 422", res.Status, res.Body)
	}
	if p := res.Problem(t); p.Field != IdempotencyKeyHeader {
		t.Errorf("422 names %q, want %q", p.Field, IdempotencyKeyHeader)
	}
	// The key is scoped to the breaker: another breaker's report with the
	// same key applies.
	a.do("PUT", "/v1/breakers/inv", `{"minimum_calls":100}`, "")
	if res := a.doHeader("POST", "/v1/breakers/inv/outcomes", report, "", withKey("flush-1")); res.Header.Get(ReplayedHeader) != "" {
		t.Errorf("same key on another breaker was replayed, want applied")
	}
	// A new key applies.
	a.doHeader("POST", "/v1/breakers/pay/outcomes", report, "", withKey("flush-2"))
	if got := calls(t, a, "pay"); got != 20 {
		t.Errorf("after a second key the window holds %d failures, want 20", got)
	}

	// The record shares the breaker's hash tag and expires.
	keys := r.Bulk("EVAL", "return table.concat(redis.call('KEYS', 'bw:{b:=pay}:i.*'), ' ')", "0")
	if keys == "" {
		t.Fatalf("no idempotency record under the breaker's hash tag bw:{b:=pay}")
	}
	for _, k := range strings.Fields(keys) {
		ttl, err := strconv.Atoi(strings.TrimPrefix(r.Do("PTTL", k), ":"))
		if err != nil || ttl <= 0 || ttl > 600_000 {
			t.Errorf("PTTL %s = %q, want 1..600000 ms", k, r.Do("PTTL", k))
		}
	}
	if body := string(b.do("GET", "/metrics", nil, "").Body); !strings.Contains(body, `breakwater_idempotent_replays_total{endpoint="outcomes"} 1`) {
		t.Errorf("replica B /metrics lacks one outcomes replay")
	}
	// Replays are not counted as calls again.
	if body := string(b.do("GET", "/metrics", nil, "").Body); strings.Contains(body, `breakwater_breaker_calls_total{breaker="pay"`) {
		t.Errorf("replica B counted the replayed report's calls")
	}
}

func calls(t *testing.T, ta *testAPI, name string) int64 {
	t.Helper()
	var b struct {
		Stats struct{ Failures int64 } `json:"stats"`
	}
	ta.do("GET", "/v1/breakers/"+name, nil, "").JSON(t, &b)
	return b.Stats.Failures
}

// TestIdempotentTakeAndAcquire: a take re-sent with its key takes nothing
// more; the key is scoped to the bucket's key. An acquire re-sent in
// half_open gets the same permit and holds one probe slot, not two.
func TestIdempotentTakeAndAcquire(t *testing.T) {
	ta := newTestAPI(t, nil)
	ta.do("PUT", "/v1/ratelimits/api", `{"capacity":10,"refill_per_second":0.001}`, "")
	take := func(body, key string) response {
		return ta.doHeader("POST", "/v1/ratelimits/api/take", body, "", withKey(key))
	}
	first := take(`{"tokens":4,"key":"alice"}`, "t-1")
	again := take(`{"tokens":4,"key":"alice"}`, "t-1")
	if again.Header.Get(ReplayedHeader) != "true" || string(again.Body) != string(first.Body) {
		t.Errorf("repeated take = %s %q, want the first answer %s replayed", again.Body, again.Header.Get(ReplayedHeader), first.Body)
	}
	if got := again.Header.Get("RateLimit-Remaining"); got != "6" {
		t.Errorf("repeated take RateLimit-Remaining = %q, want 6", got)
	}
	// Same idempotency key, other bucket key: its own request.
	if res := take(`{"tokens":4,"key":"bob"}`, "t-1"); res.Header.Get(ReplayedHeader) != "" || res.Status != http.StatusOK {
		t.Errorf("same idempotency key on another bucket = %d replayed %q, want applied", res.Status, res.Header.Get(ReplayedHeader))
	}
	if res := take(`{"tokens":5,"key":"alice"}`, "t-1"); res.Status != http.StatusUnprocessableEntity {
		t.Errorf("same key, other tokens = %d, want 422", res.Status)
	}
	var l struct{ Tokens float64 }
	ta.do("GET", "/v1/ratelimits/api?key=alice", nil, "").JSON(t, &l)
	if l.Tokens > 6.01 || l.Tokens < 5.99 {
		t.Errorf("alice's bucket holds %v tokens, want 6", l.Tokens)
	}

	// Half-open with one probe: the repeat of the acquire that got the
	// permit gets the same permit, and a new acquire gets none.
	ta.do("PUT", "/v1/breakers/pay", `{"minimum_calls":1,"open_duration_ms":1000,"half_open_max_calls":1}`, "")
	ta.do("POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":false}]}`, "")
	ta.Mini.Advance(1500 * time.Millisecond)
	var d1, d2, d3 struct {
		Allowed bool
		Permit  string
	}
	ta.doHeader("POST", "/v1/breakers/pay/acquire", nil, "", withKey("a-1")).JSON(t, &d1)
	ta.doHeader("POST", "/v1/breakers/pay/acquire", nil, "", withKey("a-1")).JSON(t, &d2)
	ta.doHeader("POST", "/v1/breakers/pay/acquire", nil, "", withKey("a-2")).JSON(t, &d3)
	if !d1.Allowed || d1.Permit == "" || d2 != d1 {
		t.Errorf("acquire, repeated = %+v, %+v; want one permit, then the same answer", d1, d2)
	}
	if d3.Allowed {
		t.Errorf("a new acquire got %+v while the one probe is out, want denied", d3)
	}
}

// TestIdempotencyKeyBadInput: a malformed Idempotency-Key is a 400 naming
// the header, and nothing is applied.
func TestIdempotencyKeyBadInput(t *testing.T) {
	ta := newTestAPI(t, nil)
	ta.do("PUT", "/v1/breakers/pay", `{}`, "")
	ta.do("PUT", "/v1/ratelimits/api", `{"capacity":10,"refill_per_second":1}`, "")
	for _, k := range []string{strings.Repeat("k", 129), "caf\u00e9", "tab\there"} {
		for _, ep := range []struct{ path, body string }{
			{"/v1/breakers/pay/acquire", ""},
			{"/v1/breakers/pay/outcomes", `{"outcomes":[{"success":false}]}`},
			{"/v1/ratelimits/api/take", `{}`},
		} {
			res := ta.doHeader("POST", ep.path, ep.body, "", withKey(k))
			if res.Status != http.StatusBadRequest {
				t.Errorf("POST %s with Idempotency-Key %q = %d, want 400", ep.path, k, res.Status)
				continue
			}
			if p := res.Problem(t); p.Field != IdempotencyKeyHeader {
				t.Errorf("POST %s with Idempotency-Key %q names %q, want %q", ep.path, k, p.Field, IdempotencyKeyHeader)
			}
		}
	}
	if got := calls(t, ta, "pay"); got != 0 {
		t.Errorf("refused reports counted %d failures, want 0", got)
	}
}

// TestLateReplyCountedOnce: a report whose store reply comes too late is
// answered 503 by one control plane though Redis applies it; the client
// re-sends it, with its key, to another control plane. The failures are
// counted once.
func TestLateReplyCountedOnce(t *testing.T) {
	r := storetest.StartRedis(t)
	a := serveAPI(t, storetest.OpenURL(t, r.URL(), 100*time.Millisecond), nil)
	b := serveAPI(t, r.Open(t), nil)
	report := `{"outcomes":[{"success":false,"count":10}]}`
	for _, name := range []string{"warm", "pay"} {
		a.do("PUT", "/v1/breakers/"+name, `{"minimum_calls":100}`, "")
	}
	// Load the scripts: a frozen Redis's NOSCRIPT would come too late.
	a.doHeader("POST", "/v1/breakers/warm/outcomes", report, "", withKey("warm"))

	r.Freeze()
	thawed := make(chan struct{})
	time.AfterFunc(150*time.Millisecond, func() { r.Thaw(); close(thawed) })
	if res := a.doHeader("POST", "/v1/breakers/pay/outcomes", report, "", withKey("flush-1")); res.Status != http.StatusServiceUnavailable {
		t.Fatalf("report to a frozen Redis = %d, want 503", res.Status)
	}
	<-thawed
	if res := b.doHeader("POST", "/v1/breakers/pay/outcomes", report, "", withKey("flush-1")); res.Status != http.StatusOK {
		t.Fatalf("report re-sent to replica B = %d %s, want 200", res.Status, res.Body)
	}
	if got := calls(t, b, "pay"); got != 10 {
		t.Errorf("10 failures reported (once late, once again) count %d, want 10", got)
	}
}

// TestBatchOutcomes: one request reports for several breakers; each report
// is answered in order, a bad one alone fails; re-sent with its key to
// another replica, nothing is counted twice, and the key with another
// batch is 422.
func TestBatchOutcomes(t *testing.T) {
	r := storetest.StartRedis(t)
	a := serveAPI(t, r.Open(t), nil)
	b := serveAPI(t, r.Open(t), nil)
	for _, name := range []string{"pay", "inv"} {
		a.do("PUT", "/v1/breakers/"+name, `{"minimum_calls":100}`, "")
	}
	batch := `{"reports":[
		{"breaker":"pay","outcomes":[{"success":false,"count":4}]},
		{"breaker":"nope","outcomes":[{"success":false}]},
		{"breaker":"inv","outcomes":[{"count":2}]},
		{"breaker":"inv","outcomes":[{"success":false,"count":3},{"success":true}]}]}`
	type result struct {
		Breaker string
		State   string
		Error   *Problem
	}
	var first, again struct{ Results []result }
	res := a.doHeader("POST", "/v1/outcomes", batch, "", withKey("flush-9"))
	if res.Status != http.StatusOK {
		t.Fatalf("POST /v1/outcomes = %d %s", res.Status, res.Body)
	}
	res.JSON(t, &first)
	want := []struct {
		breaker string
		status  int
		field   string
	}{{"pay", 0, ""}, {"nope", 404, ""}, {"inv", 400, "outcomes[0].success"}, {"inv", 0, ""}}
	if len(first.Results) != len(want) {
		t.Fatalf("%d results, want %d: %s", len(first.Results), len(want), res.Body)
	}
	for i, w := range want {
		got := first.Results[i]
		switch {
		case got.Breaker != w.breaker:
			t.Errorf("results[%d].breaker = %q, want %q", i, got.Breaker, w.breaker)
		case w.status == 0 && (got.Error != nil || got.State != "closed"):
			t.Errorf("results[%d] = %+v, want a closed decision", i, got)
		case w.status != 0 && (got.Error == nil || got.Error.Status != w.status || got.Error.Field != w.field):
			t.Errorf("results[%d] = %+v, want an error %d naming %q", i, got, w.status, w.field)
		}
	}
	res = b.doHeader("POST", "/v1/outcomes", batch, "", withKey("flush-9"))
	res.JSON(t, &again)
	if res.Header.Get(ReplayedHeader) != "true" {
		t.Errorf("repeated batch has %s %q, want true", ReplayedHeader, res.Header.Get(ReplayedHeader))
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("repeated batch's results differ (-first +repeat):\n%s", diff)
	}
	if res := b.doHeader("POST", "/v1/outcomes", `{"reports":[{"breaker":"pay","outcomes":[{"success":false,"count":50}]}]}`, "", withKey("flush-9")); res.Status != http.StatusUnprocessableEntity {
		t.Errorf("same key, another batch = %d, want 422", res.Status)
	}
	for name, want := range map[string]int64{"pay": 4, "inv": 3} {
		if got := calls(t, a, name); got != want {
			t.Errorf("breaker %s counts %d failures, want %d (each report once)", name, got, want)
		}
	}
	if res := a.do("POST", "/v1/outcomes", `{"reports":[]}`, ""); res.Status != http.StatusBadRequest || res.Problem(t).Field != "reports" {
		t.Errorf("empty batch = %d %s, want 400 naming reports", res.Status, res.Body)
	}
}
