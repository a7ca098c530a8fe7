package client

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeShowsTheOrderExample checks that the README's rewrite of the
// reference's ResilientHTTPClient and OrderService is the code that
// example_order_test.go compiles and runs.
func TestReadmeShowsTheOrderExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Skipf("no README: %v", err)
	}
	src, err := os.ReadFile("example_order_test.go")
	if err != nil {
		t.Fatal(err)
	}
	code := string(src)
	marks := []string{
		"// ResilientHTTPClient calls one dependency over HTTP.",
		"// OrderService places orders",
		"func Example_orderService()",
	}
	for i := range len(marks) - 1 {
		start, end := strings.Index(code, marks[i]), strings.Index(code, marks[i+1])
		if start < 0 || end < start {
			t.Fatalf("example_order_test.go: markers %q and %q not found in order", marks[i], marks[i+1])
		}
		block := "```go\n" + strings.TrimRight(code[start:end], "\n") + "\n```"
		if !strings.Contains(string(readme), block) {
			t.Errorf("README.md does not show example_order_test.go's code from %q to %q as it is: copy it again", marks[i], marks[i+1])
		}
	}
}
