package client

import (
	"encoding/json"
	"testing"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// TestDefaultBreakerConfigIsTheControlPlanes: the defaults a local breaker
// falls back on are the ones the control plane gives a breaker created
// with no fields, field for field.
func TestDefaultBreakerConfigIsTheControlPlanes(t *testing.T) {
	got, err := json.Marshal(defaultBreakerConfig())
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(contract.DefaultBreakerConfig())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("defaultBreakerConfig() = %s, want the control plane's %s", got, want)
	}
}
