package ratelimit

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
	scriptTake    = load("take")
	scriptGet     = load("get")
	scriptPut     = loadAlone("put")
	scriptDelete  = loadAlone("delete")
	scriptHistory = loadAlone("history")
	scriptNote    = loadAlone("clients")
)

// loadAlone loads a script that stands without common.lua.
func loadAlone(name string) *store.Script {
	return store.LoadScript(luaDir, "ratelimit", name)
}

func load(name string) *store.Script {
	return store.LoadScript(luaDir, "ratelimit", name, "common")
}
