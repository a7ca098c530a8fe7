package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// fleet is two control planes over one Redis and an agent beside each,
// proxying route pay to one upstream.
type fleet struct {
	cps    []*controlPlane
	agents []string
	up     *upstream
}

func newFleet(t *testing.T, breakerConfig string) *fleet {
	t.Helper()
	r := storetest.StartRedis(t)
	f := &fleet{up: newUpstream(t)}
	for range 2 {
		f.cps = append(f.cps, startControlPlane(t, r.Open(t)))
	}
	f.cps[0].do(t, "PUT", "/v1/breakers/pay", breakerConfig)
	for _, cp := range f.cps {
		f.agents = append(f.agents, startAgent(t, "--controlplane", cp.srv.URL, "--route", "pay="+f.up.srv.URL, "--route-attempts", "1"))
	}
	// Each agent has used the route once, so its client follows the
	// breaker and holds its event stream.
	for _, a := range f.agents {
		if got := get(t, a+"/pay/warm"); got.status != http.StatusOK {
			t.Fatalf("warm-up through %s = %d %s", a, got.status, got.body)
		}
	}
	return f
}

// aborted reports whether an answer was made up by a drill's fault.
func aborted(a answer) bool { return a.header.Get("Breakwater-Fault") == "pay" }

// waitAll calls every agent until each answers as want says, or fails the
// test after limit.
func (f *fleet) waitAll(t *testing.T, limit time.Duration, what string, want func(answer) bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for i, a := range f.agents {
		for {
			if want(get(t, a+"/pay/x")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("agent %d: not %s within %v", i, what, limit)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestFaultReachesEveryAgent: a fault set through one control plane
// changes what the agents of both do within a second, carried by the event
// stream (the breaker's cache_ttl_ms is a minute, so no poll is due), and
// ends by itself at its expiry.
func TestFaultReachesEveryAgent(t *testing.T) {
	f := newFleet(t, `{"minimum_calls":1000,"cache_ttl_ms":60000}`)
	// Give the agents' streams a moment to be up (they connect in the
	// background at the first use of the client).
	time.Sleep(300 * time.Millisecond)

	f.cps[1].do(t, "PUT", "/v1/faults/pay", `{"abort_percent":100,"abort_status":503,"reason":"drill","ttl_ms":3000}`)
	set := time.Now()
	before := f.up.calls.Load()
	f.waitAll(t, time.Second, "aborting", aborted)
	t.Logf("every agent aborted %v after the PUT", time.Since(set).Round(time.Millisecond))
	a := get(t, f.agents[0]+"/pay/x")
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "drill") {
		t.Errorf("aborted call = %d %s, want 503 with the fault's reason", a.status, a.body)
	}
	if n := f.up.calls.Load() - before; n > 2 {
		// At most one call per agent may have gone out before it learned.
		t.Errorf("the upstream got %d calls during the fault, want none once the agents knew", n)
	}

	// It ends by itself: no DELETE.
	f.waitAll(t, 3*time.Second+5*time.Second, "passing calls after the fault's expiry", func(a answer) bool {
		return a.status == http.StatusOK && !aborted(a)
	})
	if time.Since(set) < 3*time.Second {
		t.Errorf("calls went through %v after the PUT, before the fault's 3 s expiry", time.Since(set))
	}
}

// TestGameDay is the walk-through of docs/drills.md: 100% aborts for the
// route pay trip the fleet's breaker once, without a call reaching the
// upstream; after the fault ends, the breaker recovers through one probe.
func TestGameDay(t *testing.T) {
	f := newFleet(t, `{"minimum_calls":4,"failure_rate_threshold":50,"open_duration_ms":1000,"half_open_max_calls":1,"cache_ttl_ms":1000}`)
	time.Sleep(300 * time.Millisecond)
	f.cps[0].do(t, "PUT", "/v1/faults/pay", `{"abort_percent":100,"abort_status":503,"reason":"game day","ttl_ms":600000}`)
	f.waitAll(t, time.Second, "aborting", aborted)
	before := f.up.calls.Load()

	// Calls through both agents: aborted, then refused by the open breaker.
	f.waitAll(t, 5*time.Second, "refusing with an open circuit", func(a answer) bool {
		return a.status == http.StatusServiceUnavailable && !aborted(a) && strings.Contains(a.body, "open")
	})
	if n := f.up.calls.Load() - before; n != 0 {
		t.Errorf("the upstream got %d calls during the drill, want 0", n)
	}
	b := breakerOf(t, f.cps[1])
	if b.State != "open" {
		t.Fatalf("breaker state = %q, want open", b.State)
	}

	f.cps[1].do(t, "DELETE", "/v1/faults/pay", "")
	// After open_duration_ms one probe goes out, succeeds and closes it.
	f.waitAll(t, 10*time.Second, "passing calls again", func(a answer) bool { return a.status == http.StatusOK })
	b = breakerOf(t, f.cps[0])
	if b.State != "closed" {
		t.Fatalf("breaker state after recovery = %q, want closed", b.State)
	}
	// The fleet tripped once and recovered through one probe: whatever
	// the two agents did, the store saw exactly these transitions.
	want := map[string]float64{"closed:open": 1, "open:half_open": 1, "half_open:closed": 1}
	got := transitions(t, f.cps[0])
	for k, n := range want {
		if got[k] != n {
			t.Errorf("transitions %s = %v, want %v (all: %v)", k, got[k], n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("transitions = %v, want only %v", got, want)
	}
}

type breakerView struct {
	State string `json:"state"`
}

func breakerOf(t *testing.T, cp *controlPlane) breakerView {
	t.Helper()
	a := get(t, cp.srv.URL+"/v1/breakers/pay")
	var b breakerView
	if err := json.Unmarshal([]byte(a.body), &b); err != nil {
		t.Fatalf("GET breaker: %d %s", a.status, a.body)
	}
	return b
}

// transitions reads breakwater_breaker_transitions_total of pay from a
// control plane's /metrics, by "from:to".
func transitions(t *testing.T, cp *controlPlane) map[string]float64 {
	t.Helper()
	res, err := http.Get(cp.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, `breakwater_breaker_transitions_total{breaker="pay",`)
		if !ok {
			continue
		}
		var from, to string
		var n float64
		labels, value, _ := strings.Cut(rest, "} ")
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "from":
				from = v
			case "to":
				to = v
			}
		}
		if err := json.Unmarshal([]byte(value), &n); err != nil {
			t.Fatalf("metric line %q", line)
		}
		out[from+":"+to] = n
	}
	return out
}
