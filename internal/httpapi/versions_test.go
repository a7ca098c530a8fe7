package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestIfMatchTwoOperators: two operators read the same breaker and both
// edit it with If-Match. The second learns of the first's change (412,
// with the version in force) instead of overwriting it; after re-reading,
// its edit applies on top.
func TestIfMatchTwoOperators(t *testing.T) {
	ta := newTestAPI(t, testTokens(t))
	res := ta.do("PUT", "/v1/breakers/pay", `{"minimum_calls":10}`, secretOperator)
	if res.Status != http.StatusCreated || res.Header.Get("ETag") != `"1"` {
		t.Fatalf("create = %d, ETag %q; want 201 and \"1\"", res.Status, res.Header.Get("ETag"))
	}
	etagA := ta.do("GET", "/v1/breakers/pay", nil, secretReader).Header.Get("ETag")
	etagB := ta.do("GET", "/v1/breakers/pay", nil, secretReader).Header.Get("ETag")
	if etagA != `"1"` || etagB != `"1"` {
		t.Fatalf("GET ETags = %q, %q; want \"1\"", etagA, etagB)
	}

	a := ta.doHeader("PUT", "/v1/breakers/pay", `{"minimum_calls":10,"failure_rate_threshold":40}`, secretOperator, map[string]string{"If-Match": etagA})
	if a.Status != http.StatusOK || a.Header.Get("ETag") != `"2"` {
		t.Fatalf("first edit = %d %s, ETag %q; want 200 and \"2\"", a.Status, a.Body, a.Header.Get("ETag"))
	}
	b := ta.doHeader("PUT", "/v1/breakers/pay", `{"minimum_calls":10,"open_duration_ms":5000}`, secretOperator, map[string]string{"If-Match": etagB})
	if b.Status != http.StatusPreconditionFailed {
		t.Fatalf("second edit over a stale version = %d %s, want 412", b.Status, b.Body)
	}
	if p := b.Problem(t); p.Field != "If-Match" || !strings.Contains(p.Detail, "config version 2") || b.Header.Get("ETag") != `"2"` {
		t.Errorf("412 = %+v, ETag %q; want field If-Match, the version in force named, ETag \"2\"", p, b.Header.Get("ETag"))
	}
	var got struct {
		ConfigVersion int64 `json:"config_version"`
		Config        struct {
			FailureRateThreshold int64 `json:"failure_rate_threshold"`
			OpenDurationMS       int64 `json:"open_duration_ms"`
		} `json:"config"`
	}
	ta.do("GET", "/v1/breakers/pay", nil, secretReader).JSON(t, &got)
	if got.ConfigVersion != 2 || got.Config.FailureRateThreshold != 40 || got.Config.OpenDurationMS != 30000 {
		t.Fatalf("after the race: %+v; want version 2 with the first edit only", got)
	}
	// B re-reads, merges and applies on top.
	b = ta.doHeader("PUT", "/v1/breakers/pay", `{"minimum_calls":10,"failure_rate_threshold":40,"open_duration_ms":5000}`, secretOperator, map[string]string{"If-Match": `"2"`})
	if b.Status != http.StatusOK || b.Header.Get("ETag") != `"3"` {
		t.Fatalf("merged edit = %d %s, ETag %q; want 200 and \"3\"", b.Status, b.Body, b.Header.Get("ETag"))
	}

	var hist struct {
		Versions []struct {
			ConfigVersion int64  `json:"config_version"`
			By            string `json:"by"`
		} `json:"versions"`
	}
	ta.do("GET", "/v1/breakers/pay/history?limit=2", nil, secretReader).JSON(t, &hist)
	want := []struct {
		ConfigVersion int64  `json:"config_version"`
		By            string `json:"by"`
	}{{3, "ops"}, {2, "ops"}}
	if diff := cmp.Diff(want, hist.Versions); diff != "" {
		t.Errorf("history?limit=2 (-want +got):\n%s", diff)
	}

	// The audit trail says which version each put made; the refused one
	// made none.
	var audit struct {
		Entries []AuditEntry `json:"entries"`
	}
	ta.do("GET", "/v1/audit?limit=3", nil, secretOperator).JSON(t, &audit)
	var versions []string
	for _, e := range audit.Entries {
		versions = append(versions, fmt.Sprintf("%s %d %.5s", e.Action, e.ConfigVersion, e.Result))
	}
	if diff := cmp.Diff([]string{"breaker.put 3 ok", "breaker.put 0 error", "breaker.put 2 ok"}, versions); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	if body := string(ta.do("GET", "/metrics", nil, "").Body); !strings.Contains(body, `breakwater_breaker_config_version{breaker="pay"} 3`) {
		t.Errorf("/metrics lacks breakwater_breaker_config_version 3:\n%s", grepLines(body, "config_version"))
	}
}

