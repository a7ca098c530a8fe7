package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// seen is what the upstream saw of one request.
type seen struct {
	Method, RequestURI, Host string
	Header                   http.Header
	Body                     string
	BodyErr                  bool // reading the body failed (it broke off)
}

// recorder is an upstream that records exactly what arrived, and behaves
// by the last segment of the path.
type recorder struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []seen
	flaky   map[string]bool // paths that failed once already
	release chan struct{}   // ends stalls and holds
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{flaky: map[string]bool{}, release: make(chan struct{})}
	rec.srv = httptest.NewServer(http.HandlerFunc(rec.serve))
	t.Cleanup(func() { close(rec.release); rec.srv.CloseClientConnections(); rec.srv.Close() })
	return rec
}

func (rec *recorder) serve(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.got = append(rec.got, seen{r.Method, r.RequestURI, r.Host, r.Header.Clone(), string(b), err != nil})
	first := !rec.flaky[r.URL.Path]
	rec.flaky[r.URL.Path] = true
	rec.mu.Unlock()
	fl := w.(http.Flusher)
	switch {
	case strings.HasSuffix(r.URL.Path, "/flaky-once") && first:
		http.Error(w, "try again", http.StatusServiceUnavailable)
	case strings.HasSuffix(r.URL.Path, "/stalled-503") && first:
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "down")
		fl.Flush()
		rec.hold(r)
	case strings.HasSuffix(r.URL.Path, "/stream"):
		io.WriteString(w, "first\n")
		fl.Flush()
		rec.hold(r) // the rest comes when the test has read the first part
		io.WriteString(w, "second\n")
	default:
		fmt.Fprintf(w, "ok %d bytes", len(b))
	}
}

