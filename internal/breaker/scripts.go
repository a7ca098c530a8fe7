package breaker

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
	common, err := luaFS.ReadFile("lua/common.lua")
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	body, err := luaFS.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(err)
	}
	src := fmt.Sprintf("local CH = %s\n%s\n%s", strconv.Quote(store.EventsChannel), common, body)
	return store.NewScript("breaker."+name, src)
}

// keys returns the keys of one breaker: its hash, its window, its permits.
func keys(name string) []string {
	return store.ObjectKeys("b", []string{name}, "s", "w", "p")
}

// indexKey is the set of every breaker's name.
var indexKey = store.IndexKey("b")
