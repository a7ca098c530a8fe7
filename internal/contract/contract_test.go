package contract

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateIdempotencyKey(t *testing.T) {
	for _, k := range []string{"a", "5b0c8e0a-flush-1842", " ~", strings.Repeat("k", MaxIdempotencyKeyLen)} {
		if err := ValidateIdempotencyKey(k); err != nil {
			t.Errorf("ValidateIdempotencyKey(%q) = %v, want nil", k, err)
		}
	}
	for _, k := range []string{"", strings.Repeat("k", MaxIdempotencyKeyLen+1), "tab\there", "é", "nul\x00"} {
		wantField(t, "ValidateIdempotencyKey("+k+")", ValidateIdempotencyKey(k), IdempotencyKeyHeader)
	}
}

func TestValidClientID(t *testing.T) {
	for _, id := range []string{"9f2c41d0", "A_b-9", strings.Repeat("x", 64)} {
		if !ValidClientID(id) {
			t.Errorf("ValidClientID(%q) = false, want true", id)
		}
	}
	for _, id := range []string{"", strings.Repeat("x", 65), "a.b", "a b"} {
		if ValidClientID(id) {
			t.Errorf("ValidClientID(%q) = true, want false", id)
		}
	}
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"", "tenant-1", "é{}:/", strings.Repeat("k", MaxKeyBytes)} {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", k, err)
		}
	}
	// 129 two-byte characters: within any count of characters, over in bytes.
	for _, k := range []string{strings.Repeat("k", MaxKeyBytes+1), strings.Repeat("é", MaxKeyBytes/2+1), "\xff"} {
		wantField(t, "ValidateKey("+k+")", ValidateKey(k), "key")
	}
}

// TestReadOutcomes: entries as they travel, read with their defaults; a
// missing success or a negative generation is a FieldError naming it.
func TestReadOutcomes(t *testing.T) {
	read := func(body string) ([]Outcome, error) {
		t.Helper()
		var req OutcomesRequest
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		return ReadOutcomes(req.Outcomes)
	}
	got, err := read(`{"outcomes":[{"success":true},{"success":false,"duration_ms":7,"count":3,"generation":0},{"success":true,"permit":"4.1","generation":4}]}`)
	want := []Outcome{
		{Success: true, Count: 1, Generation: NoGeneration},
		{Success: false, DurationMS: 7, Count: 3, Generation: 0},
		{Success: true, Count: 1, Permit: "4.1", Generation: 4},
	}
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("ReadOutcomes = %+v, %v; want %+v", got, err, want)
	}
	for body, field := range map[string]string{
		`{}`:                                 "outcomes",
		`{"outcomes":[{"success":true},{}]}`: "outcomes[1].success",
		`{"outcomes":[{"success":true,"generation":-1}]}`: "outcomes[0].generation",
	} {
		_, err := read(body)
		wantField(t, "ReadOutcomes("+body+")", err, field)
	}
}

