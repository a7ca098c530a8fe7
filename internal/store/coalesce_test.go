package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// The test scripts: add a request's argument to a counter and answer the
// counter's value after it, one request at a time (add), or in one run
// for all requests (adds).
var testLua = fstest.MapFS{
	"add.lua": {Data: []byte(`return {redis.call('INCRBY', KEYS[1], ARGV[1])}`)},
	"adds.lua": {Data: []byte(`
local replies = each_request(function(first, last)
  return {redis.call('INCRBY', KEYS[1], ARGV[first])}
end)
return replies`)},
}

var (
	addScript  = store.LoadScript(testLua, "test", "add")
	addsScript = store.LoadCoalesced(testLua, "test", "adds")
)

// openStore opens a store on r with a call timeout and a coalescing
// window.
func openStore(t *testing.T, r *storetest.Redis, timeout, window time.Duration) *store.Store {
	t.Helper()
	if timeout == 0 {
		timeout = storetest.Timeout
	}
	st, err := store.Open(store.Config{URL: r.URL(), Timeout: timeout, CoalesceWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	storetest.WaitReady(t, st, 10*time.Second)
	return st
}

func counter(t *testing.T, r *storetest.Redis, key string) string {
	t.Helper()
	return r.Bulk("GET", key)
}

func req(n int, key, hash string) store.Request {
	r := store.Request{Args: []any{n}}
	if key != "" {
		r.Once = store.Once{Key: "{c}:i." + key, Hash: hash}
	}
	return r
}

// TestRunEachAnswersEachRequest: one run applies its requests one after
// the other, each answered with its own reply; a key seen before (in an
// earlier run, or earlier in the same run) replays its first reply and
// applies nothing; a key reused with another request fails that request
// alone.
func TestRunEachAnswersEachRequest(t *testing.T) {
	r := storetest.StartRedis(t)
	st := openStore(t, r, 0, 0)
	ctx := context.Background()
	keys := []string{"{c}:n"}

	first, err := st.RunEach(ctx, addsScript, keys, nil, []store.Request{req(1, "a", "h1")})
	if err != nil {
		t.Fatal(err)
	}
	replies, err := st.RunEach(ctx, addsScript, keys, nil, []store.Request{
		req(10, "", ""),      // no key: applied
		req(1, "a", "h1"),    // a repeat of the first run's: replayed
		req(100, "b", "h2"),  // a new key: applied
		req(100, "b", "h2"),  // the same again, in the same run: replayed
		req(7, "b", "other"), // the key with another request: refused
		req(1000, "c", "h3"), // the refusal failed no other request
	})
	if err != nil {
		t.Fatal(err)
	}
	got := append(first, replies...)
	want := []store.Reply{
		{Val: []any{int64(1)}},
		{Val: []any{int64(11)}},
		{Val: []any{"1"}, Replayed: true},
		{Val: []any{int64(111)}},
		{Val: []any{"111"}, Replayed: true},
		{Err: store.ErrKeyReused},
		{Val: []any{int64(1111)}},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b error) bool { return errors.Is(a, b) })); diff != "" {
		t.Errorf("RunEach replies (-want +got):\n%s", diff)
	}
	if n := counter(t, r, "{c}:n"); n != "1111" {
		t.Errorf("counter = %s, want 1111: each request applied once", n)
	}
}

// TestRunEachReplaysRunOnceRecords: a record written by RunOnce (a control
// plane of the version before coalescing) is replayed by a coalesced run,
// and the reverse, so that keys stay safe across a rolling upgrade.
func TestRunEachReplaysRunOnceRecords(t *testing.T) {
	r := storetest.StartRedis(t)
	st := openStore(t, r, 0, 0)
	ctx := context.Background()
	keys := []string{"{c}:n"}
	rq := req(5, "old", "h")
	if _, _, err := st.RunOnce(ctx, addScript, keys, rq.Once, 5); err != nil {
		t.Fatal(err)
	}
	replies, err := st.RunEach(ctx, addsScript, keys, nil, []store.Request{rq, req(6, "new", "h")})
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.Reply{{Val: []any{"5"}, Replayed: true}, {Val: []any{int64(11)}}}; !cmp.Equal(replies, want) {
		t.Errorf("RunEach after RunOnce = %v, want %v", replies, want)
	}
	v, replayed, err := st.RunOnce(ctx, addScript, keys, req(6, "new", "h").Once, 6)
	if err != nil || !replayed || !cmp.Equal(v, []any{"11"}) {
		t.Errorf("RunOnce after RunEach = %v, %v, %v; want [11], replayed", v, replayed, err)
	}
	if n := counter(t, r, "{c}:n"); n != "11" {
		t.Errorf("counter = %s, want 11", n)
	}
}