func (rec *recorder) hold(r *http.Request) {
	select {
	case <-rec.release:
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

// take returns and forgets what arrived so far.
func (rec *recorder) take() []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	got := rec.got
	rec.got = nil
	return got
}

// rawExchange sends raw bytes to addr and reads one response. send may
// write in parts; it gets the connection.
func rawExchange(t *testing.T, addr string, send func(c net.Conn)) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	send(c)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, ""
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

func raw(s string) func(net.Conn) {
	return func(c net.Conn) { io.WriteString(c, strings.ReplaceAll(s, "\n", "\r\n")) }
}

// TestAgentHostileTraffic sends hand-written HTTP/1.1 over raw TCP to a
// real agent in front of a recording upstream, and checks what the caller
// got and exactly what reached the upstream.
func TestAgentHostileTraffic(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	cp.do(t, "PUT", "/v1/breakers/up", `{"minimum_calls":1000}`)
	cp.do(t, "PUT", "/v1/breakers/uploads", `{"minimum_calls":1000}`)
	rec := newRecorder(t)
	base := startAgent(t, "--controlplane", cp.srv.URL, "--route", "up="+rec.srv.URL+"/base",
		"--route", "uploads="+rec.srv.URL+"/in", "--route-timeout", "500ms")
	addr := strings.TrimPrefix(base, "http://")
	upHost := strings.TrimPrefix(rec.srv.URL, "http://")

	one := func(t *testing.T, got []seen) seen {
		t.Helper()
		if len(got) != 1 {
			t.Fatalf("upstream got %d requests, want 1: %+v", len(got), got)
		}
		return got[0]
	}
	none := func(t *testing.T, got []seen) {
		t.Helper()
		if len(got) != 0 {
			t.Errorf("upstream got %+v, want nothing", got)
		}
	}
	dotSegment := func(path string) func(*testing.T, int, string, []seen) {
		return func(t *testing.T, status int, body string, got []seen) {
			if status != http.StatusBadRequest || !strings.Contains(body, "segment") {
				t.Errorf("GET %s = %d %s, want 400 naming the dot-segment", path, status, body)
			}
			none(t, got)
		}
	}
	tests := []struct {
		name  string
		send  func(net.Conn)
		check func(t *testing.T, status int, body string, got []seen)
	}{
		{"escaped slash stays one segment", raw("GET /up/a%2Fb?q=%2F HTTP/1.1\nHost: agent\n\n"),
			func(t *testing.T, status int, body string, got []seen) {
				if s := one(t, got); status != 200 || s.RequestURI != "/base/a%2Fb?q=%2F" {
					t.Errorf("upstream got %q (caller %d), want /base/a%%2Fb?q=%%2F", s.RequestURI, status)
				}
			}},
		{"escapes kept as sent", raw("GET /up/x%20y%3Fz%25/%C3%A9 HTTP/1.1\nHost: agent\n\n"),
			func(t *testing.T, status int, body string, got []seen) {
				if s := one(t, got); s.RequestURI != "/base/x%20y%3Fz%25/%C3%A9" {
					t.Errorf("upstream got %q, want /base/x%%20y%%3Fz%%25/%%C3%%A9", s.RequestURI)
				}
			}},
		{"dot-dot", raw("GET /up/../secret HTTP/1.1\nHost: agent\n\n"), dotSegment("/up/../secret")},
		{"escaped dot-dot", raw("GET /up/%2e%2E/secret HTTP/1.1\nHost: agent\n\n"), dotSegment("/up/%2e%2E/secret")},
		{"half-escaped dot-dot", raw("GET /up/.%2E/secret HTTP/1.1\nHost: agent\n\n"), dotSegment("/up/.%2E/secret")},
		{"dot-dot between escaped slashes", raw("GET /up/a%2F..%2F..%2Fsecret HTTP/1.1\nHost: agent\n\n"), dotSegment("/up/a%2F..%2F..%2Fsecret")},
		{"double-escaped dot-dot", raw("GET /up/%252e%252e/secret HTTP/1.1\nHost: agent\n\n"), dotSegment("/up/%252e%252e/secret")},
		{"backslash dot-dot", raw("GET /up/a%5C..%5Csecret HTTP/1.1\nHost: agent\n\n"), dotSegment("/up/a%5C..%5Csecret")},
		{"dot-dot with a parameter", raw("GET /up/..;/secret HTTP/1.1\nHost: agent\n\n"), dotSegment("/up/..;/secret")},
		{"single dot", raw("GET /up/a/./b HTTP/1.1\nHost: agent\n\n"), dotSegment("/up/a/./b")},
		{"absolute-form target goes to the route's upstream", raw("GET http://evil.example/up/x HTTP/1.1\nHost: evil.example\n\n"),
			func(t *testing.T, status int, body string, got []seen) {
				if s := one(t, got); status != 200 || s.RequestURI != "/base/x" || s.Host != upHost {
					t.Errorf("upstream got %q for host %q (caller %d), want /base/x for %s", s.RequestURI, s.Host, status, upHost)
				}
			}},
		{"CONNECT to a host", raw("CONNECT evil.example:443 HTTP/1.1\nHost: evil.example:443\n\n"),
			func(t *testing.T, status int, body string, got []seen) {
				if status < 400 || status >= 500 {
					t.Errorf("CONNECT = %d, want a 4xx", status)
				}
				none(t, got)
			}},
		{"CONNECT to a route", raw("CONNECT /up/x HTTP/1.1\nHost: agent\n\n"),
			func(t *testing.T, status int, body string, got []seen) {
				if status != http.StatusMethodNotAllowed {
					t.Errorf("CONNECT /up/x = %d, want 405", status)
				}
				none(t, got)
			}},
		{"oversized headers", raw("GET /up/x HTTP/1.1\nHost: agent\nX-Big: " + strings.Repeat("a", 80<<10) + "\n\n"),
			func(t *testing.T, status int, body string, got []seen) {
				if status != http.StatusRequestHeaderFieldsTooLarge {
					t.Errorf("80 KiB of headers = %d, want 431", status)
				}
				none(t, got)
			}},
		{"Host of the caller's choosing", raw("GET /up/h HTTP/1.1\nHost: internal.admin\n\n"),
			func(t *testing.T, status int, body string, got []seen) {
				s := one(t, got)
				if s.Host != upHost || s.Header.Get("X-Forwarded-Host") != "internal.admin" {
					t.Errorf("upstream got Host %q, X-Forwarded-Host %q; want %s and the caller's Host", s.Host, s.Header.Get("X-Forwarded-Host"), upHost)
				}
			}},
		{"two Host headers", raw("GET /up/h HTTP/1.1\nHost: a\nHost: b\n\n"),
			func(t *testing.T, status int, body string, got []seen) {
				if status != http.StatusBadRequest {
					t.Errorf("two Hosts = %d, want 400", status)
				}
				none(t, got)
			}},
		{"hop-by-hop headers, listed and standard", raw("GET /up/hop HTTP/1.1\nHost: agent\nConnection: keep-alive, X-Hop-Secret\nX-Hop-Secret: 1\nKeep-Alive: timeout=5\nProxy-Connection: keep-alive\nTE: gzip\nX-End-To-End: kept\n\n"),
			func(t *testing.T, status int, body string, got []seen) {
				s := one(t, got)
				for _, h := range []string{"X-Hop-Secret", "Keep-Alive", "Proxy-Connection", "Te"} {
					if v := s.Header.Values(h); len(v) > 0 {
						t.Errorf("upstream got hop-by-hop %s: %q", h, v)
					}
				}
				if s.Header.Get("X-End-To-End") != "kept" {
					t.Errorf("upstream lost an end-to-end header: %v", s.Header)
				}
			}},
		{"X-Forwarded-* from the caller are replaced", raw("GET /up/fwd HTTP/1.1\nHost: agent\nX-Forwarded-For: 6.6.6.6\nX-Forwarded-Proto: https\nX-Forwarded-Host: bank.example\nForwarded: for=6.6.6.6;proto=https\n\n"),
			func(t *testing.T, status int, body string, got []seen) {
				s := one(t, got)
				if s.Header.Get("X-Forwarded-For") != "127.0.0.1" || s.Header.Get("X-Forwarded-Proto") != "http" ||
					s.Header.Get("X-Forwarded-Host") != "agent" || s.Header.Get("Forwarded") != "" {
					t.Errorf("upstream got forwarding headers %v, want the agent's own: For 127.0.0.1, Proto http, Host agent, no Forwarded", s.Header)
				}
			}},
		{"PUT with a small body is retried with it", raw("PUT /up/flaky-once HTTP/1.1\nHost: agent\nContent-Length: 5\n\nhello"),
			func(t *testing.T, status int, body string, got []seen) {
				if status != 200 || len(got) != 2 || got[0].Body != "hello" || got[1].Body != "hello" {
					t.Errorf("PUT after a 503 = %d, upstream got %+v; want 200 and the body twice", status, got)
				}
			}},
		{"chunked PUT with a small body is retried with it", raw("PUT /up/again/flaky-once HTTP/1.1\nHost: agent\nTransfer-Encoding: chunked\n\n5\nhello\n0\n\n"),
			func(t *testing.T, status int, body string, got []seen) {
				if status != 200 || len(got) != 2 || got[1].Body != "hello" {
					t.Errorf("chunked PUT after a 503 = %d, upstream got %+v; want 200 and the body twice", status, got)
				}
			}},
		{"stalled 503 body does not hold the retry", raw("GET /up/stalled-503 HTTP/1.1\nHost: agent\n\n"),
			func(t *testing.T, status int, body string, got []seen) {
				if status != 200 || len(got) != 2 {
					t.Errorf("GET after a stalled 503 = %d %q after %d requests, want the retry's 200", status, body, len(got))
				}
			}},
		{"slow upload of a small PUT", func(c net.Conn) {
			io.WriteString(c, "PUT /uploads/slow HTTP/1.1\r\nHost: agent\r\nContent-Length: 100\r\n\r\nx")
		}, func(t *testing.T, status int, body string, got []seen) {
			if status != http.StatusRequestTimeout {
				t.Errorf("stalled upload = %d %s, want 408", status, body)
			}
			none(t, got)
		}},
		{"slow upload of a POST", func(c net.Conn) {
			io.WriteString(c, "POST /uploads/slow HTTP/1.1\r\nHost: agent\r\nContent-Length: 100\r\n\r\nx")
		}, func(t *testing.T, status int, body string, got []seen) {
			if status != http.StatusRequestTimeout {
				t.Errorf("stalled upload = %d %s, want 408", status, body)
			}
			for _, s := range got {
				if !s.BodyErr {
					t.Errorf("upstream got a whole body %q from a stalled upload", s.Body)
				}
			}
		}},
		{"aborted upload", func(c net.Conn) {
			io.WriteString(c, "POST /uploads/abort HTTP/1.1\r\nHost: agent\r\nContent-Length: 1000\r\n\r\npartial")
			time.Sleep(50 * time.Millisecond)
			c.(*net.TCPConn).CloseWrite()
		}, func(t *testing.T, status int, body string, got []seen) {
			for _, s := range got {
				if !s.BodyErr {
					t.Errorf("upstream got a whole body %q from an aborted upload", s.Body)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := rawExchange(t, addr, tt.send)
			status := 0
			if res != nil {
				status = res.StatusCode
			}
			time.Sleep(20 * time.Millisecond) // an upstream request under way is recorded
			tt.check(t, status, body, rec.take())
		})
	}

	t.Run("streaming body arrives as it is written", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /up/stream HTTP/1.1\r\nHost: agent\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("GET /up/stream: %v", err)
		}
		line, err := bufio.NewReader(res.Body).ReadString('\n')
		if err != nil || line != "first\n" {
			t.Fatalf("first part = %q, %v; want it before the upstream sends the rest", line, err)
		}
		rec.take()
	})

	// The caller's failures on the uploads route were never the
	// upstream's: after a good call's outcome is in, no failure is.
	rawExchange(t, addr, raw("GET /uploads/fine HTTP/1.1\nHost: agent\n\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		var v struct {
			Stats struct{ Calls, Failures int64 }
		}
		res, err := http.Get(cp.srv.URL + "/v1/breakers/uploads")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(res.Body).Decode(&v)
		res.Body.Close()
		if v.Stats.Calls > 0 {
			if v.Stats.Failures != 0 {
				t.Errorf("breaker uploads counted %d failures of %d calls, want none: stalled and aborted uploads are the caller's", v.Stats.Failures, v.Stats.Calls)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the good call's outcome never reached the control plane")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
