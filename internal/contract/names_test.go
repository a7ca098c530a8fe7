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
	re := regexp.MustCompile(NamePattern)
	cases := []string{
		"", "a", "Z", "0", ".", "_", "-", "a.", "a_", "a-", ".a", "_a", "-a",
		"payment-service", "orders.v2_eu-west", "a b", "a/b", "a\n", "é", "a\x00",
		strings.Repeat("a", MaxNameLen), strings.Repeat("a", MaxNameLen+1),
	}
	const alphabet = "aZ09._-/ \n\x00\xc3\xa9{}:~="
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, rng.IntN(8))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		if got, want := ValidName(s), re.MatchString(s); got != want {
			t.Errorf("ValidName(%q) = %v, want %v (NamePattern)", s, got, want)
		}
	}
}

// TestValidClientIDIsPattern holds ValidClientID equal to ClientIDPattern.
func TestValidClientIDIsPattern(t *testing.T) {
	re := regexp.MustCompile(ClientIDPattern)
	cases := []string{"", "a", "-", "_", "a.b", "0f3a-9c_X", strings.Repeat("a", 64), strings.Repeat("a", 65), "é", "a b"}
	const alphabet = "aZ09._-/ \x00\xc3\xa9"
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		b := make([]byte, rng.IntN(8))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		if got, want := ValidClientID(s), re.MatchString(s); got != want {
			t.Errorf("ValidClientID(%q) = %v, want %v (ClientIDPattern)", s, got, want)
		}
	}
}

func BenchmarkValidName(b *testing.B) {
	for b.Loop() {
		ValidName("payment-service")
	}
}