// waitQueued waits until n requests wait in the queue of the object whose
// first key is key.
func waitQueued(t *testing.T, st *store.Store, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for store.Queued(st, addsScript, key) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued after 10s, want %d", store.Queued(st, addsScript, key), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRequestsWhileARunIsInFlightGoTogether: requests that arrive while a
// run of their object is in flight wait for it and then go as one run,
// each answered with its own reply, in the order they arrived.
func TestRequestsWhileARunIsInFlightGoTogether(t *testing.T) {
	r := storetest.StartRedis(t)
	st := openStore(t, r, 0, -1) // no window: only the run in flight holds them
	ctx := context.Background()
	keys := []string{"{c}:n"}
	if _, _, err := st.RunCoalesced(ctx, addsScript, keys, nil, req(0, "", "")); err != nil {
		t.Fatal(err) // the script loaded, a connection open
	}
	r.Freeze()
	t.Cleanup(r.Thaw) // a second thaw does nothing
	first := st.Submit(ctx, addsScript, keys, nil, req(1, "", ""))
	// The first run is in flight (Redis is frozen): the next requests queue.
	waitQueued(t, st, "{c}:n", 0)
	const n = 20
	rest := make([]*store.Pending, n)
	for i := range rest {
		rest[i] = st.Submit(ctx, addsScript, keys, nil, req(2, "", ""))
	}
	waitQueued(t, st, "{c}:n", n)
	r.Thaw()
	if v, _, err := first.Wait(ctx); err != nil || !cmp.Equal(v, []any{int64(1)}) {
		t.Fatalf("first request = %v, %v; want [1]", v, err)
	}
	for i, p := range rest {
		v, _, err := p.Wait(ctx)
		if want := []any{int64(1 + 2*(i+1))}; err != nil || !cmp.Equal(v, want) {
			t.Errorf("request %d = %v, %v; want %v", i+1, v, err, want)
		}
	}
	// One run for the first, one for the 20 that waited (and the warm-up).
	if got, want := st.Coalesced(addsScript), (store.CoalesceStats{Runs: 3, Requests: n + 2}); got != want {
		t.Errorf("Coalesced = %+v, want %+v", got, want)
	}
}

// TestCoalescingWindow: a request to an idle object goes at once, however
// long the window, and so does one after a run that carried it alone (one
// caller reporting call after call is never held back); once requests have
// met in a run, one within the window after it waits for the window's end,
// unless a full run has gathered, which goes at once.
func TestCoalescingWindow(t *testing.T) {
	r := storetest.StartRedis(t)
	// A window of an hour: a request that waited for it would meet its
	// deadline of 2s instead of answering.
	st := openStore(t, r, 2*time.Second, time.Hour)
	ctx := context.Background()
	keys := []string{"{c}:n"}
	if v, _, err := st.RunCoalesced(ctx, addsScript, keys, nil, req(1, "", "")); err != nil || !cmp.Equal(v, []any{int64(1)}) {
		t.Fatalf("a request to an idle object = %v, %v; want [1] at once", v, err)
	}
	if _, _, err := st.RunCoalesced(ctx, addsScript, []string{"{d}:n"}, nil, req(1, "", "")); err != nil {
		t.Errorf("a request to another idle object = %v, want it applied at once", err)
	}
	// One caller, one request after another: each run carried one, so
	// none waits for the window.
	for i := range 5 {
		if _, _, err := st.RunCoalesced(ctx, addsScript, keys, nil, req(1, "", "")); err != nil {
			t.Fatalf("request %d of one caller, one after another = %v, want it applied at once", i, err)
		}
	}

	// Two requests meet: they queue behind a run in flight (Redis frozen)
	// and go together as the next run.
	r.Freeze()
	t.Cleanup(r.Thaw) // a second thaw does nothing
	first := st.Submit(ctx, addsScript, keys, nil, req(1, "", ""))
	waitQueued(t, st, "{c}:n", 0)
	met := []*store.Pending{st.Submit(ctx, addsScript, keys, nil, req(1, "", "")), st.Submit(ctx, addsScript, keys, nil, req(1, "", ""))}
	waitQueued(t, st, "{c}:n", 2)
	r.Thaw()
	for i, p := range append([]*store.Pending{first}, met...) {
		if _, _, err := p.Wait(ctx); err != nil {
			t.Fatalf("request %d around a run in flight = %v, want it applied", i, err)
		}
	}

	// Within the window after that run of two, a lone request waits: here
	// past its deadline, so it is not applied, and says so.
	_, _, err := st.RunCoalesced(ctx, addsScript, keys, nil, req(1000, "", ""))
	if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrMaybeApplied) {
		t.Errorf("a request within the window after a run of several, past its deadline = %v, want ErrUnavailable, not ErrMaybeApplied", err)
	}

	// A full run goes at once, window or not.
	full := make([]*store.Pending, store.MaxRunRequests)
	for i := range full {
		full[i] = st.Submit(ctx, addsScript, keys, nil, req(1, "", ""))
	}
	for i, p := range full {
		if _, _, err := p.Wait(ctx); err != nil {
			t.Fatalf("request %d of a full run = %v, want it applied at once", i, err)
		}
	}
	if n, want := counter(t, r, "{c}:n"), "73"; n != want {
		t.Errorf("counter = %s, want %s (1, 5 one after another, 3 around a run in flight, a full run of 64, and not the request that waited)", n, want)
	}
}

