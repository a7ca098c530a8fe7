package contract

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStandardLibraryOnly: the contract imports nothing but the standard
// library, so that the SDK may import it without pulling anything into
// its users' builds.
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
	const self = "github.com/breakwater-dev/breakwater/internal/contract"
	for _, dep := range strings.Fields(string(out)) {
		if dep != self {
			t.Errorf("internal/contract imports %s, want the standard library only", dep)
		}
	}
}
