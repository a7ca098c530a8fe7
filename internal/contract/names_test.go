package contract

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestValidNameIsNamePattern holds ValidName equal to NamePattern, the
// rule the spec states, on edge cases and on random strings of the bytes
// that matter.
func TestValidNameIsNamePattern(t *testing.T) {
	sameAsPattern(t, "ValidName", ValidName, NamePattern, 1, []string{
		"", "a", "Z", "0", ".", "_", "-", "a.", "a_", "a-", ".a", "_a", "-a",
		"payment-service", "orders.v2_eu-west", "a b", "a/b", "a\n", "é", "a\x00",
		strings.Repeat("a", MaxNameLen), strings.Repeat("a", MaxNameLen+1),
	})
}

// TestValidClientIDIsPattern holds ValidClientID equal to ClientIDPattern.
func TestValidClientIDIsPattern(t *testing.T) {
	sameAsPattern(t, "ValidClientID", ValidClientID, ClientIDPattern, 3, []string{
		"", "a", "-", "_", "a.b", "0f3a-9c_X", strings.Repeat("a", 64), strings.Repeat("a", 65), "é", "a b",
	})
}

// sameAsPattern checks valid against pattern on cases and on 20,000 random
// strings of the bytes that matter (seeded by seed).
func sameAsPattern(t *testing.T, name string, valid func(string) bool, pattern string, seed uint64, cases []string) {
	t.Helper()
	re := regexp.MustCompile(pattern)
	const alphabet = "aZ09._-/ \n\x00\xc3\xa9{}:~="
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for range 20000 {
		b := make([]byte, rng.IntN(8))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		if got, want := valid(s), re.MatchString(s); got != want {
			t.Errorf("%s(%q) = %v, want %v (%s)", name, s, got, want, pattern)
		}
	}
}

func BenchmarkValidName(b *testing.B) {
	for b.Loop() {
		ValidName("payment-service")
	}
}
