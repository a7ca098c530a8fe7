package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// Outcomes reported with no acquire before them count, as the control
// plane counts them; an unknown breaker is 404, as there.
func TestAgentOutcomesWithoutAcquire(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	cp.do(t, "PUT", "/v1/breakers/inv", `{"minimum_calls":1000}`)
	agent := startAgent(t, "--controlplane", cp.srv.URL)
	a := send(t, "POST", agent+"/v1/breakers/inv/outcomes", `{"outcomes":[{"success":false,"duration_ms":5,"count":7},{"success":true,"duration_ms":5}]}`)
	if a.status != 200 {
		t.Fatalf("outcomes = %d %s", a.status, a.body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var v struct {
			Stats struct{ Calls, Failures int64 }
		}
		json.Unmarshal([]byte(get(t, cp.srv.URL+"/v1/breakers/inv").body), &v)
		if v.Stats.Calls == 8 && v.Stats.Failures == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("control plane counted %+v, want 8 calls, 7 failures", v.Stats)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a := send(t, "POST", agent+"/v1/breakers/nosuch/outcomes", `{"outcomes":[{"success":true}]}`); a.status != http.StatusNotFound {
		t.Errorf("outcomes of an unknown breaker = %d %s, want 404", a.status, a.body)
	}
}

// /readyz follows the control plane: started before it, the agent says
// it is unreachable, then reachable once it is up, and unreachable again
// when it goes.
func TestAgentReadinessFollowsTheControlPlane(t *testing.T) {
	r := storetest.StartRedis(t)
	cp := startControlPlane(t, r.Open(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the control plane's address, not served yet
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	agent := startAgent(t, "--controlplane", "http://"+addr, "--ready-interval", "50ms")
	waitReady := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			a := get(t, agent+"/readyz")
			if a.status == 200 && strings.Contains(a.body, `"controlplane":"`+want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz = %d %s, want 200 with controlplane %q", a.status, a.body, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitReady("unreachable")
	srv := &http.Server{Handler: cp.api}
	go srv.Serve(ln)
	waitReady("reachable")
	srv.Close()
	storetest.HoldPort(t, addr)
	waitReady("unreachable")
}

func TestAgentRefusesReservedAndCredentialedRoutes(t *testing.T) {
	none := func(string) string { return "" }
	for _, tc := range []struct {
		route, want string
	}{
		{"readyz=http://u", "reserved"},
		{"healthz=http://u", "reserved"},
		{"metrics=http://u", "reserved"},
		{"v1=http://u", "reserved"},
		{"V1=http://u", "reserved"},
		{"pay=http://user:hunter2hunter2@u", "credentials"},
	} {
		_, err := parseConfig([]string{"--controlplane", "http://x", "--route", tc.route}, none, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--route %s: %v, want an error containing %q", tc.route, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("--route error shows the password: %v", err)
		}
	}
}

// The agent's log never shows a credential of a URL it was given.
func TestAgentLogRedactsURLs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--controlplane", "http://agent:hunter2hunter2@127.0.0.1:1/?token=hunter3hunter3",
			"--route", "pay=http://127.0.0.1:1/?api_key=hunter4hunter4"}, func(string) string { return "" }, io.Discard, &logs)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "listening") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	out := logs.String()
	if !strings.Contains(out, `"config"`) {
		t.Fatalf("no config line in %s", out)
	}
	for _, secret := range []string{"hunter2", "hunter3", "hunter4"} {
		if strings.Contains(out, secret) {
			t.Errorf("agent log shows %s: %s", secret, out)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func FuzzUpstreamPath(f *testing.F) {
	for _, s := range []string{"/r/a%2Fb", "/r/../x", "/r/%2e%2e", "/r/a/b?c", "/r", "/r/", "/r/x%20y", "/r//x", "/r/%252e%252e/x", "/r/a%5C..%5Cb", "/r/é"} {
		f.Add(s, "/base")
	}
	f.Fuzz(func(t *testing.T, target, basePath string) {
		in, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(basePath, "/") {
			return
		}
		base, err := url.Parse("http://up" + basePath)
		if err != nil || hasDotSegment(base.EscapedPath()) {
			return // refused at startup
		}
		path, rawPath, err := upstreamPath("r", base, in)
		if err != nil {
			return
		}
		out := &url.URL{Scheme: "http", Host: "up", Path: path, RawPath: rawPath}
		// What goes on the wire is exactly the mapped escaped path.
		if got := out.EscapedPath(); got != rawPath {
			t.Fatalf("upstreamPath(%q) sends %q, want %q", target, got, rawPath)
		}
		// It is the route's base followed by the caller's rest, escapes kept.
		rest := strings.TrimPrefix(rawPathOf(in), "/r")
		if !strings.HasPrefix(rawPath, strings.TrimSuffix(base.EscapedPath(), "/")) {
			t.Fatalf("upstreamPath(%q) = %q, outside base %q", target, rawPath, base.EscapedPath())
		}
		if d1, d2 := mustUnescape(t, rawPath), mustUnescape(t, joinEscaped(base.EscapedPath(), rest)); d1 != d2 {
			t.Fatalf("upstreamPath(%q) decodes to %q, want %q", target, d1, d2)
		}
		// No dot-segment reaches the upstream, at any layer of escaping.
		for s, i := rawPath, 0; i < 4; i++ {
			for _, seg := range strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == '\\' }) {
				if seg == "." || seg == ".." {
					t.Fatalf("upstreamPath(%q) = %q holds a dot-segment", target, rawPath)
				}
			}
			s = lenientUnescape(s)
		}
		// The slashes of the upstream's path are the base's and the caller's
		// unescaped ones: an escaped slash never becomes a separator.
		if got, want := strings.Count(rawPath, "/"), strings.Count(strings.TrimSuffix(base.EscapedPath(), "/"), "/")+strings.Count(rest, "/"); rest != "" && got != want {
			t.Fatalf("upstreamPath(%q) = %q has %d slashes, want %d", target, rawPath, got, want)
		}
	})
}

func rawPathOf(u *url.URL) string {
	if u.RawPath != "" && sameDecoded(u.RawPath, u.Path) {
		return u.RawPath
	}
	return u.EscapedPath()
}

func mustUnescape(t *testing.T, s string) string {
	t.Helper()
	d, err := url.PathUnescape(s)
	if err != nil {
		t.Fatalf("PathUnescape(%q) = %v", s, err)
	}
	return d
}
