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
//	bw:{r:=NAME}:t          tombstone: the highest config version it had (string, outlives the limit)
//	bw:{r:=NAME}:h          config history (list, see lua/put.lua)
//	bw:{r:=NAME}:it=KEY:=ID the record of a take with idempotency key ID on
//	                        key KEY (both encoded as below; see TakeOnce)
//	bw:idx:r                names of all limits (set, its own slot)
//
// The key of a take is encoded by store.Suffix as store encodes ids, "="
// and the key when it is plain, "~" and its hex otherwise, so the encoding is injective and
// no key, whatever bytes it holds, can reach another key's bucket or
// another limit's data. It comes after the hash tag, so it cannot change
// the slot. The empty key, the default bucket, is "k=".

// A space is a key space of limits: its kind is the first part of every
// hash tag ("r" in the layout above) and names its index. The API serves
// the public space only, so no name or key sent to the API can reach a
// limit of another space: Breakwater's own limits (the per-token API cap,
// see NewSystemService) live in the system space, "bw:{sys:=NAME}:...".
type space string

const (
	publicSpace space = "r"
	systemSpace space = "sys"
)

// keys returns the config key of a limit and the bucket key of one key.
func (sp space) keys(name, key string) []string {
	return store.ObjectKeys(string(sp), []string{name}, "c", bucketSuffix(key))
}

// configKeys is the config key of a limit, alone.
func (sp space) configKeys(name string) []string {
	return store.ObjectKeys(string(sp), []string{name}, "c")
}

// versionKeys are the config key, the tombstone and the config history of
// a limit, which put, delete and history use.
func (sp space) versionKeys(name string) []string {
	return store.ObjectKeys(string(sp), []string{name}, "c", "t", "h")
}

// clientsKey is the set of clients that took from a limit lately.
func (sp space) clientsKey(name string) []string {
	return store.ObjectKeys(string(sp), []string{name}, "cl")
}

// indexKey is the set of every limit's name.
func (sp space) indexKey() string { return store.IndexKey(string(sp)) }

// onceKey is the record of a take from key's bucket under an idempotency
// key.
func (sp space) onceKey(name, key, idemKey string) string {
	return store.ObjectKeys(string(sp), []string{name}, onceSuffix(key, idemKey))[0]
}

// The public space's keys, for tests.
func keys(name, key string) []string  { return publicSpace.keys(name, key) }
func configKeys(name string) []string { return publicSpace.configKeys(name) }

var indexKey = publicSpace.indexKey()

func bucketSuffix(key string) string { return store.Suffix("k", key) }

// onceSuffix names the record of a take from key's bucket under idempotency
// key id. Neither encoding holds a colon, so the pair is read back one way.
func onceSuffix(key, id string) string { return store.Suffix("it", key) + store.Suffix(":", id) }
