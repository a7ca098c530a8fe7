package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// healthAnswer is GET /v1/health as a client reads it.
type healthAnswer struct {
	Status   string `json:"status"`
	Store    string `json:"store"`
	Breakers struct {
		Closed       int      `json:"closed"`
		Open         []string `json:"open"`
		HalfOpen     []string `json:"half_open"`
		ForcedOpen   []string `json:"forced_open"`
		ForcedClosed []string `json:"forced_closed"`
	} `json:"breakers"`
	RateLimits int `json:"ratelimits"`
}

func (ta *testAPI) health(t *testing.T) healthAnswer {
	t.Helper()
	res := ta.do("GET", "/v1/health", nil, "")
	if res.Status != http.StatusOK {
		t.Fatalf("GET /v1/health = %d, want 200 (body %s)", res.Status, res.Body)
	}
	var h healthAnswer
	res.JSON(t, &h)
	return h
}

// TestHealth puts breakers in every state and checks that /v1/health puts
// each in its one bucket, and says degraded exactly while one is open,
// half-open or forced open.
func TestHealth(t *testing.T) {
	ta := newTestAPI(t, nil)
	const tripping = `{"minimum_calls":1,"open_duration_ms":1000}`
	trip := func(name string) {
		t.Helper()
		if res := ta.do("POST", "/v1/breakers/"+name+"/outcomes", `{"outcomes":[{"success":false}]}`, ""); res.Status != 200 {
			t.Fatalf("trip %s = %d (body %s)", name, res.Status, res.Body)
		}
	}
	want := func(status string, closed int, open, halfOpen, forcedOpen, forcedClosed []string, limits int) healthAnswer {
		var h healthAnswer
		h.Status, h.Store, h.RateLimits = status, "ok", limits
		h.Breakers.Closed = closed
		h.Breakers.Open, h.Breakers.HalfOpen, h.Breakers.ForcedOpen, h.Breakers.ForcedClosed = open, halfOpen, forcedOpen, forcedClosed
		return h
	}
	none := []string{}

	if diff := cmp.Diff(want("ok", 0, none, none, none, none, 0), ta.health(t)); diff != "" {
		t.Errorf("empty fleet: health mismatch (-want +got):\n%s", diff)
	}

	for _, name := range []string{"a-closed", "b-open", "c-half", "d-forced-open", "e-forced-closed"} {
		ta.do("PUT", "/v1/breakers/"+name, tripping, "")
	}
	ta.do("PUT", "/v1/ratelimits/search", `{"capacity":10,"refill_per_second":1}`, "")
	ta.do("PUT", "/v1/breakers/e-forced-closed/override", `{"state":"forced_closed","reason":"drill"}`, "")
	if diff := cmp.Diff(want("ok", 4, none, none, none, []string{"e-forced-closed"}, 1), ta.health(t)); diff != "" {
		t.Errorf("forced closed alone: health mismatch (-want +got):\n%s", diff)
	}

	trip("c-half")
	ta.Mini.Advance(2 * time.Second)
	ta.do("POST", "/v1/breakers/c-half/acquire", nil, "") // moves it to half_open
	trip("b-open")
	ta.do("PUT", "/v1/breakers/d-forced-open/override", `{"state":"forced_open","reason":"maintenance"}`, "")
	got := ta.health(t)
	if diff := cmp.Diff(want("degraded", 1, []string{"b-open"}, []string{"c-half"}, []string{"d-forced-open"}, []string{"e-forced-closed"}, 1), got); diff != "" {
		t.Errorf("every state: health mismatch (-want +got):\n%s", diff)
	}

	for _, name := range []string{"b-open", "c-half", "d-forced-open"} {
		ta.do("POST", "/v1/breakers/"+name+"/reset", nil, "")
	}
	if diff := cmp.Diff(want("ok", 4, none, none, none, []string{"e-forced-closed"}, 1), ta.health(t)); diff != "" {
		t.Errorf("after reset: health mismatch (-want +got):\n%s", diff)
	}
}

// TestHealthStoreDown: with no store to read, /v1/health cannot say ok; it
// is a 503 problem like every endpoint that reads the store.
func TestHealthStoreDown(t *testing.T) {
	ta := newTestAPI(t, nil)
	ta.Mini.Stop(t)
	res := ta.do("GET", "/v1/health", nil, "")
	if res.Status != http.StatusServiceUnavailable {
		t.Fatalf("GET /v1/health with the store down = %d, want 503 (body %s)", res.Status, res.Body)
	}
	if p := res.Problem(t); p.Status != http.StatusServiceUnavailable {
		t.Errorf("problem status = %d, want 503", p.Status)
	}
}
