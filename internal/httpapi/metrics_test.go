package httpapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestMetricsShowFleetState: a trip made through one replica shows as the
// same one-hot state and transition count on both replicas' /metrics.
func TestMetricsShowFleetState(t *testing.T) {
	r := storetest.StartRedis(t)
	a := serveAPI(t, r.Open(t), nil)
	b := serveAPI(t, r.Open(t), nil)
	a.do("PUT", "/v1/breakers/pay", `{"minimum_calls":2}`, "")
	a.do("PUT", "/v1/breakers/inv", `{}`, "")
	a.do("POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":false,"count":2}]}`, "")

	want := []string{
		`breakwater_breaker_state{breaker="pay",state="open"} 1`,
		`breakwater_breaker_state{breaker="pay",state="closed"} 0`,
		`breakwater_breaker_state{breaker="pay",state="forced_open"} 0`,
		`breakwater_breaker_state{breaker="inv",state="closed"} 1`,
		`breakwater_breaker_transitions_total{breaker="pay",from="closed",to="open"} 1`,
		`breakwater_store_up 1`,
	}
	for name, cp := range map[string]*testAPI{"A": a, "B": b} {
		body := string(cp.do("GET", "/metrics", nil, "").Body)
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("replica %s /metrics lacks %s", name, w)
			}
		}
	}
	// Calls are counted by the replica that heard them.
	if body := string(a.do("GET", "/metrics", nil, "").Body); !strings.Contains(body, `breakwater_breaker_calls_total{breaker="pay",outcome="failure"} 2`) {
		t.Errorf("replica A /metrics lacks the 2 reported failures")
	}
	if body := string(a.do("GET", "/metrics", nil, "").Body); !strings.Contains(body, `breakwater_http_request_duration_seconds_count{code="200",method="POST",route="/v1/breakers/{name}/outcomes"} 1`) {
		t.Errorf("replica A /metrics lacks the outcomes request by route pattern")
	}
}

// TestMetricsMethodLabelsBounded: requests with made-up methods, sent
// without a token, all count under one method label.
func TestMetricsMethodLabelsBounded(t *testing.T) {
	ta := newTestAPI(t, nil)
	for i := range 20 {
		ta.do(fmt.Sprintf("BREW%d", i), "/v1/breakers/pay", nil, "")
	}
	body := string(ta.do("GET", "/metrics", nil, "").Body)
	if strings.Contains(body, `method="BREW`) {
		t.Errorf("/metrics has a label per made-up method:\n%s", grepLines(body, "BREW"))
	}
	if !strings.Contains(body, `method="other"`) {
		t.Errorf("/metrics lacks method=\"other\" for made-up methods")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestStoreDurationsByOperation: each store call is observed once, under
// its script's or command's name, in the one series of that name.
func TestStoreDurationsByOperation(t *testing.T) {
	reg := prometheus.NewRegistry()
	observe := StoreObserver(reg)
	for range 3 {
		observe("ratelimit.take", time.Millisecond, nil)
	}
	observe("smembers", 2*time.Millisecond, nil)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "breakwater_store_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" {
					got[l.GetValue()] = m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	want := map[string]uint64{"ratelimit.take": 3, "smembers": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("breakwater_store_duration_seconds counts by op (-want +got):\n%s", diff)
	}
}
