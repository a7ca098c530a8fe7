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
	scriptOutcomes = store.LoadCoalesced(luaDir, "breaker", "common", "outcomes")
	scriptPut      = load("put")
	scriptGet      = load("get")
	scriptDelete   = load("delete")
	scriptOverride = load("override")
	scriptRelease  = load("release")
	scriptReset    = load("reset")
	scriptHistory  = load("history")
)

func load(name string) *store.Script {
	return store.LoadScript(luaDir, "breaker", "common", name)
}

// keys returns the keys of one breaker: its hash, its window, its permits.
func keys(name string) []string {
	return store.ObjectKeys("b", []string{name}, "s", "w", "p")
}

// keysWithHistory is keys, the breaker's tombstone (the highest generation
// and config version any breaker of this name had) and its config history,
// which put, delete and history use.
func keysWithHistory(name string) []string {
	return store.ObjectKeys("b", []string{name}, "s", "w", "p", "t", "h")
}

// indexKey is the set of every breaker's name.
var indexKey = store.IndexKey("b")
