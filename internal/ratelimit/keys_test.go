package ratelimit

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

func TestBucketKeys(t *testing.T) {
	tests := []struct {
		name, key string
		want      []string
	}{
		{"pay", "", []string{"bw:{r:=pay}:c", "bw:{r:=pay}:k="}},
		{"pay", "tenant-42", []string{"bw:{r:=pay}:c", "bw:{r:=pay}:k=tenant-42"}},
		{"pay", "{x}", []string{"bw:{r:=pay}:c", "bw:{r:=pay}:k~7b787d"}},
		{"pay", "a:b\n", []string{"bw:{r:=pay}:c", "bw:{r:=pay}:k~613a620a"}},
		{"pay", "🙂", []string{"bw:{r:=pay}:c", "bw:{r:=pay}:k~f09f9982"}},
		{"pay", "~61", []string{"bw:{r:=pay}:c", "bw:{r:=pay}:k~7e3631"}},
	}
	for _, tt := range tests {
		got := keys(tt.name, tt.key)
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("keys(%q, %q) = %q, want %q", tt.name, tt.key, got, tt.want)
		}
	}
}

// FuzzBucketKeys checks that bucket keys are injective and stay in their
// limit's hash tag: two different (name, key) pairs never share a bucket,
// a bucket is never a config, and whatever the key holds, the bucket's
// hash tag is its limit's.
func FuzzBucketKeys(f *testing.F) {
	f.Add("pay", "", "pay", "=")
	f.Add("pay", "a", "pay", "~61")
	f.Add("pay", "{a}", "pay", "}a{")
	f.Add("a", "b:c", "a:b", "c")
	f.Add("pay", "\n🙂", "pay", "c")
	f.Fuzz(func(t *testing.T, name1, key1, name2, key2 string) {
		for _, p := range [][2]string{{name1, key1}, {name2, key2}} {
			if ValidateName(p[0]) != nil || contract.ValidateKey(p[1]) != nil {
				t.Skip()
			}
		}
		k1, k2 := keys(name1, key1), keys(name2, key2)
		same := name1 == name2 && key1 == key2
		if (k1[1] == k2[1]) != same {
			t.Errorf("bucket of (%q, %q) = %q, of (%q, %q) = %q", name1, key1, k1[1], name2, key2, k2[1])
		}
		if k1[1] == k2[0] || k2[1] == k1[0] {
			t.Errorf("a bucket is a config key: %q %q", k1, k2)
		}
		for _, k := range [][]string{k1, k2} {
			tag := hashTag(k[0])
			if hashTag(k[1]) != tag || strings.ContainsAny(tag, "{}") || tag == k[0] {
				t.Errorf("keys %q: config tag %q, bucket tag %q", k, tag, hashTag(k[1]))
			}
			if !utf8.ValidString(k[1]) || strings.ContainsAny(k[1], " \n\r\x00") {
				t.Errorf("bucket key %q is not printable", k[1])
			}
		}
		if (hashTag(k1[0]) == hashTag(k2[0])) != (name1 == name2) {
			t.Errorf("hash tags of %q and %q: %q, %q", name1, name2, hashTag(k1[0]), hashTag(k2[0]))
		}
	})
}
