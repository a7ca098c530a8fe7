package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/audit"
	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store"
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

// TestReleaseAndResetReasons: the reason an operator gives for a release
// (in the query string) or a reset (in the body) is in the audit record,
// and either action still works without one.
func TestReleaseAndResetReasons(t *testing.T) {
	ta := newTestAPI(t, nil)
	ta.do("PUT", "/v1/breakers/pay", `{}`, "")
	long := strings.Repeat("é", 500) // 500 characters, 1000 bytes
	steps := []struct{ method, path, body string }{
		{"PUT", "/v1/breakers/pay/override", `{"state":"forced_open","reason":"incident 12"}`},
		{"DELETE", "/v1/breakers/pay/override?reason=" + url.QueryEscape("INC-12 resolved: 100% & <ok>"), ""},
		{"POST", "/v1/breakers/pay/reset", `{"reason":"` + long + `"}`},
		{"DELETE", "/v1/breakers/pay/override", ""},
		{"POST", "/v1/breakers/pay/reset", `{}`},
		{"POST", "/v1/breakers/pay/reset", `{"reason":null}`},
	}
	for _, s := range steps {
		if res := ta.do(s.method, s.path, s.body, ""); res.Status != http.StatusOK {
			t.Fatalf("%s %s = %d %s, want 200", s.method, s.path, res.Status, res.Body)
		}
	}
	var page auditPage
	ta.do("GET", "/v1/audit?limit=5", nil, "").JSON(t, &page)
	want := []struct{ action, reason string }{
		{"breaker.reset", ""},
		{"breaker.reset", ""},
		{"breaker.override.delete", ""},
		{"breaker.reset", long},
		{"breaker.override.delete", "INC-12 resolved: 100% & <ok>"},
	}
	if len(page.Entries) != len(want) {
		t.Fatalf("audit has %d entries, want %d", len(page.Entries), len(want))
	}
	for i, w := range want {
		if e := page.Entries[i]; e.Action != w.action || e.Reason != w.reason || e.Result != "ok" {
			t.Errorf("audit entry %d = %s %q %s, want %s %q ok", i, e.Action, e.Reason, e.Result, w.action, w.reason)
		}
	}
}

// TestActionFailsWithoutAudit: when the audit trail cannot be written (its
// Redis is down), an operator action is refused and nothing changes.
func TestActionFailsWithoutAudit(t *testing.T) {
	main, auditRedis := storetest.StartRedis(t), storetest.StartRedis(t)
	st := main.Open(t)
	svc := breaker.NewService(st)
	api := New(Options{Breakers: svc, Store: st, Audit: audit.New(auditRedis.Open(t), nil)})
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

// freezingAudit is the store's audit trail that freezes redis-server just
// after an action is recorded, so the action itself meets a store that
// does not answer, and thaws it after thawAfter. The result record waits
// for the thaw, so it is always written.
type freezingAudit struct {
	*store.Store
	redis     *storetest.Redis
	thawAfter time.Duration
	frozen    chan struct{}
	thawed    chan struct{}
}

func (f *freezingAudit) Append(ctx context.Context, key string, maxLen int64, fields map[string]string) (string, error) {
	if fields["kind"] == "result" {
		<-f.thawed
	}
	id, err := f.Store.Append(ctx, key, maxLen, fields)
	if fields["kind"] == "action" {
		f.redis.Freeze()
		time.AfterFunc(f.thawAfter, func() { f.redis.Thaw(); close(f.thawed) })
		close(f.frozen)
	}
	return id, err
}

// TestAuditUnknownAndUncancelable: an action whose store reply is lost is
// recorded as "unknown", not as an error (it was applied); an action the
// client gives up on still runs to its end and is recorded "ok".
func TestAuditUnknownAndUncancelable(t *testing.T) {
	r := storetest.StartRedis(t)
	tests := []struct {
		name         string
		storeTimeout time.Duration
		cancel       bool
		wantResult   string
	}{
		{name: "store timeout after the action was sent", storeTimeout: 200 * time.Millisecond, wantResult: "unknown"},
		{name: "client cancels while the action runs", storeTimeout: 5 * time.Second, cancel: true, wantResult: "ok"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := storetest.OpenURL(t, r.URL(), tt.storeTimeout)
			fa := &freezingAudit{Store: st, redis: r, thawAfter: 600 * time.Millisecond,
				frozen: make(chan struct{}), thawed: make(chan struct{})}
			api := New(Options{Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Store: st, Audit: audit.New(fa, nil)})
			t.Cleanup(api.Close)
			srv := newServer(t, api)
			name := fmt.Sprintf("audited-%d", i)
			// Load the scripts first: a frozen Redis's NOSCRIPT answer would
			// come too late for the EVAL that follows it.
			if _, _, err := breaker.NewService(st).Put(context.Background(), "warm", breaker.DefaultConfig()); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				go func() { <-fa.frozen; time.Sleep(100 * time.Millisecond); cancel() }()
			}
			req, _ := http.NewRequestWithContext(ctx, "PUT", srv.URL+"/v1/breakers/"+name, strings.NewReader(`{}`))
			if resp, err := srv.Client().Do(req); err == nil {
				resp.Body.Close()
			}
			<-fa.thawed
			ta := &testAPI{t: t, srv: srv}
			// The result record is written by the request's handler, which
			// may still be at work after a cancel: wait for it.
			var got []AuditEntry
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				var page auditPage
				ta.do("GET", "/v1/audit?limit=50", nil, "").JSON(t, &page)
				got = nil
				for _, e := range page.Entries {
					if e.Target == name {
						got = append(got, e)
					}
				}
				if len(got) == 1 && got[0].Result == tt.wantResult {
					break
				}
			}
			if len(got) != 1 || got[0].Result != tt.wantResult {
				t.Errorf("audit entries for %s = %+v, want one with result %q", name, got, tt.wantResult)
			}
			if res := ta.do("GET", "/v1/breakers/"+name, nil, ""); res.Status != http.StatusOK {
				t.Errorf("GET /v1/breakers/%s = %d, want 200: the action was applied", name, res.Status)
			}
		})
	}
}
