package client

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeShowsTheExample checks that the SDK snippet in README.md is the
// code of the package Example in example_readme_test.go, which compiles
// and runs against a real control plane: the lines between its two
// "// README" markers, one tab of indentation removed.
func TestReadmeShowsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(src), "\t// README\n")
	if len(parts) != 3 {
		t.Fatalf("example_readme_test.go has %d \"// README\" marker lines, want 2", len(parts)-1)
	}
	var snippet strings.Builder
	for line := range strings.Lines(parts[1]) {
		snippet.WriteString(strings.TrimPrefix(line, "\t"))
	}
	block := "```go\n" + snippet.String() + "```\n"
	if !strings.Contains(string(readme), block) {
		t.Errorf("README.md does not show the code between the \"// README\" markers of example_readme_test.go as it is; want this block in it:\n%s", block)
	}
}
