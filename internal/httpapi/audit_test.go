package httpapi

import (
	"net/http"
	"testing"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

type auditPage struct {
	Entries []AuditEntry `json:"entries"`
}

// TestAuditTrail: every operator action is recorded with who, what, why
// and how it ended, newest first, and the trail outlives the control plane
// that wrote it.
func TestAuditTrail(t *testing.T) {
	r := storetest.StartRedis(t)
	st := r.Open(t)
	first := serveAPI(t, st, testTokens(t))
	first.do("PUT", "/v1/breakers/pay", `{}`, secretOperator)
	first.do("PUT", "/v1/breakers/pay/override", `{"state":"forced_open","reason":"incident 12"}`, secretOperator)
	first.do("DELETE", "/v1/breakers/pay/override", nil, secretOperator)
	first.do("POST", "/v1/breakers/pay/reset", nil, secretOperator)
	first.do("DELETE", "/v1/breakers/nope", nil, secretOperator)               // fails: 404
	first.do("PUT", "/v1/breakers/pay", `{"minimum_calls":0}`, secretOperator) // bad input: never runs, not recorded
	first.do("POST", "/v1/breakers/pay/acquire", nil, secretAgent)             // not an operator action
	first.srv.Close()

	// A new control plane over the same Redis reads the same trail.
	second := serveAPI(t, r.Open(t), testTokens(t))
	res := second.do("GET", "/v1/audit?limit=10", nil, secretOperator)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /v1/audit = %d %s", res.Status, res.Body)
	}
	var page auditPage
	res.JSON(t, &page)
	want := []struct{ action, target, reason, result string }{
		{"breaker.delete", "nope", "", "error: breaker not found"},
		{"breaker.reset", "pay", "", "ok"},
		{"breaker.override.delete", "pay", "", "ok"},
		{"breaker.override.put", "pay", "forced_open: incident 12", "ok"},
		{"breaker.put", "pay", "", "ok"},
	}
	if len(page.Entries) != len(want) {
		t.Fatalf("audit has %d entries %+v, want %d", len(page.Entries), page.Entries, len(want))
	}
	for i, w := range want {
		e := page.Entries[i]
		if e.Action != w.action || e.Target != w.target || e.Reason != w.reason || e.Result != w.result || e.By != "ops" || e.At.IsZero() {
			t.Errorf("entry %d = %+v, want %+v by ops", i, e, w)
		}
	}
	second.do("GET", "/v1/audit?limit=2", nil, secretOperator).JSON(t, &page)
	if len(page.Entries) != 2 || page.Entries[0].Action != "breaker.delete" {
		t.Errorf("limit=2 gave %+v, want the two newest", page.Entries)
	}
	for _, q := range []string{"0", "1001", "x"} {
		if res := second.do("GET", "/v1/audit?limit="+q, nil, secretOperator); res.Status != http.StatusBadRequest || res.Problem(t).Field != "limit" {
			t.Errorf("limit=%s = %d, want 400 naming limit", q, res.Status)
		}
	}
}

// TestActionFailsWithoutAudit: when the audit trail cannot be written (its
// Redis is down), an operator action is refused and nothing changes.
func TestActionFailsWithoutAudit(t *testing.T) {
	main, auditRedis := storetest.StartRedis(t), storetest.StartRedis(t)
	st := main.Open(t)
	svc := breaker.NewService(st)
	api := New(Options{Breakers: svc, Store: st, Audit: auditRedis.Open(t)})
	ta := &testAPI{t: t, srv: newServer(t, api)}
	if res := ta.do("PUT", "/v1/breakers/pay", `{}`, ""); res.Status != http.StatusCreated {
		t.Fatalf("PUT = %d %s", res.Status, res.Body)
	}
	auditRedis.Stop()
	if res := ta.do("PUT", "/v1/breakers/pay/override", `{"state":"forced_open","reason":"r"}`, ""); res.Status != http.StatusServiceUnavailable {
		t.Fatalf("override with audit down = %d %s, want 503", res.Status, res.Body)
	}
	if res := ta.do("DELETE", "/v1/breakers/pay", nil, ""); res.Status != http.StatusServiceUnavailable {
		t.Fatalf("delete with audit down = %d, want 503", res.Status)
	}
	var b breaker.Breaker
	ta.do("GET", "/v1/breakers/pay", nil, "").JSON(t, &b)
	if b.State != breaker.StateClosed || b.Override != nil {
		t.Fatalf("after refused actions, breaker = %+v; want it unchanged", b)
	}
	// Decisions do not need the audit trail.
	if res := ta.do("POST", "/v1/breakers/pay/acquire", nil, ""); res.Status != http.StatusOK {
		t.Fatalf("acquire with audit down = %d, want 200", res.Status)
	}
}
