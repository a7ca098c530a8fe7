package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestSlowStartOverHTTP: a breaker with slow_start_ms that half-open
// closes answers acquires with admit_percent below 100 and shows the ramp
// in GET, and a budgeted breaker's report answers lend retries; a
// retries field over count is a 400 naming it.
func TestSlowStartOverHTTP(t *testing.T) {
	ta := newTestAPI(t, nil)
	const b = "/v1/breakers/ramp"
	if res := ta.do("PUT", b, `{"window":{"type":"count","size":10},"minimum_calls":4,"open_duration_ms":1000,"slow_start_ms":10000,"retry_budget_percent":50}`, ""); res.Status != 201 {
		t.Fatalf("PUT = %d %s", res.Status, res.Body)
	}
	var d struct {
		State          string `json:"state"`
		Permit         string `json:"permit"`
		AdmitPercent   int64  `json:"admit_percent"`
		RetryAllowance *int64 `json:"retry_allowance"`
	}
	ta.do("POST", b+"/outcomes", `{"outcomes":[{"success":true,"count":4}]}`, "").JSON(t, &d)
	if d.RetryAllowance == nil || *d.RetryAllowance != 2 || d.AdmitPercent != 100 {
		t.Errorf("report of 4 calls: retry_allowance %v, admit_percent %d; want 2 (50%%) and 100", d.RetryAllowance, d.AdmitPercent)
	}
	stream, res := ta.openEvents(t, "?breaker=ramp", "")
	if stream == nil {
		t.Fatalf("GET /v1/events = %d, want 200", res.StatusCode)
	}
	ta.do("POST", b+"/outcomes", `{"outcomes":[{"success":false,"count":4}]}`, "")
	stream.next(named("breaker.state")) // the trip: the stream is subscribed
	ta.Mini.Advance(1100 * time.Millisecond)
	ta.do("POST", b+"/acquire", nil, "").JSON(t, &d)
	ta.do("POST", b+"/outcomes", `{"outcomes":[{"success":true,"permit":"`+d.Permit+`"}]}`, "").JSON(t, &d)
	if d.State != "closed" || d.AdmitPercent != 13 { // 1 probe of 8 calls: 13%
		t.Errorf("probe closes: state %q, admit_percent %d; want closed, 13", d.State, d.AdmitPercent)
	}
	// The close that starts the ramp says so on the event stream.
	for {
		e := stream.next(named("breaker.state"))
		var data struct {
			To          string `json:"to"`
			SlowStartMS int64  `json:"slow_start_ms"`
		}
		json.Unmarshal([]byte(e.Data), &data)
		if data.To != "closed" {
			continue
		}
		if data.SlowStartMS != 10000 {
			t.Errorf("breaker.state event of the close = %s, want slow_start_ms 10000", e.Data)
		}
		var v any
		json.Unmarshal([]byte(e.Data), &v)
		if err := specDoc(t).events[e.Name].VisitJSON(v, openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
			t.Errorf("event %s does not match its schema: %v", e.Data, err)
		}
		break
	}
	ta.Mini.Advance(5 * time.Second)
	var g struct {
		AdmitPercent   int64     `json:"admit_percent"`
		SlowStartUntil time.Time `json:"slow_start_until"`
	}
	ta.do("GET", b, nil, "").JSON(t, &g)
	if g.AdmitPercent != 13+87*5000/10000 || g.SlowStartUntil.IsZero() {
		t.Errorf("GET halfway: admit_percent %d, slow_start_until %v; want %d and set", g.AdmitPercent, g.SlowStartUntil, 13+87*5000/10000)
	}

	// Metrics show the share now and count the retries reported.
	ta.do("POST", b+"/outcomes", `{"outcomes":[{"success":true,"count":3,"retries":2}]}`, "")
	metrics := string(ta.do("GET", "/metrics", nil, "").Body)
	for _, want := range []string{
		`breakwater_breaker_admit_percent{breaker="ramp"} ` + strconv.Itoa(13+87*5000/10000),
		`breakwater_breaker_retries_total{breaker="ramp"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("GET /metrics lacks %s", want)
		}
	}

	bad := ta.do("POST", b+"/outcomes", `{"outcomes":[{"success":true,"count":1,"retries":2}]}`, "")
	if p := bad.Problem(t); bad.Status != http.StatusBadRequest || p.Field != "outcomes[0].retries" {
		t.Errorf("retries over count = %d, field %q; want 400 naming outcomes[0].retries", bad.Status, p.Field)
	}
}
