package ratelimit

import "github.com/breakwater-dev/breakwater/internal/store"

// Key layout. All keys of one limit share its hash tag, so the take script
// reads the config and writes a bucket in one Cluster slot (see Service for
// why the tag is the limit's and not each bucket's):
//
//	bw:{r:=NAME}:c          the limit's config (string, see lua/common.lua)
//	bw:{r:=NAME}:k=KEY      the bucket of a key made of [A-Za-z0-9._-] only (string)
//	bw:{r:=NAME}:k~HEX      the bucket of any other key, hex-encoded (string)
//	bw:{r:=NAME}:cl         clients seen taking lately (sorted set, see NoteClients)
//	bw:{r:=NAME}:it=KEY:=ID the record of a take with idempotency key ID on
//	                        key KEY (both encoded as below; see TakeOnce)
//	bw:idx:r                names of all limits (set, its own slot)
//
// The key of a take is encoded by store.Suffix as store encodes ids, "="
// and the key when it is plain, "~" and its hex otherwise, so the encoding is injective and
// no key, whatever bytes it holds, can reach another key's bucket or
// another limit's data. It comes after the hash tag, so it cannot change
// the slot. The empty key, the default bucket, is "k=".

// keyKind is the store kind of rate limits.
const keyKind = "r"

// keys returns the config key of a limit and the bucket key of one key.
func keys(name, key string) []string {
	return store.ObjectKeys(keyKind, []string{name}, "c", bucketSuffix(key))
}

// configKeys is the config key of a limit, alone.
func configKeys(name string) []string {
	return store.ObjectKeys(keyKind, []string{name}, "c")
}

// clientsKey is the set of clients that took from a limit lately.
func clientsKey(name string) []string {
	return store.ObjectKeys(keyKind, []string{name}, "cl")
}

// indexKey is the set of every limit's name.
var indexKey = store.IndexKey(keyKind)

func bucketSuffix(key string) string { return store.Suffix("k", key) }

// onceSuffix names the record of a take from key's bucket under idempotency
// key id. Neither encoding holds a colon, so the pair is read back one way.
func onceSuffix(key, id string) string { return store.Suffix("it", key) + store.Suffix(":", id) }
