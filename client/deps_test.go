package client

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStandardLibraryOnly checks that the package, as users build it,
// imports nothing outside the standard library but internal/contract (the
// API's names, limits and wire types, itself standard library only), so
// importing the SDK never pulls Redis or HTTP routers into a user's build.
func TestStandardLibraryOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.CommandContext(t.Context(), goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := map[string]bool{
		"github.com/breakwater-dev/breakwater/client":            true,
		"github.com/breakwater-dev/breakwater/internal/contract": true,
	}
	for _, dep := range strings.Fields(string(out)) {
		if !allowed[dep] {
			t.Errorf("client imports %s, want the standard library and internal/contract only", dep)
		}
	}
}
