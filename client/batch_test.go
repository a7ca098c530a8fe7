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
