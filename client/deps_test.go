package client

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStandardLibraryOnly checks that the package, as users build it,
// imports nothing outside the standard library but its own packages and
// internal/contract (the API's names, limits and wire types, itself
// standard library only), so importing the SDK never pulls Redis or HTTP
// routers into a user's build.
func TestStandardLibraryOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.CommandContext(t.Context(), goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".", "./resilience").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	// The SDK's own packages (resilience, and the retry loop they share
	// under client/internal) and internal/contract are the only ones
	// allowed.
	const (
		self     = "github.com/breakwater-dev/breakwater/client"
		contract = "github.com/breakwater-dev/breakwater/internal/contract"
	)
	for _, dep := range strings.Fields(string(out)) {
		if dep != self && dep != contract && !strings.HasPrefix(dep, self+"/") {
			t.Errorf("client imports %s, want the standard library, internal/contract and the SDK's own packages only", dep)
		}
	}
}
