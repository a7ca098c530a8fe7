package store_test

import (
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/internal/store"
)

func TestObjectKeys(t *testing.T) {
	tests := []struct {
		kind     string
		parts    []string
		suffixes []string
		want     []string
	}{
		{"b", []string{"payment-service"}, []string{"s", "w", "p"},
			[]string{"bw:{b:=payment-service}:s", "bw:{b:=payment-service}:w", "bw:{b:=payment-service}:p"}},
		{"r", []string{"pay", ""}, []string{"s"}, []string{"bw:{r:=pay:=}:s"}},
		{"r", []string{"pay", "tenant-42"}, []string{"s"}, []string{"bw:{r:=pay:=tenant-42}:s"}},
		{"r", []string{"pay", "{a}"}, []string{"s"}, []string{"bw:{r:=pay:~7b617d}:s"}},
		{"r", []string{"pay", "a:b"}, []string{"s"}, []string{"bw:{r:=pay:~613a62}:s"}},
		{"r", []string{"pay", "a\nb"}, []string{"s"}, []string{"bw:{r:=pay:~610a62}:s"}},
		{"r", []string{"pay", "🙂"}, []string{"s"}, []string{"bw:{r:=pay:~f09f9982}:s"}},
		{"r", []string{"pay", "=x"}, []string{"s"}, []string{"bw:{r:=pay:~3d78}:s"}},
		{"r", nil, []string{"s"}, []string{"bw:{r}:s"}},
		{"r", []string{"pay"}, nil, []string{}},
	}
	for _, tt := range tests {
		got := store.ObjectKeys(tt.kind, tt.parts, tt.suffixes...)
		if !slices.Equal(got, tt.want) {
			t.Errorf("ObjectKeys(%q, %q, %q) = %q, want %q", tt.kind, tt.parts, tt.suffixes, got, tt.want)
		}
	}
}

// TestObjectKeysLongParts checks parts of the largest size a rate-limit key
// may have, 256 bytes of any UTF-8.
func TestObjectKeysLongParts(t *testing.T) {
	for _, part := range []string{strings.Repeat("x", 256), strings.Repeat("é", 128), strings.Repeat("{}", 128)} {
		k := store.ObjectKeys("r", []string{"pay", part}, "s")[0]
		kind, parts, ok := parseTag(hashTag(k))
		if !ok || kind != "r" || !slices.Equal(parts, []string{"pay", part}) {
			t.Errorf("ObjectKeys(r, [pay %q]) = %q: tag parses to %q %q %v", part, k, kind, parts, ok)
		}
	}
}

func TestIndexKey(t *testing.T) {
	if got := store.IndexKey("r"); got != "bw:idx:r" {
		t.Errorf("IndexKey(%q) = %q, want %q", "r", got, "bw:idx:r")
	}
}

// hashTag is the part of a key Redis Cluster hashes: the text between the
// first '{' and the next '}' when it is not empty, else the whole key.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

// parseTag decodes a hash tag made by ObjectKeys back into kind and parts.
// That it can is the proof that the encoding is injective.
func parseTag(tag string) (kind string, parts []string, ok bool) {
	fields := strings.Split(tag, ":")
	kind = fields[0]
	for _, f := range fields[1:] {
		switch {
		case strings.HasPrefix(f, "="):
			parts = append(parts, f[1:])
		case strings.HasPrefix(f, "~"):
			b, err := hex.DecodeString(f[1:])
			if err != nil {
				return "", nil, false
			}
			parts = append(parts, string(b))
		default:
			return "", nil, false
		}
	}
	return kind, parts, true
}
