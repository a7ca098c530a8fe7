package faults

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/client"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// exactBreaker never trips and keeps an hour of calls, so its window's
// count is every outcome ever applied.
var exactBreaker = map[string]any{
	"window":                 map[string]any{"type": "time", "size": 3600},
	"failure_rate_threshold": 100, "minimum_calls": 10000, "slow_call_rate_threshold": 100,
}

// exactLimit holds far more tokens than a run takes and refills too slowly
// to matter, so capacity minus tokens is every token ever taken.
var exactLimit = map[string]any{"capacity": 1000000000, "refill_per_second": 0.001}

const exactCapacity = 1000000000

// storeCounts reads what the store applied: the breaker's calls and the
// tokens taken from the limit's bucket for key.
func storeCounts(t *testing.T, base, name, key string) (calls, taken int64) {
	t.Helper()
	var b breakerView
	mustCall(t, http.MethodGet, base+"/v1/breakers/"+name, nil, &b)
	var l limitView
	mustCall(t, http.MethodGet, base+"/v1/ratelimits/"+name+"?key="+key, nil, &l)
	if l.Tokens == nil {
		t.Fatalf("GET /v1/ratelimits/%s?key=%s has no tokens", name, key)
	}
	return b.Stats.Calls, int64(math.Round(exactCapacity - *l.Tokens))
}

