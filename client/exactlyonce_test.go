package client

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestLostReplyAppliedOnce loses the reply to an outcomes report that the
// control plane applied: the SDK sends it again, to the other replica,
// with the same Idempotency-Key, and the calls count once.
func TestLostReplyAppliedOnce(t *testing.T) {
	r := storetest.StartRedis(t)
	p1, p2 := startPlane(t, r), startPlane(t, r)
	p1.putBreaker("ledger", map[string]any{"window": map[string]any{"type": "count", "size": 1000}, "minimum_calls": 1000})
	u, _ := url.Parse(p1.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	var dropped atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/outcomes") && dropped.Add(1) == 1 {
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r) // applied by p1
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close() // and the reply lost
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()
	c, err := New(Config{Endpoints: []string{front.URL, p2.URL}, DisableEvents: true, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b := c.Breaker("ledger")
	calls(t, b, 10, fail)
	waitFor(t, 2*time.Second, "config known", func() bool { return b.cfg.Load() != nil })
	c.cp.next.Store(0)
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if got := p2.getBreaker("ledger").Stats.Calls; got != 10 {
		t.Errorf("calls counted after a lost reply and a retry = %d, want 10", got)
	}
}
