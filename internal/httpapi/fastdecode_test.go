package httpapi

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/jsonapi"
)

// strict decodes body with the strict decoder alone.
func strict(body []byte, v any, allowEmpty bool) error {
	r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	return jsonapi.Decode(httptest.NewRecorder(), r, v, allowEmpty)
}

var fastSeeds = []string{
	`{"key":"tenant-42"}`, `{}`, ` { "tokens" : 5 , "key" : "a b", "partial" : true } `,
	`{"tokens":-1}`, `{"tokens":01}`, `{"tokens":1.0}`, `{"tokens":1e3}`, `{"tokens":9223372036854775807}`,
	`{"tokens":9223372036854775808}`, `{"tokens":-9223372036854775808}`, `{"Key":"x"}`, `{"key":"x","key":"y"}`,
	`{"key":"\u0041"}`, `{"key":"é"}`, `{"partial":null}`, `{"bogus":1}`, `{"key":"x"} {}`, `[]`, `"x"`,
	`{"outcomes":[{"success":true,"duration_ms":12}]}`,
	`{"outcomes":[{"success":false,"duration_ms":3000,"count":5},{"success":true,"permit":"4.17","generation":4}]}`,
	`{"outcomes":[]}`, `{"outcomes":null}`, `{"outcomes":[{}]}`, `{"outcomes":[{"count":2}]}`,
	`{"outcomes":[{"success":true,"success":false}]}`, `{"outcomes":[{"success":true}],"outcomes":[]}`,
	`{"outcomes":[{"success":true},]}`, `{"outcomes":[{"success":true} {"success":true}]}`, `{"outcomes":[{"success":true,"generation":-1}]}`,
	`{"outcomes":[{"success":false,"count":5,"retries":2}]}`, `{"outcomes":[{"success":true,"retries":null}]}`,
	`{"outcomes":[{"success":true,"retries":1,"retries":0}]}`, `{"outcomes":[{"success":true,"retries":-3}]}`,
}

// FuzzFastDecode: whatever body the fast paths accept, the strict decoder
// accepts too and decodes to the same value.
func FuzzFastDecode(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast := contract.TakeRequest{Tokens: 1}
		if fastTake(body, &fast) {
			slow := contract.TakeRequest{Tokens: 1}
			if err := strict(body, &slow, true); err != nil {
				t.Fatalf("fastTake(%q) accepted what the strict decoder refuses: %v", body, err)
			}
			if diff := cmp.Diff(slow, fast); diff != "" {
				t.Fatalf("fastTake(%q) (-strict +fast):\n%s", body, diff)
			}
		}
		var fastOuts []contract.OutcomeEntry
		if fastOutcomes(body, &fastOuts) {
			var slow struct {
				Outcomes []contract.OutcomeEntry `json:"outcomes"`
			}
			if err := strict(body, &slow, false); err != nil {
				t.Fatalf("fastOutcomes(%q) accepted what the strict decoder refuses: %v", body, err)
			}
			if diff := cmp.Diff(slow.Outcomes, fastOuts); diff != "" {
				t.Fatalf("fastOutcomes(%q) (-strict +fast):\n%s", body, diff)
			}
		}
	})
}

func TestFastDecodeTakesThePlainBodies(t *testing.T) {
	for _, body := range []string{`{"key":"tenant-42"}`, `{"tokens":3,"partial":true}`} {
		req := contract.TakeRequest{Tokens: 1}
		if !fastTake([]byte(body), &req) {
			t.Errorf("fastTake(%s) = false, want the fast path taken", body)
		}
	}
	var outs []contract.OutcomeEntry
	if body := `{"outcomes":[{"success":true,"duration_ms":12,"count":950}]}`; !fastOutcomes([]byte(body), &outs) || len(outs) != 1 || *outs[0].Count != 950 {
		t.Errorf("fastOutcomes(%s) = %+v, want the fast path taken", body, outs)
	}
}
