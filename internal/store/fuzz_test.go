package store_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/internal/store"
)

// FuzzObjectKeys checks that ObjectKeys is injective and that no part can
// break out of the hash tag: for kinds as the code uses them (a few lower
// case letters), two different (kind, parts) give different keys and
// different hash tags, every key of one object has the same tag, the tag
// holds no '{' or '}', and it decodes back to the kind and parts.
//
// Run it longer with: go test -run XXX -fuzz FuzzObjectKeys ./internal/store/
func FuzzObjectKeys(f *testing.F) {
	f.Add("r", "pay", "tenant-42", uint8(2), "r", "pay", "tenant-43", uint8(2))
	f.Add("r", "pay", "", uint8(2), "r", "pay", "=", uint8(2))
	f.Add("r", "a", "b", uint8(2), "r", "a:=b", "", uint8(1))
	f.Add("r", "{a}", "}", uint8(2), "r", "a", "", uint8(1))
	f.Add("b", "", "", uint8(0), "b", "", "", uint8(1))
	f.Add("r", "61", "", uint8(1), "r", "a", "", uint8(1))
	f.Add("r", "\n🙂", ":", uint8(2), "rr", "", "", uint8(0))
	f.Fuzz(func(t *testing.T, kind1, a1, a2 string, n1 uint8, kind2, b1, b2 string, n2 uint8) {
		if !plainKind(kind1) || !plainKind(kind2) {
			t.Skip()
		}
		parts1 := []string{a1, a2}[:n1%3]
		parts2 := []string{b1, b2}[:n2%3]
		k1 := store.ObjectKeys(kind1, parts1, "s", "w")
		k2 := store.ObjectKeys(kind2, parts2, "s", "w")
		same := kind1 == kind2 && slices.Equal(parts1, parts2)
		if (k1[0] == k2[0]) != same {
			t.Errorf("ObjectKeys(%q, %q) = %q and ObjectKeys(%q, %q) = %q", kind1, parts1, k1[0], kind2, parts2, k2[0])
		}
		tag1, tag2 := hashTag(k1[0]), hashTag(k2[0])
		if (tag1 == tag2) != same {
			t.Errorf("hash tags of (%q, %q) and (%q, %q): %q, %q", kind1, parts1, kind2, parts2, tag1, tag2)
		}
		for _, c := range []struct {
			kind  string
			parts []string
			keys  []string
		}{{kind1, parts1, k1}, {kind2, parts2, k2}} {
			tag := hashTag(c.keys[0])
			if tag == c.keys[0] || strings.ContainsAny(tag, "{}") {
				t.Errorf("key %q: hash tag %q", c.keys[0], tag)
			}
			if hashTag(c.keys[1]) != tag {
				t.Errorf("keys %q: hash tags differ", c.keys)
			}
			if kind, parts, ok := parseTag(tag); !ok || kind != c.kind || !slices.Equal(parts, c.parts) {
				t.Errorf("tag %q decodes to %q %q %v, want %q %q", tag, kind, parts, ok, c.kind, c.parts)
			}
		}
	})
}

// plainKind reports whether kind looks like the kinds code passes: a few
// lower-case letters. Kinds are constants, not input, and are not encoded.
func plainKind(kind string) bool {
	if kind == "" || len(kind) > 8 {
		return false
	}
	for _, c := range kind {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
