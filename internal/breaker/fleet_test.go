package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestClusterRunsEveryScript runs every breaker script for thousands of
// random names on a 3-node Redis Cluster: each script's keys share one hash
// tag, so none may fail with CROSSSLOT, and the breakers spread over every
// node.
func TestClusterRunsEveryScript(t *testing.T) {
	c := storetest.StartCluster(t, 3)
	st := storetest.OpenURL(t, c.URL(), 0)
	s := breaker.NewService(st)
	ctx := context.Background()

	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
	names := make([]string, 2000)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range names {
		n := 1 + r.IntN(40)
		var b strings.Builder
		b.WriteByte(alphabet[r.IntN(62)])
		for range n {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		names[i] = fmt.Sprintf("%s-%d", b.String(), i)
	}
	cfg := breaker.DefaultConfig()
	cfg.MinimumCalls = 2
	work := make(chan string)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for range 8 {
		wg.Go(func() {
			for name := range work {
				steps := []func() error{
					func() error { _, _, err := s.Put(ctx, name, cfg); return err },
					func() error { _, err := s.Acquire(ctx, name); return err },
					func() error {
						_, err := s.Report(ctx, name, []breaker.Outcome{{Success: false, Count: 2, Generation: -1}})
						return err
					},
					func() error {
						_, err := s.Force(ctx, name, breaker.ForceRequest{State: breaker.StateForcedOpen, Reason: "r"})
						return err
					},
					func() error { _, err := s.Get(ctx, name); return err },
					func() error { _, err := s.Unforce(ctx, name); return err },
					func() error { _, err := s.Reset(ctx, name); return err },
					func() error { _, _, err := s.AcquireOnce(ctx, name, "k:"+name); return err },
					func() error {
						_, _, err := s.ReportOnce(ctx, name, "k:"+name, []breaker.Outcome{{Success: true, Count: 1, Generation: -1}})
						return err
					},
					func() error {
						_, replayed, err := s.ReportOnce(ctx, name, "k:"+name, []breaker.Outcome{{Success: true, Count: 1, Generation: -1}})
						if err == nil && !replayed {
							return fmt.Errorf("repeated report with key was applied again")
						}
						return err
					},
				}
				for i, step := range steps {
					if err := step(); err != nil {
						if failures.Add(1) < 5 {
							t.Errorf("breaker %q step %d: %v", name, i, err)
						}
					}
				}
			}
		})
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d script runs failed on the cluster", n)
	}
	all, err := s.List(ctx)
	if err != nil || len(all) != len(names) {
		t.Fatalf("List = %d breakers, %v; want %d", len(all), err, len(names))
	}
	for _, node := range c.Nodes {
		if size := node.Do("DBSIZE"); size == ":0" || size == "" {
			t.Errorf("node %s holds no keys (DBSIZE %q): breakers did not spread", node.Addr, size)
		}
	}
	for _, n := range names[:200] {
		if err := s.Delete(ctx, n); err != nil {
			t.Fatalf("Delete(%q) = %v", n, err)
		}
	}
}

// TestSentinelFailover kills the primary under load and measures how long
// until writes succeed again through the sentinels, and what was lost.
//
// Redis replicates asynchronously: a write the primary acknowledged and
// had not yet sent to its replica dies with it. The test accounts for that
// explicitly instead of hoping the replica keeps up: the breaker's config
// is on the replica before the load starts, and every outcome acknowledged
// before a replication checkpoint taken just before the kill must survive;
// only those acknowledged after the checkpoint may be lost. The kill goes
// to whichever server is the primary then, should the sentinels have
// failed over on their own on a starved machine.
func TestSentinelFailover(t *testing.T) {
	sn := storetest.StartSentinel(t)
	st := storetest.OpenURL(t, sn.URL(), 500*time.Millisecond)
	s := breaker.NewService(st)
	ctx := context.Background()
	cfg := breaker.DefaultConfig()
	cfg.MinimumCalls = 1_000_000 // counts only, never trips
	cfg.Window.Size = breaker.MaxTimeWindow
	if _, _, err := s.Put(ctx, "pay", cfg); err != nil {
		t.Fatal(err)
	}
	sn.WaitReplicated(t, 20*time.Second)

	var acked atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	killed := make(chan time.Time, 1)
	recovered := make(chan time.Time, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		var killedAt time.Time
		for {
			select {
			case <-stop:
				return
			case killedAt = <-killed:
			default:
			}
			_, err := s.Report(ctx, "pay", []breaker.Outcome{{Success: true, Count: 1, Generation: -1}})
			if err == nil {
				acked.Add(1)
				if !killedAt.IsZero() {
					recovered <- time.Now()
					killedAt = time.Time{}
				}
			} else {
				lastErr.Store(err.Error())
				if !errors.Is(err, store.ErrUnavailable) {
					t.Errorf("error during failover is not ErrUnavailable: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	time.Sleep(300 * time.Millisecond)
	// The checkpoint: everything acknowledged by now is on the replica
	// once WaitReplicated returns.
	safe := acked.Load()
	took := sn.WaitReplicated(t, 20*time.Second)
	victim := sn.CurrentMaster(t)
	if victim != sn.Primary {
		t.Logf("the sentinels failed over before the kill; killing the new primary %s", victim.Addr)
	}
	victim.Stop() // its port stays held: no other redis-server can come up there
	start := time.Now()
	before := acked.Load()
	killed <- start
	t.Logf("%d outcomes acknowledged when the replica caught up (in %v), %d when the primary was killed", safe, took.Round(time.Millisecond), before)
	select {
	case at := <-recovered:
		t.Logf("writes back %v after the primary was killed (last error meanwhile: %v)", at.Sub(start).Round(10*time.Millisecond), lastErr.Load())
	case <-time.After(30 * time.Second):
		close(stop)
		wg.Wait()
		t.Fatalf("writes not back within 30s of killing the primary (last error: %v)", lastErr.Load())
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	// Read with a generous deadline: the check is about what survived,
	// not how fast the new primary answers.
	b, err := breaker.NewService(storetest.OpenURL(t, sn.URL(), 0)).Get(ctx, "pay")
	if err != nil {
		t.Fatalf("Get after failover: %v", err)
	}
	lost := acked.Load() - b.Stats.Calls
	t.Logf("acknowledged %d outcomes (%d before the kill), the new primary holds %d: %d lost", acked.Load(), before, b.Stats.Calls, lost)
	if b.Stats.Calls < safe {
		t.Errorf("the new primary holds %d calls; %d were acknowledged and on the replica before the kill", b.Stats.Calls, safe)
	}
}
