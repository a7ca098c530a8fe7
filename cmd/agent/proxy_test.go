package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// holdingUpstream answers with a known Content-Length and holds the rest
// of its answer until release is closed (or 10 s pass, which marks
// gaveUp): a caller that has part of the answer while the upstream still
// holds got it because the agent passed it on at once.
type holdingUpstream struct {
	srv     *httptest.Server
	release chan struct{}
	gaveUp  atomic.Bool
}

func newHoldingUpstream(t *testing.T) *holdingUpstream {
	u := &holdingUpstream{release: make(chan struct{})}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fl := w.(http.Flusher)
		switch r.URL.Path {
		case "/parts": // the first part, then the rest when released
			w.Header().Set("Content-Length", "13")
			io.WriteString(w, "first\n")
			fl.Flush()
			u.hold(r)
			io.WriteString(w, "second\n")
		case "/late": // the headers, then the body when released
			w.Header().Set("Content-Length", "4")
			w.WriteHeader(http.StatusOK)
			fl.Flush()
			u.hold(r)
			io.WriteString(w, "late")
		}
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *holdingUpstream) hold(r *http.Request) {
	select {
	case <-u.release:
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
		u.gaveUp.Store(true)
	}
}

// A response of known length reaches the caller as the upstream writes
// it: its first part, and its headers before any of its body, while the
// upstream still holds the rest.
func TestAgentStreamsKnownLengthAnswers(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	cp.do(t, "PUT", "/v1/breakers/up", `{"minimum_calls":1000}`)
	up := newHoldingUpstream(t)
	agent := startAgent(t, "--controlplane", cp.srv.URL, "--route", "up="+up.srv.URL)

	res, err := http.Get(agent + "/up/late")
	if err != nil {
		t.Fatalf("GET /up/late: %v", err)
	}
	if up.gaveUp.Load() {
		t.Errorf("GET /up/late: the headers arrived only after the upstream sent the body, want them at once")
	}
	res2, err := http.Get(agent + "/up/parts")
	if err != nil {
		t.Fatalf("GET /up/parts: %v", err)
	}
	first := make([]byte, len("first\n"))
	if _, err := io.ReadFull(res2.Body, first); err != nil || string(first) != "first\n" {
		t.Fatalf("GET /up/parts: first part = %q, %v", first, err)
	}
	if up.gaveUp.Load() {
		t.Errorf("GET /up/parts: the first part arrived only after the upstream sent the rest, want it at once")
	}
	close(up.release)
	for _, c := range []struct {
		res  *http.Response
		want string
	}{{res, "late"}, {res2, "second\n"}} {
		b, err := io.ReadAll(c.res.Body)
		c.res.Body.Close()
		if err != nil || string(b) != c.want {
			t.Errorf("GET %s: rest of the body = %q, %v; want %q", c.res.Request.URL.Path, b, err, c.want)
		}
	}
}

// The agent keeps its connections to an upstream alive and reuses them:
// rounds of concurrent requests open about as many connections as one
// round has requests, not a new one for most requests of every round.
func TestAgentReusesUpstreamConnections(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	cp.do(t, "PUT", "/v1/breakers/up", `{"minimum_calls":1000}`)
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	agent := startAgent(t, "--controlplane", cp.srv.URL, "--route", "up="+up.URL)

	const inFlight, rounds = 20, 5
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inFlight}}
	defer client.CloseIdleConnections()
	for range rounds {
		var wg sync.WaitGroup
		for range inFlight {
			wg.Go(func() {
				res, err := client.Get(agent + "/up/x")
				if err != nil {
					t.Errorf("GET /up/x: %v", err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Errorf("GET /up/x = %d, want 200", res.StatusCode)
				}
			})
		}
		wg.Wait()
	}
	// A dial may race a connection coming back, so a round can open a
	// few more than it needs; a transport that keeps 2 idle connections
	// opens at least inFlight-2 in each round after the first.
	if n := conns.Load(); n > 2*inFlight {
		t.Errorf("%d rounds of %d requests opened %d connections to the upstream, want at most %d", rounds, inFlight, n, 2*inFlight)
	}
}

// A protocol upgrade goes through the proxy's response writer: the
// caller gets the upstream's 101 and then talks to it both ways.
func TestAgentProxiesUpgrades(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	cp.do(t, "PUT", "/v1/breakers/up", `{"minimum_calls":1000}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		line, _ := brw.ReadString('\n')
		io.WriteString(c, "echo "+line)
	}))
	t.Cleanup(up.Close)
	agent := startAgent(t, "--controlplane", cp.srv.URL, "--route", "up="+up.URL)

	c, err := net.Dial("tcp", strings.TrimPrefix(agent, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /up/ws HTTP/1.1\r\nHost: agent\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade = %d, want 101", res.StatusCode)
	}
	io.WriteString(c, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo ping\n" {
		t.Errorf("after the upgrade, got %q, %v; want %q", line, err, "echo ping\n")
	}
}

// Accept-Encoding reaches the upstream as the caller sent it, or not at
// all: the agent asks for no compression of its own.
func TestAgentPassesAcceptEncodingAsSent(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	cp.do(t, "PUT", "/v1/breakers/up", `{"minimum_calls":1000}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "accept-encoding="+strings.Join(r.Header.Values("Accept-Encoding"), ","))
	}))
	t.Cleanup(up.Close)
	agent := startAgent(t, "--controlplane", cp.srv.URL, "--route", "up="+up.URL)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	for _, sent := range []string{"", "br", "gzip, deflate"} {
		req, _ := http.NewRequest(http.MethodGet, agent+"/up/x", nil)
		if sent != "" {
			req.Header.Set("Accept-Encoding", sent)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET with Accept-Encoding %q: %v", sent, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if got, want := string(b), "accept-encoding="+sent; got != want {
			t.Errorf("GET with Accept-Encoding %q: upstream got %q, want %q", sent, got, want)
		}
	}
}
