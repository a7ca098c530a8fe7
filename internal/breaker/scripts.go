package breaker

import (
	"embed"
	"io/fs"

	"github.com/breakwater-dev/breakwater/internal/store"
)

//go:embed lua/*.lua
var luaFS embed.FS

var luaDir, _ = fs.Sub(luaFS, "lua")

// The scripts, each common.lua followed by its own body.
var (
	scriptAcquire  = load("acquire")
	scriptOutcomes = load("outcomes")
	scriptPut      = load("put")
	scriptGet      = load("get")
	scriptDelete   = load("delete")
	scriptOverride = load("override")
	scriptRelease  = load("release")
	scriptReset    = load("reset")
)

func load(name string) *store.Script {
	return store.LoadScript(luaDir, "breaker", "common", name)
}

// keys returns the keys of one breaker: its hash, its window, its permits.
func keys(name string) []string {
	return store.ObjectKeys("b", []string{name}, "s", "w", "p")
}

// keysWithTombstone is keys and the breaker's tombstone, which put and
// delete use: the highest generation any breaker of this name had.
func keysWithTombstone(name string) []string {
	return store.ObjectKeys("b", []string{name}, "s", "w", "p", "t")
}

// indexKey is the set of every breaker's name.
var indexKey = store.IndexKey("b")