// TestOutcomeEntryRoundTrip: an outcome sent as its Entry reads back the
// same, defaults left out on the wire.
func TestOutcomeEntryRoundTrip(t *testing.T) {
	outs := []Outcome{
		{Success: true, Count: 1, Generation: NoGeneration},
		{Success: false, DurationMS: 12, Count: 40, Generation: 0, Retries: 6},
		{Success: true, DurationMS: 3, Count: 1, Permit: "7.2", Generation: 7},
	}
	entries := make([]OutcomeEntry, len(outs))
	for i, o := range outs {
		entries[i] = o.Entry()
	}
	js, err := json.Marshal(OutcomesRequest{Outcomes: entries})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"outcomes":[{"success":true,"duration_ms":0},{"success":false,"duration_ms":12,"count":40,"generation":0,"retries":6},{"success":true,"duration_ms":3,"permit":"7.2","generation":7}]}`; string(js) != want {
		t.Errorf("Marshal = %s, want %s", js, want)
	}
	var back OutcomesRequest
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	got, err := ReadOutcomes(back.Outcomes)
	if err != nil || !cmp.Equal(got, outs) {
		t.Errorf("ReadOutcomes(Entry()) = %+v, %v; want %+v", got, err, outs)
	}
}

func TestOverrideRequestForce(t *testing.T) {
	ttl := func(n int64) *int64 { return &n }
	tests := []struct {
		name  string
		req   OverrideRequest
		field string
	}{
		{"forced open", OverrideRequest{State: StateForcedOpen, Reason: "drill"}, ""},
		{"forced closed with ttl", OverrideRequest{State: StateForcedClosed, Reason: "drill", TTLMS: ttl(1000)}, ""},
		{"ttl zero", OverrideRequest{State: StateForcedOpen, Reason: "drill", TTLMS: ttl(0)}, "ttl_ms"},
		{"ttl too long", OverrideRequest{State: StateForcedOpen, Reason: "drill", TTLMS: ttl(MaxOverrideTTL.Milliseconds() + 1)}, "ttl_ms"},
		{"not a forced state", OverrideRequest{State: StateOpen, Reason: "drill"}, "state"},
		{"no reason", OverrideRequest{State: StateForcedOpen}, "reason"},
		{"reason too long", OverrideRequest{State: StateForcedOpen, Reason: strings.Repeat("é", MaxReasonLen+1)}, "reason"},
	}
	for _, tt := range tests {
		f, err := tt.req.Force("ops")
		if tt.field != "" {
			wantField(t, "Force("+tt.name+")", err, tt.field)
			continue
		}
		if err != nil || f.By != "ops" || f.State != tt.req.State {
			t.Errorf("Force(%s) = %+v, %v; want the override by ops", tt.name, f, err)
		}
	}
}

func TestBatchRequestValidate(t *testing.T) {
	if err := (BatchRequest{Reports: make([]BatchReport, MaxBatchReports)}).Validate(); err != nil {
		t.Errorf("Validate(%d reports) = %v, want nil", MaxBatchReports, err)
	}
	for name, b := range map[string]BatchRequest{
		"missing":  {},
		"empty":    {Reports: []BatchReport{}},
		"too many": {Reports: make([]BatchReport, MaxBatchReports+1)},
	} {
		wantField(t, "Validate("+name+")", b.Validate(), "reports")
	}
	rep := BatchReport{Breaker: "pay", Outcomes: []OutcomeEntry{{}}}.Read()
	wantField(t, "Read(no success)", rep.Err, "outcomes[0].success")
}

func TestTakeRequestValidate(t *testing.T) {
	if err := (TakeRequest{Tokens: MaxCapacity, Key: "k"}).Validate(); err != nil {
		t.Errorf("Validate(max tokens) = %v, want nil", err)
	}
	wantField(t, "Validate(0 tokens)", TakeRequest{}.Validate(), "tokens")
	wantField(t, "Validate(too many tokens)", TakeRequest{Tokens: MaxCapacity + 1}.Validate(), "tokens")
	wantField(t, "Validate(long key)", TakeRequest{Tokens: 1, Key: strings.Repeat("k", MaxKeyBytes+1)}.Validate(), "key")
}

func TestRateLimitConfigRequest(t *testing.T) {
	c, r := int64(10), 2.5
	if cfg, err := (RateLimitConfigRequest{Capacity: &c, RefillPerSecond: &r}).Config(); err != nil || cfg != (RateLimitConfig{Capacity: 10, RefillPerSecond: 2.5}) {
		t.Errorf("Config() = %+v, %v; want {10 2.5}", cfg, err)
	}
	_, err := RateLimitConfigRequest{RefillPerSecond: &r}.Config()
	wantField(t, "Config(no capacity)", err, "capacity")
	_, err = RateLimitConfigRequest{Capacity: &c}.Config()
	wantField(t, "Config(no refill)", err, "refill_per_second")
}
