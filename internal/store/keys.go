package store

import (
	"encoding/hex"
	"strings"
)

// Key layout. Every key starts with "bw:". The keys of one object (one
// breaker, one rate-limit bucket) share the hash tag "{kind:id}", so a Redis
// Cluster keeps them on one slot and a script can touch all of them:
//
//	bw:{b:payment-service}:s   breaker state and config (hash)
//	bw:{b:payment-service}:w   breaker window (list)
//	bw:{b:payment-service}:p   outstanding half-open probe permits (sorted set)
//	bw:{b:payment-service}:t   tombstone: the highest generation and config version it had (hash, outlives the breaker)
//	bw:{b:payment-service}:h   config history (list, last 100 versions; 30 days TTL once deleted)
//	bw:{b:payment-service}:i.ENDPOINT.KEY  a request's idempotency record (string, 10 min TTL)
//	bw:idx:b                   names of all breakers (set, its own slot)
//	bw:{r:=api}:...            a rate limit (see internal/ratelimit/keys.go)
//	bw:{sys:=breakwater-api}:... Breakwater's own limits: a kind the API never serves
//	bw:{f:=payment-service}:s  an active fault of a drill (hash, expires with it)
//	bw:idx:f                   names of faults set lately (set, its own slot)
//	bw:events                  pub/sub channel of state and config changes
//
// An id is written as "=" followed by the id itself when it uses only
// [A-Za-z0-9._-], and as "~" followed by its hex encoding otherwise. The
// encoding is injective, and no id can close the hash tag early or add a
// separator, whatever bytes it holds.

// EventsChannel is the pub/sub channel every state and config change is
// published on.
const EventsChannel = "bw:events"

// ObjectKeys returns the keys of one object of a kind, one per suffix, all
// in the same hash tag. Parts are joined (each encoded) to form the id, so a
// rate-limit bucket can be named by limit name and key.
func ObjectKeys(kind string, parts []string, suffixes ...string) []string {
	// One string holds every key; each key is a slice of it. Decisions
	// build their keys on every call, so one allocation beats one a key.
	n := len("bw:{") + len(kind) + len("}:")
	for _, p := range parts {
		n += 1 + idLen(p)
	}
	prefix := n
	for _, s := range suffixes {
		n += prefix + len(s)
	}
	var b strings.Builder
	b.Grow(n)
	keys := make([]string, len(suffixes))
	for i, s := range suffixes {
		start := b.Len()
		b.WriteString("bw:{")
		b.WriteString(kind)
		for _, p := range parts {
			b.WriteByte(':')
			writeID(&b, p)
		}
		b.WriteString("}:")
		b.WriteString(s)
		keys[i] = b.String()[start:]
	}
	return keys
}

// idLen is the length of id as writeID writes it.
func idLen(id string) int {
	if isPlain(id) {
		return 1 + len(id)
	}
	return 1 + 2*len(id)
}

// IndexKey is the key of the set that lists every object of a kind.
func IndexKey(kind string) string { return "bw:idx:" + kind }

func writeID(b *strings.Builder, id string) {
	if isPlain(id) {
		b.WriteByte('=')
		b.WriteString(id)
		return
	}
	b.WriteByte('~')
	b.WriteString(hex.EncodeToString([]byte(id)))
}

func isPlain(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Suffix returns a key suffix made of prefix and id, with id encoded as
// ObjectKeys encodes ids: it cannot hold a separator or a brace, and two
// ids never give the same suffix. Use it for one object's many members (a
// rate limit's buckets, one per key) that share the object's hash tag.
func Suffix(prefix, id string) string {
	var b strings.Builder
	b.Grow(len(prefix) + 1 + 2*len(id))
	b.WriteString(prefix)
	writeID(&b, id)
	return b.String()
}
