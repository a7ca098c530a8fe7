package client

import "testing"

// TestStateNames checks that every State has the REST API's name and that
// the names the API sends parse back to the same State, so that the
// states Breaker.State and Hooks.OnStateChange report are the control
// plane's.
func TestStateNames(t *testing.T) {
	tests := []struct {
		state State
		name  string
		api   bool // a name the API sends
	}{
		{StateUnknown, "unknown", false},
		{StateClosed, "closed", true},
		{StateOpen, "open", true},
		{StateHalfOpen, "half_open", true},
		{StateForcedOpen, "forced_open", true},
		{StateForcedClosed, "forced_closed", true},
		{StateNotFound, "not_found", false},
		{State(200), "unknown", false},
	}
	for _, tt := range tests {
		if got := tt.state.String(); got != tt.name {
			t.Errorf("State(%d).String() = %q, want %q", tt.state, got, tt.name)
		}
		if !tt.api {
			continue
		}
		if got := parseState(tt.name); got != tt.state {
			t.Errorf("parseState(%q) = %v, want %v", tt.name, got, tt.state)
		}
	}
	for _, name := range []string{"", "unknown", "not_found", "half-open", "CLOSED"} {
		if got := parseState(name); got != StateUnknown {
			t.Errorf("parseState(%q) = %v, want %v", name, got, StateUnknown)
		}
	}
}
