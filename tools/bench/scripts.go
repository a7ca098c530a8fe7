package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/store"
)

// The bare scripts, loaded from the same files the services embed and run
// with the keys and arguments the services give them for the requests of
// the HTTP loads (see internal/breaker/service.go and
// internal/ratelimit/service.go, and each script's header). A script that
// answers false did not find its object: these layouts are out of date.

// floorScript is what any decision must do: read the clock, read the state
// in one call, write it back, answer briefly.
const floorScript = `local t = redis.call('TIME')
local v = redis.call('MGET', KEYS[1], KEYS[2])
redis.call('SET', KEYS[1], t[1], 'PX', 60000)
return {1, 'closed', 0}`

type scriptLoad struct {
	name string
	sc   *store.Script
	keys []string
	args []any
}

type scriptLoads struct {
	st  *store.Store
	all []scriptLoad
}

func newScriptLoad(redisAddr string) (*scriptLoads, error) {
	st, err := store.Open(store.Config{URL: "redis://" + redisAddr})
	if err != nil {
		return nil, err
	}
	bfs, rfs := os.DirFS("internal/breaker/lua"), os.DirFS("internal/ratelimit/lua")
	breakerKeys := store.ObjectKeys("b", []string{"bench"}, "s", "w", "p")
	// The outcomes script applies the reports of a coalesced run: here one
	// report of one entry, as a lone report runs.
	outcomesKeys, outcomesArgs := store.EachCall(breakerKeys, []any{"bench"}, store.Request{Args: []any{"1", 12, 1, "", -1, 0}})
	return &scriptLoads{st: st, all: []scriptLoad{
		{"floor", store.NewScript("floor", floorScript), store.ObjectKeys("f", []string{"bench"}, "a", "b"), nil},
		{"take", store.LoadScript(rfs, "ratelimit", "take", "common"),
			store.ObjectKeys("r", []string{"bench"}, "c", store.Suffix("k", "tenant-42")), []any{1, "0"}},
		{"acquire", store.LoadScript(bfs, "breaker", "acquire", breaker.Preludes("acquire")...), breakerKeys, []any{"bench"}},
		{"outcomes", store.LoadCoalesced(bfs, "breaker", "outcomes", breaker.Preludes("outcomes")...), outcomesKeys, outcomesArgs},
	}}, nil
}

func (s *scriptLoads) loads() []scriptLoad { return s.all }

func (s *scriptLoads) byName(name string) scriptLoad {
	for _, l := range s.all {
		if l.name == name {
			return l
		}
	}
	panic("no script load " + name)
}

func (s *scriptLoads) close() { s.st.Close() }

// run runs one script from conns goroutines for d and measures runs per
// second and the latency of each run as the caller sees it.
func (s *scriptLoads) run(l scriptLoad, conns int, d time.Duration) (result, error) {
	ctx := context.Background()
	if v, err := s.st.Run(ctx, l.sc, l.keys, l.args...); err != nil || v == nil {
		return result{}, fmt.Errorf("script %s = %v, %v: want an answer (are the keys and arguments of tools/bench/scripts.go up to date?)", l.name, v, err)
	}
	var (
		mu   sync.Mutex
		lat  []time.Duration
		fail error
		wg   sync.WaitGroup
	)
	start := time.Now()
	stop := start.Add(d)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1<<14)
			for {
				t := time.Now()
				if t.After(stop) {
					break
				}
				if _, err := s.st.Run(ctx, l.sc, l.keys, l.args...); err != nil {
					mu.Lock()
					fail = err
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if fail != nil {
		return result{}, fmt.Errorf("script %s: %w", l.name, fail)
	}
	elapsed := time.Since(start)
	slices.Sort(lat)
	return result{
		rps: float64(len(lat)) / elapsed.Seconds(),
		p50: lat[len(lat)/2],
		p99: lat[len(lat)*99/100],
	}, nil
}

func numCPU() int { return runtime.GOMAXPROCS(0) }
