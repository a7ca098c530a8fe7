package faults

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/client"
)

// TestR9ForcedOpen forces a breaker open while many clients use it: every
// client refuses within the breaker's cache_ttl_ms (the figures are how
// fast the event stream brings it), and keeps refusing after every control
// plane is gone.
func TestR9ForcedOpen(t *testing.T) {
	nClients := pick(10, 100)
	hold := pick(3*time.Second, 30*time.Second)
	const cacheTTL = time.Second
	redis := startRedis(t)
	cpA := startPlane(t, redis.URL())
	cpB := startPlane(t, redis.URL())
	mustCall(t, http.MethodPut, cpA.URL+"/v1/breakers/r9", map[string]any{"cache_ttl_ms": cacheTTL.Milliseconds()}, nil)

	clients := make([]*client.Client, nClients)
	for i := range clients {
		eps := []string{cpA.URL, cpB.URL}
		if i%2 == 1 {
			eps = []string{cpB.URL, cpA.URL}
		}
		c, err := client.New(client.Config{Endpoints: eps, RequestTimeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
		done, err := c.Breaker("r9").Allow(context.Background())
		if err != nil {
			t.Fatalf("client %d: Allow before the override = %v", i, err)
		}
		done(nil)
	}
	time.Sleep(time.Second) // the event streams connect

	// Each client calls as fast as a busy service would, and notes when it
	// first refuses.
	reached := make([]time.Duration, nClients)
	var wg sync.WaitGroup
	var start time.Time
	startCh := make(chan struct{})
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startCh
			b := c.Breaker("r9")
			for time.Since(start) < 10*time.Second {
				done, err := b.Allow(context.Background())
				if errors.Is(err, client.ErrOpen) {
					reached[i] = time.Since(start)
					return
				}
				if err == nil {
					done(nil)
				}
				time.Sleep(time.Millisecond)
			}
			reached[i] = -1
		}()
	}
	start = time.Now()
	close(startCh)
	mustCall(t, http.MethodPut, cpA.URL+"/v1/breakers/r9/override", map[string]any{"state": "forced_open", "reason": "fault drill"}, nil)
	wg.Wait()
	missed := 0
	var worst time.Duration
	for _, d := range reached {
		if d < 0 {
			missed++
		}
		worst = max(worst, d)
	}

	// Every control plane goes away: the override must hold.
	cpA.Kill()
	cpB.Kill()
	gone := time.Now()
	var allowed atomic.Int64
	var firstAllowed atomic.Int64
	firstAllowed.Store(-1)
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := c.Breaker("r9")
			for time.Since(gone) < hold {
				done, err := b.Allow(context.Background())
				if err == nil {
					done(nil)
					allowed.Add(1)
					firstAllowed.CompareAndSwap(-1, int64(time.Since(gone)))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()

	// A control plane answers again, and the operator ends the override:
	// every client lets calls through again.
	cpA = startPlaneAt(t, strings.TrimPrefix(cpA.URL, "http://"), redis.URL())
	released := time.Now()
	mustCall(t, http.MethodDelete, cpA.URL+"/v1/breakers/r9/override", nil, nil)
	var lastBack atomic.Int64
	var stuck atomic.Int64
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := c.Breaker("r9")
			for time.Since(released) < 10*time.Second {
				done, err := b.Allow(context.Background())
				if err == nil {
					done(nil)
					d := int64(time.Since(released))
					for {
						cur := lastBack.Load()
						if d <= cur || lastBack.CompareAndSwap(cur, d) {
							break
						}
					}
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			stuck.Add(1)
		}()
	}
	wg.Wait()

	first := "never"
	if f := firstAllowed.Load(); f >= 0 {
		first = ms(time.Duration(f)) + " after"
	}
	result(t, "R9 forced_open", "%d clients, 2 planes, events up: refused by every client after p50 %s, p99 %s, max %s (%d never); all planes killed for %v: %d calls let through, first %s; a plane back and the override deleted: every client lets calls through after %s (%d never)",
		nClients, ms(percentile(reached, 50)), ms(percentile(reached, 99)), ms(worst), missed, hold, allowed.Load(), first, ms(time.Duration(lastBack.Load())), stuck.Load())
	if missed > 0 || worst > cacheTTL {
		t.Errorf("forced_open reached the last client after %s (%d never), want every client within cache_ttl_ms = %v", ms(worst), missed, cacheTTL)
	}
	if allowed.Load() > 0 {
		t.Errorf("with no control plane, clients let %d calls through a forced_open breaker (first %s the planes went), want none", allowed.Load(), first)
	}
	if stuck.Load() > 0 {
		t.Errorf("%d clients still refuse 10 s after a control plane came back and the override ended, want none", stuck.Load())
	}
}
