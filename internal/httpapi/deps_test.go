package httpapi

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoStorageImports: the HTTP layer holds no storage logic, so neither
// the store nor go-redis (nor miniredis) is among its dependencies, direct
// or not: it reaches them only through the interfaces in Options. See
// docs/design.md, "Package boundaries".
func TestNoStorageImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.CommandContext(t.Context(), goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed %d packages: %q", len(deps), deps)
	}
	forbidden := []string{
		"github.com/breakwater-dev/breakwater/internal/store",
		"github.com/redis/go-redis/",
		"github.com/alicebob/miniredis/",
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
				t.Errorf("internal/httpapi depends on %s; reach storage through an Options interface instead", dep)
			}
		}
	}
}
