package client

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/events"
	"github.com/breakwater-dev/breakwater/internal/fault"
	"github.com/breakwater-dev/breakwater/internal/httpapi"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// plane is a real control plane, the HTTP API over a real redis-server,
// served by httptest, counting the requests it gets.
type plane struct {
	t        *testing.T
	srv      *httptest.Server
	api      *httpapi.API
	URL      string
	requests atomic.Int64
	killOnce sync.Once

	mu      sync.Mutex
	byRoute map[string]int // "METHOD /v1/..." → requests
}

// startPlane serves a control plane over the redis-server r until the
// test ends.
func startPlane(t *testing.T, r *storetest.Redis) *plane {
	t.Helper()
	st := r.Open(t)
	p := &plane{t: t, byRoute: map[string]int{}}
	p.api = httpapi.New(httpapi.Options{
		Breakers:     breaker.NewService(st),
		Limits:       ratelimit.NewService(st),
		Faults:       fault.NewService(st),
		Store:        st,
		Events:       events.NewService(st),
		Heartbeat:    time.Second,
		ClientsEvery: 50 * time.Millisecond,
	})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		p.mu.Lock()
		p.byRoute[r.Method+" "+r.URL.Path]++
		p.mu.Unlock()
		p.api.ServeHTTP(w, r)
	}))
	p.URL = p.srv.URL
	t.Cleanup(p.kill)
	return p
}

// kill ends the control plane: its event streams, its connections and its
// listener. Later requests are refused.
func (p *plane) kill() {
	p.killOnce.Do(func() {
		p.api.Close()
		p.srv.CloseClientConnections()
		p.srv.Close()
		// No other test's server may take the port while this plane is dead.
		storetest.HoldPort(p.t, strings.TrimPrefix(p.URL, "http://"))
	})
}

// routes returns a copy of the request counts by route.
func (p *plane) routes() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.byRoute))
	for k, v := range p.byRoute {
		out[k] = v
	}
	return out
}

// do sends an operator's request and decodes a JSON answer into out (if
// not nil), failing the test unless the status is one of want.
func (p *plane) do(method, path string, body, out any, want ...int) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			p.t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.URL+path, rd)
	if err != nil {
		p.t.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	ok := len(want) == 0 && resp.StatusCode < 300
	for _, w := range want {
		ok = ok || resp.StatusCode == w
	}
	if !ok {
		p.t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// putBreaker creates or replaces a breaker with cfg.
func (p *plane) putBreaker(name string, cfg map[string]any) {
	p.t.Helper()
	p.do(http.MethodPut, "/v1/breakers/"+name, cfg, nil, http.StatusOK, http.StatusCreated)
}

// breakerView is what GET /v1/breakers/{name} says, in part.
type testBreakerView struct {
	State      string `json:"state"`
	Generation int64  `json:"generation"`
	Stats      struct {
		Calls     int64 `json:"calls"`
		Failures  int64 `json:"failures"`
		SlowCalls int64 `json:"slow_calls"`
		Retries   int64 `json:"retries"`
	} `json:"stats"`
}

func (p *plane) getBreaker(name string) testBreakerView {
	p.t.Helper()
	var v testBreakerView
	p.do(http.MethodGet, "/v1/breakers/"+name, nil, &v)
	return v
}

// newTestClient returns a client of the endpoints, closed when the test
// ends.
func newTestClient(t *testing.T, cfg Config, endpoints ...string) *Client {
	t.Helper()
	cfg.Endpoints = endpoints
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}
