package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// outcomesRequests counts the outcomes reports in a plane's routes: the
// batch report and any per-breaker one.
func outcomesRequests(routes map[string]int) int {
	n := 0
	for route, count := range routes {
		if strings.HasPrefix(route, "POST ") && strings.HasSuffix(route, "/outcomes") {
			n += count
		}
	}
	return n
}

// TestOneReportPerFlush: a client whose calls go to 100 breakers at once
// sends one outcomes report per flush interval for all of them, and the
// control plane counts every call.
func TestOneReportPerFlush(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	const breakers = 100
	names := make([]string, breakers)
	for i := range names {
		names[i] = fmt.Sprintf("dep-%03d", i)
		p.putBreaker(names[i], map[string]any{"cache_ttl_ms": 60000}) // a time window of 10 s holds every call
	}
	const interval = 100 * time.Millisecond
	c := newTestClient(t, Config{FlushInterval: interval, DisableEvents: true}, p.URL)
	bs := make([]*Breaker, breakers)
	for i, n := range names {
		bs[i] = c.Breaker(n)
		if err := bs[i].Do(context.Background(), succeed); err != nil { // learn each one's state
			t.Fatalf("Do(%s) = %v", n, err)
		}
	}
	time.Sleep(2 * interval) // the first calls' reports go out

	before := outcomesRequests(p.routes())
	start := time.Now()
	var made atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; time.Since(start) < 10*interval; i++ {
				if err := bs[(i+w*25)%breakers].Do(context.Background(), succeed); err != nil {
					t.Errorf("Do() = %v", err)
					return
				}
				made.Add(1)
				if i%breakers == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	sent := outcomesRequests(p.routes()) - before
	// One report per flush interval, and one more for a tick that fell
	// within the window at either end.
	if limit := int(elapsed/interval) + 2; sent > limit {
		t.Errorf("%d calls to %d breakers over %v sent %d outcomes reports, want at most %d: one per %v flush", made.Load(), breakers, elapsed.Round(time.Millisecond), sent, limit, interval)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	var counted int64
	for _, n := range names {
		counted += p.getBreaker(n).Stats.Calls
	}
	if want := made.Load() + breakers; counted != want {
		t.Errorf("control plane counted %d calls, want %d", counted, want)
	}
	t.Logf("%d calls to %d breakers in %v: %d outcomes reports", made.Load(), breakers, elapsed.Round(time.Millisecond), sent)
}

// TestReportsPerBreakerToAnOlderControlPlane: a control plane that has no
// batch report (404 to POST /v1/outcomes) gets each breaker's report on its
// own, and counts every call.
func TestReportsPerBreakerToAnOlderControlPlane(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	names := []string{"a", "b", "c"}
	for _, n := range names {
		p.putBreaker(n, nil)
	}
	target, _ := url.Parse(p.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	older := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/outcomes" {
			writeJSON(w, http.StatusNotFound, map[string]any{"status": 404, "detail": "no such route: /v1/outcomes"})
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer older.Close()
	c := newTestClient(t, Config{DisableEvents: true}, older.URL)
	for _, n := range names {
		calls(t, c.Breaker(n), 5, succeed)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	for _, n := range names {
		if got := p.getBreaker(n).Stats.Calls; got != 5 {
			t.Errorf("breaker %s counted %d calls, want 5", n, got)
		}
		if got := p.routes()["POST /v1/breakers/"+n+"/outcomes"]; got == 0 {
			t.Errorf("no POST /v1/breakers/%s/outcomes: want the report per breaker", n)
		}
	}
}

// TestBatchReportsAnsweredUnavailableAreSentAgain: a batch answered 200
// with a 503 for each report (the store timed out on them) is neither
// applied nor lost: the client sends it again under the same key, and the
// control plane counts every call once.
func TestBatchReportsAnsweredUnavailableAreSentAgain(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	names := []string{"a", "b"}
	for _, n := range names {
		p.putBreaker(n, nil)
	}
	target, _ := url.Parse(p.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var (
		mu   sync.Mutex
		keys []string
	)
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/outcomes" {
			mu.Lock()
			keys = append(keys, r.Header.Get("Idempotency-Key"))
			first := len(keys) == 1
			mu.Unlock()
			if first {
				results := make([]map[string]any, len(names))
				for i, n := range names {
					results[i] = map[string]any{"breaker": n, "error": map[string]any{"status": 503, "title": "Service Unavailable", "detail": "the store is unavailable"}}
				}
				writeJSON(w, http.StatusOK, map[string]any{"results": results})
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	defer flaky.Close()
	c := newTestClient(t, Config{DisableEvents: true}, flaky.URL)
	for _, n := range names {
		calls(t, c.Breaker(n), 5, succeed)
	}
	if err := c.Close(); err != nil {
		t.Logf("Close() = %v", err)
	}
	for _, n := range names {
		if got := p.getBreaker(n).Stats.Calls; got != 5 {
			t.Errorf("breaker %s counted %d calls, want 5", n, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) < 2 || keys[0] == "" || keys[1] != keys[0] {
		t.Errorf("batch reports sent with keys %q, want the first sent again under the same key", keys)
	}
}

// TestSuccessesWaitFailuresDoNot: outcomes that are all successes wait up
// to SuccessFlushInterval to be reported, a failure goes out at the end of
// its flush interval, and Close reports what waited: the control plane
// counts every call.
func TestSuccessesWaitFailuresDoNot(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	for _, n := range []string{"ok", "bad"} {
		p.putBreaker(n, map[string]any{"cache_ttl_ms": 60000, "minimum_calls": 1000})
	}
	const interval = 20 * time.Millisecond
	c := newTestClient(t, Config{FlushInterval: interval, SuccessFlushInterval: time.Hour, DisableEvents: true}, p.URL)
	ok, bad := c.Breaker("ok"), c.Breaker("bad")
	before := outcomesRequests(p.routes())
	// Successes only, for 20 flush intervals: none is reported.
	for range 20 {
		for range 10 {
			if err := ok.Do(context.Background(), succeed); err != nil {
				t.Fatalf("Do(ok) = %v", err)
			}
		}
		time.Sleep(interval)
	}
	if sent := outcomesRequests(p.routes()) - before; sent != 0 {
		t.Errorf("200 successes over 20 flush intervals sent %d outcomes reports, want 0 (SuccessFlushInterval is an hour)", sent)
	}
	// A failure goes out at the end of its interval, without the
	// successes of the other breaker.
	fail := func(context.Context) error { return fmt.Errorf("boom") }
	if err := bad.Do(context.Background(), fail); err == nil {
		t.Fatal("Do(bad) = nil, want its error")
	}
	waitFor(t, 10*time.Second, "the failure reported", func() bool { return p.getBreaker("bad").Stats.Calls == 1 })
	if n := p.getBreaker("ok").Stats.Calls; n != 0 {
		t.Errorf("ok counted %d calls after a failure of bad was reported, want 0: its successes wait", n)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if n := p.getBreaker("ok").Stats.Calls; n != 200 {
		t.Errorf("ok counted %d calls after Close, want 200", n)
	}
}

// TestSuccessesReportedEverySuccessFlushInterval: with the default
// SuccessFlushInterval (4 flush intervals), a client whose calls all
// succeed sends about one report per four intervals, not one per
// interval.
func TestSuccessesReportedEverySuccessFlushInterval(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("ok", map[string]any{"cache_ttl_ms": 60000})
	const interval = 50 * time.Millisecond
	c := newTestClient(t, Config{FlushInterval: interval, DisableEvents: true}, p.URL)
	ok := c.Breaker("ok")
	if err := ok.Do(context.Background(), succeed); err != nil {
		t.Fatalf("Do(ok) = %v", err)
	}
	before := outcomesRequests(p.routes())
	start := time.Now()
	made := 1
	for time.Since(start) < 40*interval {
		if err := ok.Do(context.Background(), succeed); err != nil {
			t.Fatalf("Do(ok) = %v", err)
		}
		made++
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	sent := outcomesRequests(p.routes()) - before
	// One report per four intervals, and one more for a flush that fell
	// within the window at either end.
	if limit := int(elapsed/(4*interval)) + 2; sent > limit {
		t.Errorf("successes only over %v sent %d outcomes reports, want at most %d: one per %v", elapsed.Round(time.Millisecond), sent, limit, 4*interval)
	}
	t.Logf("successes only over %v (flush interval %v): %d outcomes reports", elapsed.Round(time.Millisecond), interval, sent)
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if n := p.getBreaker("ok").Stats.Calls; n != int64(made) {
		t.Errorf("ok counted %d calls, want %d", n, made)
	}
}

// TestSlowSuccessIsNotHeld: a slow call is a failure signal to a breaker
// (slow_call_rate_threshold), so a success that was slow goes out at the
// end of its flush interval, as a failure does.
func TestSlowSuccessIsNotHeld(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("slow", map[string]any{"cache_ttl_ms": 60000, "minimum_calls": 1000, "slow_call_duration_ms": 5})
	const interval = 20 * time.Millisecond
	c := newTestClient(t, Config{FlushInterval: interval, SuccessFlushInterval: time.Hour, DisableEvents: true}, p.URL)
	b := c.Breaker("slow")
	if err := b.Do(context.Background(), succeed); err != nil {
		t.Fatalf("Do(slow) = %v", err)
	}
	// The breaker's config, read in the background.
	waitFor(t, 10*time.Second, "the client learns slow_call_duration_ms", func() bool { return b.slowNS.Load() != 0 })
	if err := b.Do(context.Background(), func(context.Context) error { time.Sleep(20 * time.Millisecond); return nil }); err != nil {
		t.Fatalf("Do(slow) = %v", err)
	}
	waitFor(t, 10*time.Second, "the slow success reported", func() bool { return p.getBreaker("slow").Stats.SlowCalls == 1 })
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if n := p.getBreaker("slow").Stats.Calls; n != 2 {
		t.Errorf("slow counted %d calls after Close, want 2", n)
	}
}

// TestRetryIsNotHeld: a retry is spent from the fleet's retry budget,
// which every report's answer lends out again, so a success that was a
// retry goes out at the end of its flush interval, as a failure does.
func TestRetryIsNotHeld(t *testing.T) {
	r := storetest.StartRedis(t)
	p := startPlane(t, r)
	p.putBreaker("retried", map[string]any{"cache_ttl_ms": 60000, "minimum_calls": 1000})
	const interval = 20 * time.Millisecond
	c := newTestClient(t, Config{FlushInterval: interval, SuccessFlushInterval: time.Hour, DisableEvents: true}, p.URL)
	b := c.Breaker("retried")
	if err := b.Do(context.Background(), succeed); err != nil { // learn its state
		t.Fatalf("Do(retried) = %v", err)
	}
	if err := b.RecordRetries(true, time.Millisecond, 1, 1); err != nil {
		t.Fatalf("RecordRetries = %v", err)
	}
	waitFor(t, 10*time.Second, "the retry reported", func() bool { return p.getBreaker("retried").Stats.Calls == 2 })
}
