package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFaultLifecycle: a fault set, listed, announced on the event stream,
// audited and shown in /metrics; ended by DELETE, and ending by itself at
// its expiry.
func TestFaultLifecycle(t *testing.T) {
	ta := newTestAPI(t, testTokens(t))
	stream, _ := ta.openEvents(t, "", secretAgent)

	res := ta.do("PUT", "/v1/faults/pay", `{"abort_percent":100,"reason":"game day","ttl_ms":60000}`, secretOperator)
	if res.Status != http.StatusOK {
		t.Fatalf("PUT fault = %d %s", res.Status, res.Body)
	}
	var f struct {
		Name         string    `json:"name"`
		AbortPercent float64   `json:"abort_percent"`
		AbortStatus  int       `json:"abort_status"`
		By           string    `json:"by"`
		At           time.Time `json:"at"`
		ExpiresAt    time.Time `json:"expires_at"`
	}
	res.JSON(t, &f)
	if f.Name != "pay" || f.AbortPercent != 100 || f.AbortStatus != 503 || f.By != "ops" || f.ExpiresAt.Sub(f.At) != time.Minute {
		t.Errorf("PUT fault answered %+v; want pay, 100%% with the default 503, by ops, expiring a minute after it was set", f)
	}
	if e := stream.next(named("fault.config")); !strings.Contains(e.Data, `"name":"pay"`) {
		t.Errorf("fault.config data = %s", e.Data)
	}
	var list struct {
		Faults []map[string]any `json:"faults"`
	}
	ta.do("GET", "/v1/faults", nil, secretReader).JSON(t, &list)
	if len(list.Faults) != 1 || list.Faults[0]["reason"] != "game day" {
		t.Fatalf("GET /v1/faults = %v, want the one fault", list.Faults)
	}
	if body := string(ta.do("GET", "/metrics", nil, "").Body); !strings.Contains(body, `breakwater_fault_active{name="pay"} 1`) {
		t.Errorf("/metrics lacks breakwater_fault_active for pay")
	}
	var audit struct {
		Entries []AuditEntry `json:"entries"`
	}
	ta.do("GET", "/v1/audit?limit=1", nil, secretOperator).JSON(t, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Action != "fault.put" || !strings.Contains(audit.Entries[0].Reason, "game day") {
		t.Errorf("audit = %+v, want fault.put with its reason", audit.Entries)
	}

	// DELETE ends it early.
	if res := ta.do("DELETE", "/v1/faults/pay", nil, secretOperator); res.Status != http.StatusNoContent {
		t.Fatalf("DELETE fault = %d %s", res.Status, res.Body)
	}
	stream.next(named("fault.deleted"))
	if res := ta.do("GET", "/v1/faults/pay", nil, secretReader); res.Status != http.StatusNotFound {
		t.Errorf("GET ended fault = %d, want 404", res.Status)
	}
	if res := ta.do("DELETE", "/v1/faults/pay", nil, secretOperator); res.Status != http.StatusNotFound {
		t.Errorf("DELETE again = %d, want 404", res.Status)
	}

	// A fault ends by itself at its expiry: the store forgets it.
	ta.do("PUT", "/v1/faults/pay", `{"delay_percent":50,"delay_ms":200,"reason":"short drill","ttl_ms":1500}`, secretOperator)
	ta.Mini.Advance(1499 * time.Millisecond)
	if res := ta.do("GET", "/v1/faults/pay", nil, secretReader); res.Status != http.StatusOK {
		t.Fatalf("GET before expiry = %d, want 200", res.Status)
	}
	ta.Mini.Advance(2 * time.Millisecond)
	if res := ta.do("GET", "/v1/faults/pay", nil, secretReader); res.Status != http.StatusNotFound {
		t.Errorf("GET after expiry = %d, want 404", res.Status)
	}
	ta.do("GET", "/v1/faults", nil, secretReader).JSON(t, &list)
	if len(list.Faults) != 0 {
		t.Errorf("GET /v1/faults after expiry = %v, want none", list.Faults)
	}
	if body := string(ta.do("GET", "/metrics", nil, "").Body); strings.Contains(body, `breakwater_fault_active{name="pay"}`) {
		t.Errorf("/metrics still shows the expired fault")
	}
}

// TestFaultBadInput: each bad field is a 400 naming it.
func TestFaultBadInput(t *testing.T) {
	ta := newTestAPI(t, nil)
	tests := []struct {
		name, body, field string
	}{
		{"no reason", `{"abort_percent":10,"ttl_ms":1000}`, "reason"},
		{"empty reason", `{"abort_percent":10,"reason":"","ttl_ms":1000}`, "reason"},
		{"long reason", `{"abort_percent":10,"reason":"` + strings.Repeat("x", 501) + `","ttl_ms":1000}`, "reason"},
		{"no ttl", `{"abort_percent":10,"reason":"r"}`, "ttl_ms"},
		{"zero ttl", `{"abort_percent":10,"reason":"r","ttl_ms":0}`, "ttl_ms"},
		{"ttl over a day", `{"abort_percent":10,"reason":"r","ttl_ms":86400001}`, "ttl_ms"},
		{"abort over 100", `{"abort_percent":100.5,"reason":"r","ttl_ms":1000}`, "abort_percent"},
		{"abort negative", `{"abort_percent":-1,"reason":"r","ttl_ms":1000}`, "abort_percent"},
		{"status 200", `{"abort_percent":10,"abort_status":200,"reason":"r","ttl_ms":1000}`, "abort_status"},
		{"status 600", `{"abort_percent":10,"abort_status":600,"reason":"r","ttl_ms":1000}`, "abort_status"},
		{"status 0", `{"abort_percent":10,"abort_status":0,"reason":"r","ttl_ms":1000}`, "abort_status"},
		{"delay over 100", `{"delay_percent":101,"delay_ms":10,"reason":"r","ttl_ms":1000}`, "delay_percent"},
		{"delay too long", `{"delay_percent":10,"delay_ms":60001,"reason":"r","ttl_ms":1000}`, "delay_ms"},
		{"delay without ms", `{"delay_percent":10,"reason":"r","ttl_ms":1000}`, "delay_ms"},
		{"does nothing", `{"reason":"r","ttl_ms":1000}`, "abort_percent"},
		{"unknown field", `{"abort_percent":10,"reason":"r","ttl_ms":1000,"percent":5}`, "percent"},
		{"wrong type", `{"abort_percent":"ten","reason":"r","ttl_ms":1000}`, "abort_percent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ta.do("PUT", "/v1/faults/pay", tt.body, "")
			if res.Status != http.StatusBadRequest {
				t.Fatalf("PUT %s = %d %s, want 400", tt.body, res.Status, res.Body)
			}
			if p := res.Problem(t); p.Field != tt.field {
				t.Errorf("PUT %s: field = %q, want %q (%s)", tt.body, p.Field, tt.field, p.Detail)
			}
		})
	}
	if res := ta.do("PUT", "/v1/faults/bad%7Bname", `{"abort_percent":10,"reason":"r","ttl_ms":1000}`, ""); res.Status != 400 || res.Problem(t).Field != "name" {
		t.Errorf("PUT a bad name = %d %s, want 400 naming name", res.Status, res.Body)
	}
	if res := ta.do("GET", "/v1/faults", nil, ""); !strings.Contains(string(res.Body), `"faults":[]`) {
		t.Errorf("no fault was set by bad input; GET /v1/faults = %s", res.Body)
	}
}