// TestR3LateAndLostReplies runs SDK load over two control planes while
// plane A's replies from Redis come late (past --store-timeout, after the
// script ran) or are dropped after the write, and its HTTP replies to the
// client are dropped, reset or sliced: the store counts exactly the
// outcomes the clients recorded and has taken exactly the tokens the
// clients granted.
func TestR3LateAndLostReplies(t *testing.T) {
	rounds := pick(1, 5)
	faultFor := pick(500*time.Millisecond, time.Second)
	redis := startRedis(t)
	tx := newToxi(t)
	redisA := tx.link(t, "redis-a", redis.Addr)
	cpA := startPlane(t, "redis://"+redisA.Addr, "--store-timeout", "100ms")
	// Plane B is the healthy one: a deadline that a busy machine meets.
	cpB := startPlane(t, redis.URL(), "--store-timeout", "1s")
	mustCall(t, http.MethodPut, cpB.URL+"/v1/breakers/r3", exactBreaker, nil)
	mustCall(t, http.MethodPut, cpB.URL+"/v1/ratelimits/r3", exactLimit, nil)
	httpA := tx.link(t, "http-a", strings.TrimPrefix(cpA.URL, "http://"))

	phases := []struct {
		on *link
		tx toxic
	}{
		// 150 ms: a script sent on an open connection runs, its reply
		// comes after the deadline. 70±30 ms: on a new connection the
		// handshake and the script together pass the deadline.
		{redisA, toxic{Name: "late", Type: "latency", Attributes: map[string]any{"latency": 150}}},
		{redisA, toxic{Name: "late-new", Type: "latency", Attributes: map[string]any{"latency": 70, "jitter": 30}}},
		{redisA, toxic{Name: "reset", Type: "reset_peer", Toxicity: 0.5, Attributes: map[string]any{"timeout": 0}}},
		{httpA, toxic{Name: "late", Type: "latency", Toxicity: 0.5, Attributes: map[string]any{"latency": 400}}},
		{httpA, toxic{Name: "drop", Type: "timeout", Toxicity: 0.5, Attributes: map[string]any{"timeout": 0}}},
		{httpA, toxic{Name: "reset", Type: "reset_peer", Toxicity: 0.5, Attributes: map[string]any{"timeout": 0}}},
		{httpA, toxic{Name: "slice", Type: "slicer", Attributes: map[string]any{"average_size": 16, "size_variation": 8, "delay": 200}}},
	}
	// A client that finds a replica failing tries it again only after a
	// few seconds, so each phase gets fresh clients, some reporting
	// outcomes and some taking tokens, that start on healthy planes and
	// meet plane A's fault with their decision requests.
	var deg degradations
	var clientLog logLines
	var recorded, granted, callerErrs, ops atomic.Int64
	var errSample []string
	nClients := 0
	for range rounds {
		for _, ph := range phases {
			var clients []*client.Client
			var loads []*load
			for i := range 8 {
				c, err := client.New(client.Config{
					Endpoints:      []string{"http://" + httpA.Addr, cpB.URL},
					FlushInterval:  20 * time.Millisecond,
					LeaseSize:      1,
					RequestTimeout: 300 * time.Millisecond,
					Hooks:          deg.hooks(),
					Logger:         clientLog.logger(),
				})
				if err != nil {
					t.Fatal(err)
				}
				clients = append(clients, c)
				if i%2 == 0 {
					b := c.Breaker("r3")
					loads = append(loads, runLoad(2, time.Millisecond, func(ctx context.Context) error {
						return b.Do(ctx, func(context.Context) error { recorded.Add(1); return nil })
					}, nil))
				} else {
					lim := c.Limiter("r3").For("k")
					loads = append(loads, runLoad(2, time.Millisecond, func(ctx context.Context) error {
						if err := lim.Take(ctx); err != nil {
							return err
						}
						granted.Add(1)
						return nil
					}, nil))
				}
			}
			nClients += len(clients)
			time.Sleep(300 * time.Millisecond)
			ph.on.add(t, ph.tx)
			time.Sleep(faultFor)
			ph.on.remove(t, ph.tx.Name)
			time.Sleep(100 * time.Millisecond)
			for _, l := range loads {
				l.stop()
				callerErrs.Add(l.errs.Load())
				ops.Add(l.ops.Load())
				if l.errs.Load() > 0 && len(errSample) < 3 {
					errSample = append(errSample, l.errors())
				}
			}
			var closing sync.WaitGroup
			for _, c := range clients {
				closing.Add(1)
				go func() {
					defer closing.Done()
					if err := c.Close(); err != nil {
						t.Errorf("Close (the last report) = %v", err)
					}
				}()
			}
			closing.Wait()
		}
	}
	calls, taken := storeCounts(t, cpB.URL, "r3", "k")
	result(t, "R3 late and lost replies", "%d fault phases of %v on plane A (Redis replies late or reset; HTTP replies late, dropped, reset or sliced), plane B healthy, %d clients: outcomes recorded %d, counted in the store %d; tokens granted %d, taken in the store %d; %d caller errors in %d calls; %d switches to degraded mode",
		rounds*len(phases), faultFor, nClients, recorded.Load(), calls, granted.Load(), taken, callerErrs.Load(), ops.Load(), deg.entered.Load())
	checkNoPanic(t, cpA, cpB)
	if deg.entered.Load() > 0 {
		t.Logf("clients' logs:\n%s", clientLog.String())
	}
	if calls != recorded.Load() {
		t.Errorf("outcomes counted in the store = %d, want %d (the outcomes the clients recorded)", calls, recorded.Load())
	}
	if taken != granted.Load() {
		t.Errorf("tokens taken in the store = %d, want %d (the tokens the clients granted)", taken, granted.Load())
	}
	if callerErrs.Load() != 0 {
		t.Errorf("callers: %q; want no error, plane B answers", errSample)
	}
}

