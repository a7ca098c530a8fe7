package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestAgentRelaysRetries: the retries a caller reports to the agent reach
// the control plane's window, where they count against the retry budget.
func TestAgentRelaysRetries(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	cp.do(t, "PUT", "/v1/breakers/inv", `{"minimum_calls":1000,"retry_budget_percent":10}`)
	agent := startAgent(t, "--controlplane", cp.srv.URL)
	if a := send(t, "POST", agent+"/v1/breakers/inv/outcomes", `{"outcomes":[{"success":false,"duration_ms":5,"count":7,"retries":3}]}`); a.status != 200 {
		t.Fatalf("outcomes = %d %s", a.status, a.body)
	}
	var v contract.Breaker
	deadline := time.Now().Add(5 * time.Second)
	for {
		json.Unmarshal([]byte(get(t, cp.srv.URL+"/v1/breakers/inv").body), &v)
		if v.Stats.Calls == 7 && v.Stats.Retries == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("control plane counted %+v, want 7 calls, 3 retries", v.Stats)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAgentSlowStart: after a breaker recovers with a slow start, the
// agent lets through only the share the control plane says, refusing the
// rest as if open (allowed false, state closed), and its answers say
// admit_percent 100, since it applied the share already.
func TestAgentSlowStart(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	// 100 calls in the window at the trip and one probe: the ramp starts
	// at 1% and takes ten minutes.
	cp.do(t, "PUT", "/v1/breakers/inv", `{"window":{"type":"count","size":100},"minimum_calls":100,"open_duration_ms":50,"slow_start_ms":600000}`)
	cp.do(t, "POST", "/v1/breakers/inv/outcomes", `{"outcomes":[{"success":false,"count":100}]}`)
	agent := startAgent(t, "--controlplane", cp.srv.URL)
	time.Sleep(100 * time.Millisecond)
	var d contract.Decision
	deadline := time.Now().Add(5 * time.Second)
	for d.Permit == "" {
		json.Unmarshal([]byte(send(t, "POST", agent+"/v1/breakers/inv/acquire", "").body), &d)
		if time.Now().After(deadline) {
			t.Fatalf("acquire = %+v, want a probe permit", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a := send(t, "POST", agent+"/v1/breakers/inv/outcomes", `{"outcomes":[{"success":true,"permit":"`+d.Permit+`"}]}`); a.status != 200 {
		t.Fatalf("outcomes(probe) = %d %s", a.status, a.body)
	}
	var v contract.Breaker
	for v.State != "closed" || v.AdmitPercent == 100 {
		json.Unmarshal([]byte(get(t, cp.srv.URL+"/v1/breakers/inv").body), &v)
		if time.Now().After(deadline) {
			t.Fatalf("breaker = %s, admit_percent %d; want closed in a slow start", v.State, v.AdmitPercent)
		}
		time.Sleep(20 * time.Millisecond)
	}

	allowed := 0
	for range 300 {
		var d contract.Decision
		a := send(t, "POST", agent+"/v1/breakers/inv/acquire", "")
		json.Unmarshal([]byte(a.body), &d)
		if a.status != 200 || d.State != "closed" || d.AdmitPercent != 100 {
			t.Fatalf("acquire during the slow start = %d %s, want 200, closed, admit_percent 100", a.status, a.body)
		}
		if d.Allowed {
			allowed++
		}
	}
	// 1% of 300, give or take the one call that learns the share.
	if allowed < 1 || allowed > 6 {
		t.Errorf("the agent allowed %d of 300 calls at 1%%, want 1 to 6", allowed)
	}
	if json.Unmarshal([]byte(get(t, cp.srv.URL+"/v1/breakers/inv").body), &v); v.Stats.Failures != 0 {
		t.Errorf("the window holds %d failures, want none: refusals are not outcomes", v.Stats.Failures)
	}
}
