package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// started is a control plane running in this process through run.
type started struct {
	URL  string
	done chan error
	stop context.CancelFunc
	logs *logTail

	once sync.Once
	err  error
}

// wait returns run's result, waiting at most d.
func (s *started) wait(d time.Duration) (error, bool) {
	ok := true
	s.once.Do(func() {
		select {
		case s.err = <-s.done:
		case <-time.After(d):
			ok = false
		}
	})
	return s.err, ok
}

// logTail collects the JSON log lines of a run.
type logTail struct {
	lines chan map[string]any
	all   []map[string]any
}

// start calls run with args and env, and waits until it listens.
func start(t *testing.T, args []string, env map[string]string) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &started{done: make(chan error, 1), stop: cancel, logs: &logTail{lines: make(chan map[string]any, 100)}}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				s.logs.lines <- m
			}
		}
		close(s.logs.lines)
	}()
	getenv := func(k string) string { return env[k] }
	go func() {
		s.done <- run(ctx, args, getenv, io.Discard, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if _, ok := s.wait(15 * time.Second); !ok {
			t.Error("run did not return after cancel")
		}
	})
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-s.logs.lines:
			if !ok {
				t.Fatalf("run exited before listening: %v", <-s.done)
			}
			s.logs.all = append(s.logs.all, m)
			if m["msg"] == "listening" {
				s.URL = "http://" + m["addr"].(string)
				go func() {
					for range s.logs.lines {
					}
				}()
				return s
			}
		case err := <-s.done:
			t.Fatalf("run returned before listening: %v", err)
		case <-timeout:
			t.Fatal("run did not listen within 10s")
		}
	}
}

func (s *started) logged(msg string) bool {
	for _, m := range s.logs.all {
		if strings.Contains(m["msg"].(string), msg) {
			return true
		}
	}
	return false
}

func request(t *testing.T, method, url, body, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestEmbeddedQuickStart is the quick start of README.md and the curl
// session of docs/semantics.md: no Redis named, the embedded store, a
// breaker created, tripped and forced open by HTTP.
func TestEmbeddedQuickStart(t *testing.T) {
	s := start(t, []string{"--listen", "127.0.0.1:0"}, nil)
	if !s.logged("embedded store: in memory, not persistent") {
		t.Error("no log line saying the embedded store is not persistent")
	}
	if !s.logged("NO AUTH") {
		t.Error("running without tokens did not say so loudly")
	}
	steps := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/healthz", "", 200, `"ok"`},
		{"GET", "/readyz", "", 200, `"ready"`},
		{"PUT", "/v1/breakers/payment-service", `{"minimum_calls": 5, "open_duration_ms": 30000}`, 201, `"state":"closed"`},
		{"POST", "/v1/breakers/payment-service/outcomes", `{"outcomes":[{"success":false,"duration_ms":120,"count":5}]}`, 200, `"state":"open"`},
		{"POST", "/v1/breakers/payment-service/acquire", ``, 200, `"allowed":false`},
		{"PUT", "/v1/breakers/payment-service/override", `{"state":"forced_open","reason":"payments incident"}`, 200, `"by":"anonymous"`},
		{"GET", "/v1/breakers/payment-service", ``, 200, `"state":"forced_open"`},
		{"GET", "/metrics", ``, 200, `breakwater_http_request_duration_seconds`},
	}
	for _, st := range steps {
		code, body := request(t, st.method, s.URL+st.path, st.body, "")
		if code != st.status || !strings.Contains(body, st.want) {
			t.Fatalf("%s %s = %d %s, want %d containing %s", st.method, st.path, code, body, st.status, st.want)
		}
	}
}

// TestRealRedisAndTokens runs against a real Redis with a tokens file from
// the environment: the flags' env names, roles, and graceful shutdown.
func TestRealRedisAndTokens(t *testing.T) {
	r := storetest.StartRedis(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("# name role secret\nops operator s3cret-operator-token\nsvc agent s3cret-agent-token-1\nro reader s3cret-reader-token1\n"), 0o600)
	s := start(t, nil, map[string]string{
		"BREAKWATER_LISTEN": "127.0.0.1:0",
		"BREAKWATER_REDIS":  r.URL(),
		"BREAKWATER_TOKENS": tokens,
	})
	for _, m := range s.logs.all {
		line, _ := json.Marshal(m)
		if strings.Contains(string(line), "s3cret") {
			t.Errorf("a secret was logged: %s", line)
		}
	}
	checks := []struct {
		method, path, body, token string
		status                    int
	}{
		{"GET", "/healthz", "", "", 200},
		{"GET", "/v1/breakers", "", "", 401},
		{"GET", "/v1/breakers", "", "wrong-token-wrong-token", 401},
		{"GET", "/v1/breakers", "", "s3cret-reader-token1", 200},
		{"PUT", "/v1/breakers/pay", `{}`, "s3cret-agent-token-1", 403},
		{"PUT", "/v1/breakers/pay", `{}`, "s3cret-operator-token", 201},
		{"POST", "/v1/breakers/pay/acquire", ``, "s3cret-reader-token1", 403},
		{"POST", "/v1/breakers/pay/acquire", ``, "s3cret-agent-token-1", 200},
		{"PUT", "/v1/breakers/pay/override", `{"state":"forced_open","reason":"r"}`, "s3cret-operator-token", 200},
	}
	for _, c := range checks {
		if code, body := request(t, c.method, s.URL+c.path, c.body, c.token); code != c.status {
			t.Errorf("%s %s with %q = %d %s, want %d", c.method, c.path, c.token, code, body, c.status)
		}
	}
	_, body := request(t, "GET", s.URL+"/v1/breakers/pay", "", "s3cret-reader-token1")
	if !strings.Contains(body, `"by":"ops"`) {
		t.Errorf("override author = %s, want the token name ops", body)
	}

	s.stop() // what SIGTERM does in main
	err, ok := s.wait(15 * time.Second)
	if !ok {
		t.Fatal("run did not return after shutdown")
	}
	if err != nil {
		t.Fatalf("run after shutdown = %v, want nil", err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("ops superuser s3cret-operator-token\n"), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("ops operator abc\n"), 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"open on a public address", []string{"--listen", "0.0.0.0:0"}, "not a loopback address"},
		{"unknown role", []string{"--tokens", bad}, "role \"superuser\""},
		{"short secret", []string{"--tokens", short}, "shorter than"},
		{"missing tokens file", []string{"--tokens", filepath.Join(dir, "nope")}, "no such file"},
		{"bad redis url", []string{"--redis", "http://x"}, "scheme must be"},
		{"sentinel without master", []string{"--redis", "redis+sentinel://127.0.0.1:26379"}, "master_name"},
		{"bad log level", []string{"--log-level", "loud"}, "--log-level"},
		{"stray argument", []string{"serve"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, func(string) string { return "" }, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
	// Loopback is fine without tokens, and --insecure-listen allows the rest.
	if _, err := parseConfig([]string{"--listen", "0.0.0.0:0", "--insecure-listen"}, func(string) string { return "" }, io.Discard); err != nil {
		t.Errorf("--insecure-listen: %v", err)
	}
}
