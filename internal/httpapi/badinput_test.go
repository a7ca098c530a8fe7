package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestBadInput sends every kind of bad request and checks each gets a 4xx
// problem naming the field, and that nothing was written.
func TestBadInput(t *testing.T) {
	ta := newTestAPI(t, nil)
	if r := ta.do("PUT", "/v1/breakers/pay", `{}`, ""); r.Status != http.StatusCreated {
		t.Fatalf("PUT pay = %d %s", r.Status, r.Body)
	}
	long := strings.Repeat("a", 129)
	huge := `{"minimum_calls": 5, "pad": "` + strings.Repeat("x", MaxBodyBytes) + `"}`
	manyOutcomes := `{"outcomes":[` + strings.Repeat(`{"success":true},`, 1000) + `{"success":true}]}`

	tests := []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		// config fields out of range
		{"window type", "PUT", "/v1/breakers/pay", `{"window":{"type":"sliding"}}`, 400, "window.type"},
		{"window size zero", "PUT", "/v1/breakers/pay", `{"window":{"size":0}}`, 400, "window.size"},
		{"time window too long", "PUT", "/v1/breakers/pay", `{"window":{"size":3601}}`, 400, "window.size"},
		{"count window too long", "PUT", "/v1/breakers/pay", `{"window":{"type":"count","size":10001}}`, 400, "window.size"},
		{"count window below minimum_calls", "PUT", "/v1/breakers/pay", `{"window":{"type":"count","size":5},"minimum_calls":6}`, 400, "minimum_calls"},
		{"minimum_calls zero", "PUT", "/v1/breakers/pay", `{"minimum_calls":0}`, 400, "minimum_calls"},
		{"failure rate 0", "PUT", "/v1/breakers/pay", `{"failure_rate_threshold":0}`, 400, "failure_rate_threshold"},
		{"failure rate 101", "PUT", "/v1/breakers/pay", `{"failure_rate_threshold":101}`, 400, "failure_rate_threshold"},
		{"slow duration negative", "PUT", "/v1/breakers/pay", `{"slow_call_duration_ms":-5}`, 400, "slow_call_duration_ms"},
		{"slow rate 101", "PUT", "/v1/breakers/pay", `{"slow_call_rate_threshold":101}`, 400, "slow_call_rate_threshold"},
		{"consecutive negative", "PUT", "/v1/breakers/pay", `{"consecutive_failures":-1}`, 400, "consecutive_failures"},
		{"open duration zero", "PUT", "/v1/breakers/pay", `{"open_duration_ms":0}`, 400, "open_duration_ms"},
		{"probes zero", "PUT", "/v1/breakers/pay", `{"half_open_max_calls":0}`, 400, "half_open_max_calls"},
		{"probe timeout zero", "PUT", "/v1/breakers/pay", `{"probe_timeout_ms":0}`, 400, "probe_timeout_ms"},
		{"cache ttl 0", "PUT", "/v1/breakers/pay", `{"cache_ttl_ms":0}`, 400, "cache_ttl_ms"},
		{"cache ttl 60001", "PUT", "/v1/breakers/pay", `{"cache_ttl_ms":60001}`, 400, "cache_ttl_ms"},
		{"slow start negative", "PUT", "/v1/breakers/pay", `{"slow_start_ms":-1}`, 400, "slow_start_ms"},
		{"slow start 600001", "PUT", "/v1/breakers/pay", `{"slow_start_ms":600001}`, 400, "slow_start_ms"},
		{"retry budget 101", "PUT", "/v1/breakers/pay", `{"retry_budget_percent":101}`, 400, "retry_budget_percent"},
		{"retry budget negative", "PUT", "/v1/breakers/pay", `{"retry_budget_percent":-1}`, 400, "retry_budget_percent"},
		{"retry minimum negative", "PUT", "/v1/breakers/pay", `{"retry_budget_min_per_second":-0.5}`, 400, "retry_budget_min_per_second"},
		{"retry minimum over a million", "PUT", "/v1/breakers/pay", `{"retry_budget_min_per_second":1000001}`, 400, "retry_budget_min_per_second"},
		{"retry minimum a string", "PUT", "/v1/breakers/pay", `{"retry_budget_min_per_second":"1"}`, 400, "retry_budget_min_per_second"},
		// types, unknown fields, malformed JSON
		{"string for int", "PUT", "/v1/breakers/pay", `{"minimum_calls":"5"}`, 400, "minimum_calls"},
		{"float for int", "PUT", "/v1/breakers/pay", `{"open_duration_ms":1.5}`, 400, "open_duration_ms"},
		{"overflow", "PUT", "/v1/breakers/pay", `{"open_duration_ms":1e30}`, 400, "open_duration_ms"},
		{"nested type", "PUT", "/v1/breakers/pay", `{"window":{"size":"ten"}}`, 400, "window.size"},
		{"unknown field", "PUT", "/v1/breakers/pay", `{"minimum_call":5}`, 400, "minimum_call"},
		{"not an object", "PUT", "/v1/breakers/pay", `[1,2]`, 400, ""},
		{"malformed", "PUT", "/v1/breakers/pay", `{"minimum_calls":`, 400, ""},
		{"garbage", "PUT", "/v1/breakers/pay", `not json`, 400, ""},
		{"two values", "PUT", "/v1/breakers/pay", `{} {}`, 400, ""},
		{"oversized", "PUT", "/v1/breakers/pay", huge, 413, ""},
		// names
		{"name too long", "PUT", "/v1/breakers/" + long, `{}`, 400, "name"},
		{"name starts with a dot", "PUT", "/v1/breakers/.hidden", `{}`, 400, "name"},
		{"name with a brace", "GET", "/v1/breakers/a%7Bb%7D", ``, 400, "name"},
		{"name with a colon", "POST", "/v1/breakers/a:b/acquire", ``, 400, "name"},
		{"name with a space", "DELETE", "/v1/breakers/a%20b", ``, 400, "name"},
		// unknown breakers
		{"get unknown", "GET", "/v1/breakers/nope", ``, 404, ""},
		{"acquire unknown", "POST", "/v1/breakers/nope/acquire", ``, 404, ""},
		{"report unknown", "POST", "/v1/breakers/nope/outcomes", `{"outcomes":[{"success":true}]}`, 404, ""},
		{"override unknown", "PUT", "/v1/breakers/nope/override", `{"state":"forced_open","reason":"x"}`, 404, ""},
		{"unforce unknown", "DELETE", "/v1/breakers/nope/override", ``, 404, ""},
		{"reset unknown", "POST", "/v1/breakers/nope/reset", ``, 404, ""},
		{"delete unknown", "DELETE", "/v1/breakers/nope", ``, 404, ""},
		// acquire
		{"acquire with a field", "POST", "/v1/breakers/pay/acquire", `{"force":true}`, 400, "force"},
		// outcomes
		{"outcomes missing", "POST", "/v1/breakers/pay/outcomes", `{}`, 400, "outcomes"},
		{"retries over count", "POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":false,"count":2,"retries":3}]}`, 400, "outcomes[0].retries"},
		{"retries negative", "POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":false,"retries":-1}]}`, 400, "outcomes[0].retries"},
		{"outcomes empty body", "POST", "/v1/breakers/pay/outcomes", ``, 400, ""},
		{"outcomes empty list", "POST", "/v1/breakers/pay/outcomes", `{"outcomes":[]}`, 400, "outcomes"},
		{"outcomes too many", "POST", "/v1/breakers/pay/outcomes", manyOutcomes, 400, "outcomes"},
		{"success missing", "POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"duration_ms":5}]}`, 400, "outcomes[0].success"},
		{"success not bool", "POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":"yes"}]}`, 400, "outcomes[0].success"},
		{"nested type error", "POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":true},{"success":true,"count":"3"}]}`, 400, "outcomes[1].count"},
		{"duration negative", "POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":true},{"success":true,"duration_ms":-1}]}`, 400, "outcomes[1].duration_ms"},
		{"count zero", "POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":true,"count":0}]}`, 400, "outcomes[0].count"},
		{"count too big", "POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":true,"count":1000001}]}`, 400, "outcomes[0].count"},
		{"permit with count", "POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":true,"count":2,"permit":"1.1"}]}`, 400, "outcomes[0].count"},
		{"permit forged", "POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":true,"permit":"}{"}]}`, 400, "outcomes[0].permit"},
		{"generation negative", "POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":true,"generation":-1}]}`, 400, "outcomes[0].generation"},
		{"outcome unknown field", "POST", "/v1/breakers/pay/outcomes", `{"outcomes":[{"success":true},{"success":true,"latency":3}]}`, 400, "outcomes[1].latency"},
		{"nested unknown field", "PUT", "/v1/breakers/pay", `{"window":{"type":"count","sizes":3}}`, 400, "window.sizes"},
		// overrides
		{"override bad state", "PUT", "/v1/breakers/pay/override", `{"state":"open","reason":"x"}`, 400, "state"},
		{"override no reason", "PUT", "/v1/breakers/pay/override", `{"state":"forced_open"}`, 400, "reason"},
		{"override long reason", "PUT", "/v1/breakers/pay/override", `{"state":"forced_open","reason":"` + strings.Repeat("r", 501) + `"}`, 400, "reason"},
		{"override ttl zero", "PUT", "/v1/breakers/pay/override", `{"state":"forced_open","reason":"x","ttl_ms":0}`, 400, "ttl_ms"},
		{"override ttl too long", "PUT", "/v1/breakers/pay/override", `{"state":"forced_open","reason":"x","ttl_ms":9999999999999}`, 400, "ttl_ms"},
		{"reset with a field", "POST", "/v1/breakers/pay/reset", `{"hard":true}`, 400, "hard"},
		{"release empty reason", "DELETE", "/v1/breakers/pay/override?reason=", ``, 400, "reason"},
		{"release long reason", "DELETE", "/v1/breakers/pay/override?reason=" + strings.Repeat("r", 501), ``, 400, "reason"},
		{"release two reasons", "DELETE", "/v1/breakers/pay/override?reason=a&reason=b", ``, 400, "reason"},
		{"release reason not UTF-8", "DELETE", "/v1/breakers/pay/override?reason=%FF", ``, 400, "reason"},
		{"reset empty reason", "POST", "/v1/breakers/pay/reset", `{"reason":""}`, 400, "reason"},
		{"reset long reason", "POST", "/v1/breakers/pay/reset", `{"reason":"` + strings.Repeat("é", 501) + `"}`, 400, "reason"},
		{"reset reason not a string", "POST", "/v1/breakers/pay/reset", `{"reason":42}`, 400, "reason"},
		// routes
		{"unknown route", "GET", "/v1/nothing", ``, 404, ""},
		{"wrong method", "PATCH", "/v1/breakers/pay", `{}`, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ta.do(tt.method, tt.path, tt.body, "")
			if r.Status != tt.status {
				t.Fatalf("%s %s = %d, want %d (%s)", tt.method, tt.path, r.Status, tt.status, r.Body)
			}
			p := r.Problem(t)
			if p.Status != tt.status || p.Title == "" || p.Detail == "" {
				t.Errorf("problem = %+v, want status %d with a title and a detail", p, tt.status)
			}
			if p.Field != tt.field {
				t.Errorf("problem field = %q, want %q (detail %q)", p.Field, tt.field, p.Detail)
			}
			if tt.field != "" && !strings.Contains(p.Detail, lastPart(tt.field)) {
				t.Errorf("detail %q does not name %q", p.Detail, tt.field)
			}
		})
	}

	// Nothing above may have changed the breaker.
	var b struct {
		Config struct {
			MinimumCalls int64 `json:"minimum_calls"`
		} `json:"config"`
		State      string `json:"state"`
		Generation int64  `json:"generation"`
		Stats      struct {
			Calls int64 `json:"calls"`
		} `json:"stats"`
	}
	ta.do("GET", "/v1/breakers/pay", nil, "").JSON(t, &b)
	if b.Config.MinimumCalls != 20 || b.State != "closed" || b.Generation != 1 || b.Stats.Calls != 0 {
		t.Errorf("after bad requests, breaker = %+v; want it untouched", b)
	}
}

func lastPart(field string) string {
	if i := strings.LastIndexAny(field, ".]"); i >= 0 && i+1 < len(field) {
		return field[i+1:]
	}
	return field
}