// TestR6ClusterDroppedReply reports outcomes and takes tokens on a Redis
// Cluster whose replies to the control plane are dropped after the write
// or come late: each request, re-sent with its Idempotency-Key until
// answered, is applied exactly once.
func TestR6ClusterDroppedReply(t *testing.T) {
	dur := pick(3*time.Second, 30*time.Second)
	cluster := storetest.StartCluster(t, 3)
	tx := newToxi(t)
	var links []*link
	var addrs []string
	for i, node := range cluster.Nodes {
		l := tx.link(t, fmt.Sprintf("node-%d", i), node.Addr)
		links = append(links, l)
		addrs = append(addrs, l.Addr)
		// The node tells clients to reach it through its proxy; the
		// cluster's own bus stays direct.
		_, port, _ := net.SplitHostPort(node.Addr)
		_, proxyPort, _ := net.SplitHostPort(l.Addr)
		var p int
		fmt.Sscan(port, &p)
		for _, kv := range [][2]string{{"cluster-announce-bus-port", fmt.Sprint(p + 10000)}, {"cluster-announce-port", proxyPort}} {
			if got := node.Do("CONFIG", "SET", kv[0], kv[1]); got != "+OK" {
				t.Fatalf("CONFIG SET %s %s = %q", kv[0], kv[1], got)
			}
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		all := true
		for _, node := range cluster.Nodes {
			nodes := node.Bulk("CLUSTER", "NODES")
			for _, a := range addrs {
				if !strings.Contains(nodes, a+"@") {
					all = false
				}
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster nodes do not announce their proxies within 20s: %s", cluster.Nodes[0].Bulk("CLUSTER", "NODES"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	url := "redis+cluster://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	cpA := startPlane(t, url, "--store-timeout", "200ms")
	cpB := startPlane(t, url, "--store-timeout", "200ms")
	bases := []string{cpA.URL, cpB.URL}
	mustCall(t, http.MethodPut, cpA.URL+"/v1/breakers/r6", exactBreaker, nil)
	mustCall(t, http.MethodPut, cpA.URL+"/v1/ratelimits/r6", exactLimit, nil)

	var reported, granted, attempts, replays atomic.Int64
	var mu sync.Mutex
	var bad []string
	ctx, cancel := context.WithTimeout(context.Background(), dur+60*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				order := []string{bases[(w+i)%2], bases[(w+i+1)%2]}
				n := int64(1 + rand.IntN(5))
				var d struct {
					Allowed bool  `json:"allowed"`
					Granted int64 `json:"granted"`
				}
				var code, tries int
				var replayed bool
				var err error
				if i%2 == 0 {
					code, replayed, tries, err = sendOnce(ctx, order, "/v1/breakers/r6/outcomes",
						map[string]any{"outcomes": []map[string]any{{"success": true, "duration_ms": 1, "count": n}}}, &d)
					if err == nil && code == http.StatusOK {
						reported.Add(n)
					}
				} else {
					code, replayed, tries, err = sendOnce(ctx, order, "/v1/ratelimits/r6/take",
						map[string]any{"tokens": n, "key": "k"}, &d)
					if err == nil && code == http.StatusOK {
						granted.Add(d.Granted)
					}
				}
				attempts.Add(int64(tries))
				if replayed {
					replays.Add(1)
				}
				if err != nil || code != http.StatusOK {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("status %d, %v", code, err))
					mu.Unlock()
				}
			}
		}()
	}
	phases := []toxic{
		{Name: "reset", Type: "reset_peer", Toxicity: 0.3, Attributes: map[string]any{"timeout": 0}},
		{Name: "late", Type: "latency", Toxicity: 0.5, Attributes: map[string]any{"latency": 300}},
		{Name: "drop", Type: "timeout", Toxicity: 0.3, Attributes: map[string]any{"timeout": 100}},
	}
	per := dur / time.Duration(len(phases))
	for _, ph := range phases {
		for _, l := range links {
			l.add(t, ph)
		}
		time.Sleep(per)
		for _, l := range links {
			l.remove(t, ph.Name)
		}
	}
	close(stop)
	wg.Wait()
	calls, taken := storeCounts(t, cpA.URL, "r6", "k")
	result(t, "R6 Cluster, dropped replies", "%v of faults between 2 planes and a 3-node cluster: outcomes acknowledged %d, counted %d; tokens granted %d, taken %d; %d attempts, %d replays, %d requests never answered",
		dur, reported.Load(), calls, granted.Load(), taken, attempts.Load(), replays.Load(), len(bad))
	checkNoPanic(t, cpA, cpB)
	if len(bad) > 0 {
		t.Errorf("%d requests not answered 200 within their deadline, first %q", len(bad), bad[0])
	}
	if calls != reported.Load() {
		t.Errorf("outcomes counted in the store = %d, want %d (acknowledged)", calls, reported.Load())
	}
	if taken != granted.Load() {
		t.Errorf("tokens taken in the store = %d, want %d (granted)", taken, granted.Load())
	}
}

// TestR8HalfOpenLostReplies opens a breaker and lets it go half-open, over
// and over, while concurrent acquires through two planes lose some of
// their replies from Redis: never more than half_open_max_calls permits
// are out at once.
func TestR8HalfOpenLostReplies(t *testing.T) {
	trials := pick(100, 1000)
	const maxCalls = 2
	redis := startRedis(t)
	tx := newToxi(t)
	redisA := tx.link(t, "redis-a", redis.Addr)
	cpA := startPlane(t, "redis://"+redisA.Addr, "--store-timeout", "100ms")
	cpB := startPlane(t, redis.URL(), "--store-timeout", "100ms")
	mustCall(t, http.MethodPut, cpB.URL+"/v1/breakers/r8", map[string]any{
		"consecutive_failures": 1, "open_duration_ms": 20, "half_open_max_calls": maxCalls, "probe_timeout_ms": 600000,
	}, nil)
	redisA.add(t, toxic{Name: "reset", Type: "reset_peer", Toxicity: 0.3, Attributes: map[string]any{"timeout": 0}})
	redisA.add(t, toxic{Name: "late", Type: "latency", Toxicity: 0.3, Attributes: map[string]any{"latency": 150}})

	const acquirers = 6
	worst, total, replays, over := 0, 0, 0, 0
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	failure := map[string]any{"outcomes": []map[string]any{{"success": false, "duration_ms": 1}}}
	for trial := range trials {
		mustCall(t, http.MethodPost, cpB.URL+"/v1/breakers/r8/reset", nil, nil)
		if code, _, _, err := sendOnce(ctx, []string{cpB.URL}, "/v1/breakers/r8/outcomes", failure, nil); err != nil || code != http.StatusOK {
			t.Fatalf("trial %d: report a failure = %d, %v", trial, code, err)
		}
		time.Sleep(25 * time.Millisecond)
		var mu sync.Mutex
		permits := map[string]bool{}
		var wg sync.WaitGroup
		for i := range acquirers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var d struct {
					Allowed bool   `json:"allowed"`
					Permit  string `json:"permit"`
				}
				order := []string{cpA.URL, cpB.URL}
				if i%2 == 1 {
					order = []string{cpB.URL, cpA.URL}
				}
				code, replayed, _, err := sendOnce(ctx, order, "/v1/breakers/r8/acquire", map[string]any{}, &d)
				mu.Lock()
				defer mu.Unlock()
				if err != nil || code != http.StatusOK {
					t.Errorf("trial %d: acquire = %d, %v", trial, code, err)
					return
				}
				if replayed {
					replays++
				}
				if d.Allowed && d.Permit != "" {
					permits[d.Permit] = true
				}
			}()
		}
		wg.Wait()
		total += len(permits)
		worst = max(worst, len(permits))
		if len(permits) > maxCalls {
			over++
		}
	}
	result(t, "R8 half-open, lost replies", "%d trials, %d acquirers each, half_open_max_calls %d, 30%% of plane A's Redis replies reset and 30%% late: most permits out at once %d; %d permits in all; %d trials over the limit; %d replays",
		trials, acquirers, maxCalls, worst, total, over, replays)
	checkNoPanic(t, cpA, cpB)
	if over > 0 {
		t.Errorf("%d of %d trials had more than half_open_max_calls = %d permits out (most %d)", over, trials, maxCalls, worst)
	}
}
