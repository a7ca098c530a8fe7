package faults

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/client"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestR5SentinelFailover kills the Sentinel primary under load and
// measures how long until writes work again and how many acknowledged
// outcomes the promoted replica does not have.
func TestR5SentinelFailover(t *testing.T) {
	after := pick(2*time.Second, 10*time.Second)
	s := storetest.StartSentinel(t)
	cp := startPlane(t, s.URL(), "--store-timeout", "500ms")
	mustCall(t, http.MethodPut, cp.URL+"/v1/breakers/r5", exactBreaker, nil)
	mustCall(t, http.MethodPut, cp.URL+"/v1/breakers/r5-sdk", exactBreaker, nil)

	var deg degradations
	c, err := client.New(client.Config{Endpoints: []string{cp.URL}, FlushInterval: 50 * time.Millisecond, Hooks: deg.hooks()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sdk := runLoad(2, 2*time.Millisecond, func(ctx context.Context) error {
		return c.Breaker("r5-sdk").Do(ctx, func(context.Context) error { return nil })
	}, nil)

	// Writers: each report is one outcome, sent once, with its own key.
	var acked, failed atomic.Int64
	var mu sync.Mutex
	var firstFail, recovered time.Time
	var killed time.Time
	stop := make(chan struct{})
	var wg sync.WaitGroup
	one := map[string]any{"outcomes": []map[string]any{{"success": true, "duration_ms": 1}}}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				code, _, err := call(ctx, http.MethodPost, cp.URL+"/v1/breakers/r5/outcomes", one, map[string]string{"Idempotency-Key": newKey()}, nil)
				cancel()
				now := time.Now()
				mu.Lock()
				if err == nil && code == http.StatusOK {
					acked.Add(1)
					if !firstFail.IsZero() && recovered.IsZero() {
						recovered = now
					}
				} else {
					failed.Add(1)
					if !killed.IsZero() && firstFail.IsZero() {
						firstFail = now
					}
					if err != nil {
						time.Sleep(10 * time.Millisecond)
					}
				}
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	mu.Lock()
	killed = time.Now()
	mu.Unlock()
	s.Primary.Stop()
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		done := !recovered.IsZero()
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(after)
	close(stop)
	wg.Wait()
	sdk.stop()

	var b breakerView
	mustCall(t, http.MethodGet, cp.URL+"/v1/breakers/r5", nil, &b)
	mu.Lock()
	gap := recovered.Sub(killed)
	mu.Unlock()
	// Replication is asynchronous: what the primary acknowledged but had
	// not yet sent to the replica is lost; a report that failed may still
	// have been applied.
	lost := max(0, acked.Load()-b.Stats.Calls)
	extra := max(0, b.Stats.Calls-acked.Load())
	result(t, "R5 Sentinel failover", "primary killed under load: writes work again after %s; %d one-outcome reports acknowledged, %d failed; the promoted replica counts %d: %d acknowledged lost, %d failed but applied; SDK: %d caller errors in %d calls, %d switches to degraded mode",
		ms(gap), acked.Load(), failed.Load(), b.Stats.Calls, lost, extra, sdk.errs.Load(), sdk.ops.Load(), deg.entered.Load())
	checkNoPanic(t, cp)
	if recovered.IsZero() {
		t.Fatalf("writes did not work again within 60 s of the primary's death")
	}
	if sdk.errs.Load() != 0 {
		t.Errorf("fail-open SDK callers: %s; want none", sdk.errors())
	}
}

// TestR7ReplicaDown kills (SIGKILL) or freezes (SIGSTOP) one of two
// control-plane replicas under SDK load: callers see no error, and the
// store counts exactly the outcomes and tokens the callers saw.
func TestR7ReplicaDown(t *testing.T) {
	for _, how := range []string{"killed", "frozen"} {
		t.Run(how, func(t *testing.T) {
			after := pick(2*time.Second, 10*time.Second)
			redis := startRedis(t)
			cpA := startPlane(t, redis.URL())
			cpB := startPlane(t, redis.URL())
			mustCall(t, http.MethodPut, cpB.URL+"/v1/breakers/r7", exactBreaker, nil)
			mustCall(t, http.MethodPut, cpB.URL+"/v1/ratelimits/r7", exactLimit, nil)
			// Several clients, so that requests are in flight to plane A
			// when it goes.
			var deg degradations
			var recorded, granted atomic.Int64
			var clients []*client.Client
			var loads []*load
			for range 4 {
				c, err := client.New(client.Config{Endpoints: []string{cpA.URL, cpB.URL}, FlushInterval: 20 * time.Millisecond,
					LeaseSize: 1, RequestTimeout: 500 * time.Millisecond, Hooks: deg.hooks()})
				if err != nil {
					t.Fatal(err)
				}
				clients = append(clients, c)
				lim := c.Limiter("r7").For("k")
				b := c.Breaker("r7")
				loads = append(loads, runLoad(2, time.Millisecond, func(ctx context.Context) error {
					if err := b.Do(ctx, func(context.Context) error { recorded.Add(1); return nil }); err != nil {
						return err
					}
					if err := lim.Take(ctx); err != nil {
						return err
					}
					granted.Add(1)
					return nil
				}, nil))
			}
			time.Sleep(500 * time.Millisecond)
			if how == "killed" {
				cpA.Kill()
			} else {
				cpA.cmd.Process.Signal(syscall.SIGSTOP)
			}
			time.Sleep(after)
			var errs, ops int64
			var sample []string
			for _, l := range loads {
				l.stop()
				errs += l.errs.Load()
				ops += l.ops.Load()
				if l.errs.Load() > 0 {
					sample = append(sample, l.errors())
				}
			}
			for _, c := range clients {
				if err := c.Close(); err != nil {
					t.Errorf("Close (the last report) = %v", err)
				}
			}
			calls, taken := storeCounts(t, cpB.URL, "r7", "k")
			result(t, "R7 replica "+how, "one of 2 replicas %s under load of 4 clients, %v after: %d caller errors in %d calls; %d switches to degraded mode; outcomes recorded %d, counted %d; tokens granted %d, taken %d",
				how, after, errs, ops, deg.entered.Load(), recorded.Load(), calls, granted.Load(), taken)
			checkNoPanic(t, cpB)
			if errs != 0 {
				t.Errorf("callers: %q; want no error", sample)
			}
			if deg.entered.Load() != 0 {
				t.Errorf("client switched to degraded mode %d times, want 0: a replica answers", deg.entered.Load())
			}
			if calls != recorded.Load() {
				t.Errorf("outcomes counted in the store = %d, want %d (recorded)", calls, recorded.Load())
			}
			if taken != granted.Load() {
				t.Errorf("tokens taken in the store = %d, want %d (granted)", taken, granted.Load())
			}
		})
	}
}
