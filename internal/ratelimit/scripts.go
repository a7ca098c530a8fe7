package ratelimit

import (
	"embed"
	"fmt"
	"strconv"

	"github.com/breakwater-dev/breakwater/internal/store"
)

//go:embed lua/*.lua
var luaFS embed.FS

// The scripts, each common.lua followed by its own body.
var (
	scriptTake   = load("take")
	scriptGet    = load("get")
	scriptPut    = load("put")
	scriptDelete = load("delete")
	scriptNote   = loadAlone("clients")
)

// loadAlone loads a script that stands without common.lua.
func loadAlone(name string) *store.Script {
	body, err := luaFS.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	return store.NewScript("ratelimit."+name, string(body))
}

func load(name string) *store.Script {
	common, err := luaFS.ReadFile("lua/common.lua")
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	body, err := luaFS.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(err)
	}
	src := fmt.Sprintf("local CH = %s\n%s\n%s", strconv.Quote(store.EventsChannel), common, body)
	return store.NewScript("ratelimit."+name, src)
}