// TestCoalescedDeadlines: a request whose deadline passes while it waits
// behind a run in flight is not applied and says so (not ErrMaybeApplied);
// one whose run was sent says it may have been applied.
func TestCoalescedDeadlines(t *testing.T) {
	r := storetest.StartRedis(t)
	st := openStore(t, r, 0, -1)
	keys := []string{"{c}:n"}
	bg := context.Background()
	if _, _, err := st.RunCoalesced(bg, addsScript, keys, nil, req(0, "", "")); err != nil {
		t.Fatal(err)
	}
	r.Freeze()
	t.Cleanup(r.Thaw) // a second thaw does nothing
	// The first run: in flight, its caller waits up to 10s.
	first := st.Submit(bg, addsScript, keys, nil, req(1, "", ""))
	waitQueued(t, st, "{c}:n", 0)
	// Behind it, two requests whose callers wait 200ms.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, n := range []int{10, 100} {
		ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
		defer cancel()
		p := st.Submit(ctx, addsScript, keys, nil, req(n, "", ""))
		wg.Go(func() { _, _, errs[i] = p.Wait(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrMaybeApplied) {
			t.Errorf("queued request %d past its deadline = %v, want ErrUnavailable, not ErrMaybeApplied", i, err)
		}
	}
	// The first run's caller stops waiting: its run was sent.
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	if _, _, err := first.Wait(ctx); !errors.Is(err, store.ErrMaybeApplied) {
		t.Errorf("a request in a run in flight past its caller's deadline = %v, want ErrMaybeApplied", err)
	}
	r.Thaw()
	// The first run answers now, and the requests that left the queue
	// never run.
	if _, _, err := st.RunCoalesced(bg, addsScript, keys, nil, req(0, "", "")); err != nil {
		t.Fatal(err)
	}
	if n := counter(t, r, "{c}:n"); n != "1" {
		t.Errorf("counter = %s, want 1: the run in flight applied, the requests that left the queue not", n)
	}
}
