package clientmetrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/breakwater-dev/breakwater/client"
	"github.com/breakwater-dev/breakwater/client/clientmetrics"
	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/events"
	"github.com/breakwater-dev/breakwater/internal/httpapi"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store"
)

func TestHooksCount(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := clientmetrics.New(reg)
	h := m.Hooks()
	h.OnDecision(client.KindBreaker, "payments", client.SourceServer, true)
	h.OnDecision(client.KindBreaker, "payments", client.SourceCache, true)
	h.OnDecision(client.KindBreaker, "payments", client.SourceCache, true)
	h.OnDecision(client.KindBreaker, "payments", client.SourceCache, false)
	h.OnDecision(client.KindLimiter, "api", client.SourceDegraded, false)
	h.OnStateChange("payments", client.StateClosed, client.StateOpen)
	h.OnStateChange("payments", client.StateOpen, client.StateHalfOpen)
	h.OnDegraded(true)
	h.OnDegraded(false)
	h.OnDegraded(true)

	const want = `
# HELP breakwater_client_breaker_state_changes_total Breaker state changes the client learned, from answers or from the event stream.
# TYPE breakwater_client_breaker_state_changes_total counter
breakwater_client_breaker_state_changes_total{breaker="payments",from="closed",to="open"} 1
breakwater_client_breaker_state_changes_total{breaker="payments",from="open",to="half_open"} 1
# HELP breakwater_client_decisions_total Decisions of the client's breakers and limiters, by kind (breaker, limiter), name, source (cache, server, degraded) and result (allowed, denied).
# TYPE breakwater_client_decisions_total counter
breakwater_client_decisions_total{kind="breaker",name="payments",result="allowed",source="cache"} 2
breakwater_client_decisions_total{kind="breaker",name="payments",result="allowed",source="degraded"} 0
breakwater_client_decisions_total{kind="breaker",name="payments",result="allowed",source="server"} 1
breakwater_client_decisions_total{kind="breaker",name="payments",result="denied",source="cache"} 1
breakwater_client_decisions_total{kind="breaker",name="payments",result="denied",source="degraded"} 0
breakwater_client_decisions_total{kind="breaker",name="payments",result="denied",source="server"} 0
breakwater_client_decisions_total{kind="limiter",name="api",result="allowed",source="cache"} 0
breakwater_client_decisions_total{kind="limiter",name="api",result="allowed",source="degraded"} 0
breakwater_client_decisions_total{kind="limiter",name="api",result="allowed",source="server"} 0
breakwater_client_decisions_total{kind="limiter",name="api",result="denied",source="cache"} 0
breakwater_client_decisions_total{kind="limiter",name="api",result="denied",source="degraded"} 1
breakwater_client_decisions_total{kind="limiter",name="api",result="denied",source="server"} 0
# HELP breakwater_client_degraded How many clients using these metrics are in degraded mode (1 or 0 for a single client).
# TYPE breakwater_client_degraded gauge
breakwater_client_degraded 1
# HELP breakwater_client_degraded_switches_total Switches into (enter) and out of (exit) degraded mode, where the client decides locally because no control plane answers.
# TYPE breakwater_client_degraded_switches_total counter
breakwater_client_degraded_switches_total{direction="enter"} 2
breakwater_client_degraded_switches_total{direction="exit"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestWrapCallsBoth(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := clientmetrics.New(reg)
	var got []string
	h := m.Wrap(client.Hooks{
		OnDecision: func(kind, name string, src client.Source, allowed bool) {
			got = append(got, fmt.Sprintf("decision %s %s %s %v", kind, name, src, allowed))
		},
		OnDegraded: func(entered bool) { got = append(got, fmt.Sprintf("degraded %v", entered)) },
		// OnStateChange left nil: the metrics alone.
	})
	h.OnDecision(client.KindLimiter, "api", client.SourceServer, true)
	h.OnStateChange("payments", client.StateClosed, client.StateOpen)
	h.OnDegraded(true)

	want := []string{"decision limiter api server true", "degraded true"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("wrapped hooks saw %q, want %q", got, want)
	}
	for name, want := range map[string]float64{
		"breakwater_client_decisions_total":             1,
		"breakwater_client_breaker_state_changes_total": 1,
		"breakwater_client_degraded":                    1,
	} {
		if v := sum(t, reg, name, nil); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
}

func TestNewPanicsOnASecondRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	clientmetrics.New(reg)
	defer func() {
		if recover() == nil {
			t.Errorf("New(reg) twice on one registry did not panic")
		}
	}()
	clientmetrics.New(reg)
}

func TestOnDecisionDoesNotAllocate(t *testing.T) {
	h := clientmetrics.New(prometheus.NewRegistry()).Hooks()
	h.OnDecision(client.KindBreaker, "payments", client.SourceCache, true) // first sight of the name
	allocs := testing.AllocsPerRun(1000, func() {
		h.OnDecision(client.KindBreaker, "payments", client.SourceCache, true)
		h.OnDecision(client.KindBreaker, "payments", client.SourceServer, false)
	})
	if allocs != 0 {
		t.Errorf("OnDecision: %v allocations, want 0", allocs)
	}
}

func BenchmarkOnDecision(b *testing.B) {
	h := clientmetrics.New(prometheus.NewRegistry()).Hooks()
	for i := range 20 { // a service's worth of breakers
		h.OnDecision(client.KindBreaker, fmt.Sprintf("dep-%d", i), client.SourceCache, true)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.OnDecision(client.KindBreaker, "dep-7", client.SourceCache, true)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.OnDecision(client.KindBreaker, "dep-7", client.SourceCache, true)
			}
		})
	})
}

// TestWithAClient runs a real client against a real control plane (the
// HTTP API over the embedded store) with the metrics' hooks.
func TestWithAClient(t *testing.T) {
	cp := startControlPlane(t)
	cp.put(t, "/v1/breakers/payments", map[string]any{"cache_ttl_ms": 60000})
	cp.put(t, "/v1/ratelimits/api", map[string]any{"capacity": 1000, "refill_per_second": 1000})

	reg := prometheus.NewRegistry()
	m := clientmetrics.New(reg)
	c, err := client.New(client.Config{
		Endpoints:             []string{cp.URL},
		FlushInterval:         10 * time.Millisecond,
		DegradedProbeInterval: time.Hour, // stay degraded once there
		Hooks:                 m.Hooks(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	b := c.Breaker("payments")
	for range 3 {
		if err := b.Do(ctx, func(context.Context) error { return nil }); err != nil {
			t.Fatalf("Do() = %v", err)
		}
	}
	breakerLabels := map[string]string{"kind": "breaker", "name": "payments", "result": "allowed"}
	if got := sum(t, reg, "breakwater_client_decisions_total", with(breakerLabels, "source", "server")); got != 1 {
		t.Errorf("breaker decisions from the server = %v, want 1", got)
	}
	if got := sum(t, reg, "breakwater_client_decisions_total", with(breakerLabels, "source", "cache")); got != 2 {
		t.Errorf("breaker decisions from the cache = %v, want 2", got)
	}

	// A limit keyed by tenant: the keys never become labels.
	l := c.Limiter("api")
	for i := range 50 {
		if err := l.For(fmt.Sprintf("tenant-%d", i)).Take(ctx); err != nil {
			t.Fatalf("Take(tenant-%d) = %v", i, err)
		}
	}
	if got := sum(t, reg, "breakwater_client_decisions_total", map[string]string{"kind": "limiter", "name": "api"}); got != 50 {
		t.Errorf("limiter decisions = %v, want 50", got)
	}
	if n, err := testutil.GatherAndCount(reg, "breakwater_client_decisions_total"); err != nil || n != 12 {
		t.Errorf("decision series = %d, %v; want 12: six for the breaker, six for the limit, none per key", n, err)
	}
	assertNoLabelContains(t, reg, "tenant-")

	// An operator forces the breaker open: the event stream brings it.
	cp.put(t, "/v1/breakers/payments/override", map[string]any{"state": "forced_open", "reason": "test"})
	changes := map[string]string{"breaker": "payments", "from": "closed", "to": "forced_open"}
	waitFor(t, "the state change counted", func() bool {
		return sum(t, reg, "breakwater_client_breaker_state_changes_total", changes) == 1
	})

	// The control plane goes away: the client switches to deciding locally.
	cp.kill()
	if err := l.For("tenant-new").Take(ctx); err != nil { // no lease for a new key: asks, finds no one
		t.Fatalf("Allow() while degraded = %v, want the local limiter's token", err)
	}
	if got := sum(t, reg, "breakwater_client_degraded", nil); got != 1 {
		t.Errorf("breakwater_client_degraded = %v, want 1", got)
	}
	if got := sum(t, reg, "breakwater_client_degraded_switches_total", map[string]string{"direction": "enter"}); got != 1 {
		t.Errorf("switches into degraded mode = %v, want 1", got)
	}
	if got := sum(t, reg, "breakwater_client_decisions_total", map[string]string{"kind": "limiter", "source": "degraded"}); got != 1 {
		t.Errorf("degraded limiter decisions = %v, want 1", got)
	}
}

// controlPlane is the control plane's HTTP API over an embedded store.
type controlPlane struct {
	*httptest.Server
	api  *httpapi.API
	st   *store.Store
	once sync.Once
}

// serveControlPlane serves a control plane on a loopback port.
func serveControlPlane() (*controlPlane, error) {
	st, err := store.Open(store.Config{})
	if err != nil {
		return nil, err
	}
	api := httpapi.New(httpapi.Options{
		Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Store: st,
		Events: events.NewService(st),
	})
	return &controlPlane{Server: httptest.NewServer(api), api: api, st: st}, nil
}

func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	cp, err := serveControlPlane()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.stop)
	return cp
}

// kill ends the event streams, the connections and the listener.
func (cp *controlPlane) kill() {
	cp.once.Do(func() {
		cp.api.Close()
		cp.CloseClientConnections()
		cp.Close()
	})
}

// stop kills the control plane and closes its store.
func (cp *controlPlane) stop() {
	cp.kill()
	cp.st.Close()
}

// putErr sends an operator's PUT.
func (cp *controlPlane) putErr(path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPut, cp.URL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("PUT %s = %s", path, resp.Status)
	}
	return nil
}

// put sends an operator's PUT and fails the test unless it succeeds.
func (cp *controlPlane) put(t *testing.T, path string, body any) {
	t.Helper()
	if err := cp.putErr(path, body); err != nil {
		t.Fatal(err)
	}
}

// sum gathers reg and adds up the values of the series of metric name
// whose labels include want.
func sum(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			}
		}
	}
	return total
}

// assertNoLabelContains fails the test if any label value of any series
// in reg contains s.
func assertNoLabelContains(t *testing.T, reg *prometheus.Registry, s string) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), s) {
					t.Errorf("%s has label %s=%q: a rate-limit key became a label", mf.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}
}

// with returns a copy of labels with k set to v.
func with(labels map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range labels {
		if kk != k {
			out[kk] = vv
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
