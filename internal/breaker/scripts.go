package breaker

import (
	"embed"
	"io/fs"

	"github.com/breakwater-dev/breakwater/internal/store"
)

//go:embed lua/*.lua
var luaFS embed.FS

var luaDir, _ = fs.Sub(luaFS, "lua")

// The scripts, each its preludes followed by its own body.
var (
	scriptAcquire  = load("acquire")
	scriptOutcomes = store.LoadCoalesced(luaDir, "breaker", "outcomes", Preludes("outcomes")...)
	scriptPut      = load("put")
	scriptGet      = load("get")
	scriptDelete   = load("delete")
	scriptOverride = load("override")
	scriptRelease  = load("release")
	scriptReset    = load("reset")
	scriptHistory  = load("history")
)

func load(name string) *store.Script {
	return store.LoadScript(luaDir, "breaker", name, Preludes(name)...)
}

// Preludes are the files a script is built from before its own:
// common.lua, and window.lua for every script but acquire, the hottest,
// which never reads the window (each function a script defines costs it
// a closure on every run). Acquire starts with acquire_closed.lua, which
// answers a closed breaker with nothing else to do before common.lua's
// functions are made. See docs/performance.md, "The acquire script".
func Preludes(name string) []string {
	if name == "acquire" {
		return []string{"acquire_closed", "common"}
	}
	return []string{"common", "window"}
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