// TestConditionalPuts walks the preconditions on both kinds of objects.
func TestConditionalPuts(t *testing.T) {
	ta := newTestAPI(t, nil)
	for _, kind := range []struct{ path, body string }{
		{"/v1/breakers/x", `{}`},
		{"/v1/ratelimits/x", `{"capacity":5,"refill_per_second":1}`},
	} {
		tests := []struct {
			name      string
			header    map[string]string
			want      int
			wantField string
			wantETag  string
		}{
			{"If-Match on a missing object", map[string]string{"If-Match": `"1"`}, 412, "If-Match", ""},
			{"If-Match * on a missing object", map[string]string{"If-Match": "*"}, 412, "If-Match", ""},
			{"create only", map[string]string{"If-None-Match": "*"}, 201, "", `"1"`},
			{"create only again", map[string]string{"If-None-Match": "*"}, 412, "If-None-Match", `"1"`},
			{"If-None-Match with a tag", map[string]string{"If-None-Match": `"1"`}, 400, "If-None-Match", ""},
			{"both headers", map[string]string{"If-None-Match": "*", "If-Match": `"1"`}, 400, "If-Match", ""},
			{"unquoted tag", map[string]string{"If-Match": `1`}, 400, "If-Match", ""},
			{"tag not a version", map[string]string{"If-Match": `"abc"`}, 400, "If-Match", ""},
			{"weak tag never matches", map[string]string{"If-Match": `W/"1"`}, 412, "If-Match", `"1"`},
			{"one of a list", map[string]string{"If-Match": `"7", "1"`}, 200, "", `"1"`},
			{"If-Match *", map[string]string{"If-Match": "*"}, 200, "", `"1"`},
			{"stale", map[string]string{"If-Match": `"2"`}, 412, "If-Match", `"1"`},
		}
		for _, tt := range tests {
			t.Run(kind.path+"/"+tt.name, func(t *testing.T) {
				res := ta.doHeader("PUT", kind.path, kind.body, "", tt.header)
				if res.Status != tt.want {
					t.Fatalf("PUT %s with %v = %d %s, want %d", kind.path, tt.header, res.Status, res.Body, tt.want)
				}
				if tt.wantField != "" {
					if p := res.Problem(t); p.Field != tt.wantField {
						t.Errorf("problem field = %q, want %q (%s)", p.Field, tt.wantField, p.Detail)
					}
				}
				if got := res.Header.Get("ETag"); got != tt.wantETag {
					t.Errorf("ETag = %q, want %q", got, tt.wantETag)
				}
			})
		}
		if res := ta.do("GET", kind.path, nil, ""); res.Header.Get("ETag") != `"1"` {
			t.Errorf("GET %s ETag = %q after puts of the same config, want \"1\"", kind.path, res.Header.Get("ETag"))
		}
	}
	// Versions go on across delete and re-create, for rate limits too.
	ta.do("PUT", "/v1/ratelimits/x", `{"capacity":6,"refill_per_second":1}`, "")
	ta.do("DELETE", "/v1/ratelimits/x", nil, "")
	if res := ta.do("PUT", "/v1/ratelimits/x", `{"capacity":6,"refill_per_second":1}`, ""); res.Status != 201 || res.Header.Get("ETag") != `"3"` {
		t.Errorf("re-created rate limit = %d, ETag %q; want 201 and \"3\"", res.Status, res.Header.Get("ETag"))
	}
}

// TestHistoryBadInput: ?limit= out of range is a 400 naming limit; an
// unknown object is 404.
func TestHistoryBadInput(t *testing.T) {
	ta := newTestAPI(t, nil)
	ta.do("PUT", "/v1/breakers/x", `{}`, "")
	ta.do("PUT", "/v1/ratelimits/x", `{"capacity":5,"refill_per_second":1}`, "")
	for _, base := range []string{"/v1/breakers", "/v1/ratelimits"} {
		for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?limit="} {
			res := ta.do("GET", base+"/x/history"+q, nil, "")
			if res.Status != http.StatusBadRequest || res.Problem(t).Field != "limit" {
				t.Errorf("GET %s/x/history%s = %d %s, want 400 naming limit", base, q, res.Status, res.Body)
			}
		}
		if res := ta.do("GET", base+"/nope/history", nil, ""); res.Status != http.StatusNotFound {
			t.Errorf("GET %s/nope/history = %d, want 404", base, res.Status)
		}
		var h struct {
			Versions []map[string]any `json:"versions"`
		}
		ta.do("GET", base+"/x/history?limit=100", nil, "").JSON(t, &h)
		if len(h.Versions) != 1 || h.Versions[0]["by"] != "anonymous" {
			t.Errorf("GET %s/x/history = %v, want one version by anonymous", base, h.Versions)
		}
	}
}
