package httpapi

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// TestSpecStatesContractRules: the names and limits api/openapi.yaml
// states are the ones internal/contract enforces, so that the two cannot
// drift apart.
func TestSpecStatesContractRules(t *testing.T) {
	doc := specDoc(t).doc
	schema := func(name string, path ...string) *openapi3.Schema {
		t.Helper()
		ref := doc.Components.Schemas[name]
		if ref == nil || ref.Value == nil {
			t.Fatalf("spec has no schema %s", name)
		}
		s := ref.Value
		for _, p := range path {
			if p == "[]" {
				if s.Items == nil || s.Items.Value == nil {
					t.Fatalf("schema %s %v: no items", name, path)
				}
				s = s.Items.Value
				continue
			}
			prop := s.Properties[p]
			if prop == nil || prop.Value == nil {
				t.Fatalf("schema %s has no property %v", name, path)
			}
			s = prop.Value
		}
		return s
	}
	u64 := func(p *uint64) int64 {
		if p == nil {
			return -1
		}
		return int64(*p)
	}
	f64 := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return *p
	}
	idem := doc.Components.Parameters["IdempotencyKey"]
	if idem == nil || idem.Value == nil || idem.Value.Schema == nil {
		t.Fatal("spec has no IdempotencyKey parameter")
	}
	ints := []struct {
		what      string
		got, want int64
	}{
		{"Name maxLength", u64(schema("Name").MaxLength), contract.MaxNameLen},
		{"OutcomesRequest.outcomes maxItems", u64(schema("OutcomesRequest", "outcomes").MaxItems), contract.MaxOutcomes},
		{"BatchOutcomesRequest.reports maxItems", u64(schema("BatchOutcomesRequest", "reports").MaxItems), contract.MaxBatchReports},
		{"BatchOutcomesRequest.reports[].outcomes maxItems", u64(schema("BatchOutcomesRequest", "reports", "[]", "outcomes").MaxItems), contract.MaxOutcomes},
		{"Outcome.count maximum", int64(f64(schema("Outcome", "count").Max)), contract.MaxOutcomeCount},
		{"Outcome.duration_ms maximum", int64(f64(schema("Outcome", "duration_ms").Max)), contract.MaxDurationMS},
		{"TakeRequest.tokens maximum", int64(f64(schema("TakeRequest", "tokens").Max)), contract.MaxCapacity},
		{"RateLimitConfig.capacity maximum", int64(f64(schema("RateLimitConfig", "capacity").Max)), contract.MaxCapacity},
		{"RateLimitKey maxLength", u64(schema("RateLimitKey").MaxLength), contract.MaxKeyBytes},
		{"IdempotencyKey maxLength", u64(idem.Value.Schema.Value.MaxLength), contract.MaxIdempotencyKeyLen},
	}
	for _, c := range ints {
		if c.got != c.want {
			t.Errorf("spec %s = %d, want %d as internal/contract enforces", c.what, c.got, c.want)
		}
	}
	if got := schema("Name").Pattern; got != contract.NamePattern {
		t.Errorf("spec Name pattern = %q, want contract.NamePattern %q", got, contract.NamePattern)
	}
	take := doc.Paths.Find("/v1/ratelimits/{name}/take")
	if take == nil || take.Post == nil {
		t.Fatal("spec has no POST /v1/ratelimits/{name}/take")
	}
	client := take.Post.Parameters.GetByInAndName("header", contract.ClientHeader)
	if client == nil || client.Schema == nil || client.Schema.Value.Pattern != contract.ClientIDPattern {
		t.Errorf("spec %s header on take = %+v, want pattern contract.ClientIDPattern %q", contract.ClientHeader, client, contract.ClientIDPattern)
	}
	if got := f64(schema("RateLimitConfig", "refill_per_second").Min); got != contract.MinRefillPerSecond {
		t.Errorf("spec RateLimitConfig.refill_per_second minimum = %g, want %g", got, contract.MinRefillPerSecond)
	}
}
