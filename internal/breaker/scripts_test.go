package breaker

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestScriptsDefineWhatTheyCall: every function a breaker script calls is
// defined in the files it is built from, or is one of Lua's and Redis's.
// Redis raises "attempt to call a nil value" only when the call runs, so a
// script built without the prelude that defines a function fails on the
// one path that needs it, perhaps long after it shipped (acquire is built
// without window.lua).
func TestScriptsDefineWhatTheyCall(t *testing.T) {
	builtin := map[string]bool{
		"tonumber": true, "tostring": true, "type": true, "unpack": true, "ipairs": true, "pairs": true,
		"error": true, "pcall": true, "assert": true, "select": true, "next": true,
		"each_request": true, // the store's, in every coalesced script (outcomes)
	}
	keyword := map[string]bool{
		"if": true, "elseif": true, "and": true, "or": true, "not": true, "return": true,
		"function": true, "until": true, "in": true, "while": true, "local": true, "then": true, "do": true,
	}
	comment := regexp.MustCompile(`--[^\n]*`)
	quoted := regexp.MustCompile(`'[^'\n]*'|"[^"\n]*"`)
	defined := regexp.MustCompile(`local\s+function\s+(\w+)|(?:^|\s)(\w+)\s*=\s*function\b|function\s*\w*\s*\(([^)]*)\)|local\s+([\w\s,]+?)\s*(?:=|\n)`)
	called := regexp.MustCompile(`(^|[^.:\w])(\w+)\s*\(`)

	files, err := fs.Glob(luaDir, "*.lua")
	if err != nil {
		t.Fatal(err)
	}
	prelude := map[string]bool{}
	for _, f := range files {
		for _, p := range Preludes(strings.TrimSuffix(f, ".lua")) {
			prelude[p] = true
		}
	}
	for _, f := range files {
		name := strings.TrimSuffix(f, ".lua")
		if prelude[name] {
			continue // checked with the scripts it begins
		}
		var src strings.Builder
		for _, p := range append(Preludes(name), name) {
			b, err := fs.ReadFile(luaDir, p+".lua")
			if err != nil {
				t.Fatal(err)
			}
			src.Write(b)
			src.WriteByte('\n')
		}
		code := quoted.ReplaceAllString(comment.ReplaceAllString(src.String(), ""), "''")
		have := map[string]bool{}
		for _, m := range defined.FindAllStringSubmatch(code, -1) {
			for _, g := range m[1:] {
				for _, n := range strings.Split(g, ",") {
					if n = strings.TrimSpace(n); n != "" {
						have[n] = true
					}
				}
			}
		}
		var missing []string
		for _, m := range called.FindAllStringSubmatch(code, -1) {
			n := m[2]
			if !have[n] && !builtin[n] && !keyword[n] && !slices.Contains(missing, n) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s.lua, built from %v, calls %v, which nothing defines", name, Preludes(name), missing)
		}
	}
}
