package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// margin is what docs/guarantees.md (R2) allows past --store-timeout.
const margin = 50 * time.Millisecond

var oneScript = store.NewScript("one", "return 1")

// frozenStore opens a store with timeout on a redis-server that has
// answered once (scripts loaded, connections open) and is then frozen
// (SIGSTOP) until the test ends.
func frozenStore(t *testing.T, timeout time.Duration) *store.Store {
	t.Helper()
	r := storetest.StartRedis(t)
	st := storetest.OpenURL(t, r.URL(), timeout)
	storetest.WaitReady(t, st, 10*time.Second)
	if _, err := st.Run(context.Background(), oneScript, nil); err != nil {
		t.Fatal(err)
	}
	r.Freeze()
	t.Cleanup(r.Thaw)
	return st
}

// TestRunsWithRedisFrozenReturnByTheirDeadline: with Redis hung and the
// store's pipeline full (more concurrent script runs than its queue and
// senders hold), runs that arrive then return ErrUnavailable within the
// store timeout (plus R2's margin), measured from their own start: the wait
// for room in the queue counts against a run's deadline, it does not come
// before it.
func TestRunsWithRedisFrozenReturnByTheirDeadline(t *testing.T) {
	const timeout = time.Second
	st := frozenStore(t, timeout)
	fill := store.PipelineRoom(st) + 100
	const probes = 50
	// The race detector allows 8128 live goroutines.
	if fill+probes > 8000 {
		t.Fatalf("pipeline room %d: too many goroutines to fill it", store.PipelineRoom(st))
	}
	var fillers, started sync.WaitGroup
	started.Add(fill)
	for range fill {
		fillers.Go(func() {
			started.Done()
			st.Run(context.Background(), oneScript, nil)
		})
	}
	started.Wait()
	// The fillers' deadlines all pass in one instant, about a timeout from
	// now: thousands of goroutines woken together measure the machine's
	// scheduler, not the store, so the probes start well apart from them,
	// half a timeout later, when the queue has long been full.
	time.Sleep(timeout / 2)
	took := make([]time.Duration, probes)
	errs := make([]error, probes)
	var wg sync.WaitGroup
	for i := range probes {
		wg.Go(func() {
			start := time.Now()
			_, errs[i] = st.Run(context.Background(), oneScript, nil)
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	fillers.Wait()
	for i := range probes {
		if !errors.Is(errs[i], store.ErrUnavailable) {
			t.Errorf("Run with Redis frozen = %v, want ErrUnavailable", errs[i])
		}
		if took[i] > timeout+margin {
			t.Errorf("Run with Redis frozen and the pipeline full returned after %v, want within the store timeout %v + %v", took[i], timeout, margin)
		}
	}
}

// TestStoreCallsKeepTheCallersDeadline: a call whose context ends before the
// store timeout returns by the context's deadline, whatever the command: a
// request that made one store call already has less than a timeout left
// for the next.
func TestStoreCallsKeepTheCallersDeadline(t *testing.T) {
	const timeout, left = 2 * time.Second, 150 * time.Millisecond
	st := frozenStore(t, timeout)
	calls := []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"Run", func(ctx context.Context) error { _, err := st.Run(ctx, oneScript, nil); return err }},
		{"SetMembers", func(ctx context.Context) error { _, err := st.SetMembers(ctx, "s"); return err }},
		{"AddToSet", func(ctx context.Context) error { return st.AddToSet(ctx, "s", "a") }},
		{"Append", func(ctx context.Context) error {
			_, err := st.Append(ctx, "log", 10, map[string]string{"k": "v"})
			return err
		}},
		{"Newest", func(ctx context.Context) error { _, err := st.Newest(ctx, "log", 10, ""); return err }},
	}
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), left)
		start := time.Now()
		err := c.do(ctx)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis frozen = %v, want ErrUnavailable", c.name, err)
		}
		if took > left+margin {
			t.Errorf("%s with Redis frozen and %v left returned after %v, want within %v", c.name, left, took, left+margin)
		}
	}
}
