package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// The control plane is built once per run, when a test first needs it.
var (
	buildOnce   sync.Once
	buildDir    string
	planeBinary string
	buildErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// controlPlaneBinary builds cmd/controlplane (once) and returns its path.
func controlPlaneBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "breakwater-faults")
		if buildErr != nil {
			return
		}
		planeBinary = filepath.Join(buildDir, "controlplane")
		out, err := exec.Command("go", "build", "-o", planeBinary, "github.com/breakwater-dev/breakwater/cmd/controlplane").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build the control plane: %v", buildErr)
	}
	return planeBinary
}

// long selects the long form of every scenario (make faults).
var long = os.Getenv("BREAKWATER_FAULTS") == "long"

// pick returns the long form's value under make faults, else the short one.
func pick[T any](short, longForm T) T {
	if long {
		return longForm
	}
	return short
}

// result prints a scenario's one-line result and, when
// BREAKWATER_FAULTS_RESULTS names a file, appends it there as a row of the
// results table: scenario, form, pass or FAIL, figures. The row is written
// when the test ends, so it says whether the scenario held.
func result(t *testing.T, scenario, format string, args ...any) {
	t.Helper()
	figures := fmt.Sprintf(format, args...)
	t.Logf("%s: %s", scenario, figures)
	t.Cleanup(func() {
		path := os.Getenv("BREAKWATER_FAULTS_RESULTS")
		if path == "" {
			return
		}
		form, verdict := "short", "pass"
		if long {
			form = "long"
		}
		if t.Failed() {
			verdict = "FAIL"
		}
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("results table: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintf(f, "| %s | %s | %s | %s |\n", scenario, form, verdict, figures)
	})
}

// plane is a control-plane process owned by a test.
type plane struct {
	URL  string
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer // stderr, for a panic's trace
	done chan struct{}
}

// startPlane starts the control plane binary on a free loopback port over
// redisURL, with extra flags, and waits until it listens.
func startPlane(t *testing.T, redisURL string, extra ...string) *plane {
	t.Helper()
	return startPlaneAt(t, "127.0.0.1:0", redisURL, extra...)
}

// startPlaneAt starts the control plane on listen (host:port), as
// startPlane does: a plane restarted where a dead one was.
func startPlaneAt(t *testing.T, listen, redisURL string, extra ...string) *plane {
	t.Helper()
	args := append([]string{"--listen", listen, "--redis", redisURL}, extra...)
	p := &plane{cmd: exec.Command(controlPlaneBinary(t), args...), done: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			if p.logs.Len() < 4<<20 {
				p.logs.Write(line)
				p.logs.WriteByte('\n')
			}
			p.mu.Unlock()
			var m struct{ Msg, Addr string }
			if json.Unmarshal(line, &m) == nil && m.Msg == "listening" {
				select {
				case addr <- m.Addr:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() { p.Kill() })
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.done:
		t.Fatalf("control plane exited before listening:\n%s", p.Logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("control plane did not listen within 20s:\n%s", p.Logs())
	}
	return p
}

// Logs returns what the process wrote to stderr.
func (p *plane) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Kill kills the process (SIGKILL) and waits for it.
func (p *plane) Kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGCONT)
	p.cmd.Process.Kill()
	<-p.done
	p.cmd.Wait()
}

// Alive reports whether the process still runs.
func (p *plane) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return p.cmd.Process.Signal(syscall.Signal(0)) == nil
	}
}

// checkNoPanic fails the test if the plane died or wrote a panic.
func checkNoPanic(t *testing.T, planes ...*plane) {
	t.Helper()
	for i, p := range planes {
		if !p.Alive() {
			t.Errorf("control plane %d exited:\n%s", i, tail(p.Logs()))
		}
		if logs := p.Logs(); strings.Contains(logs, "panic") {
			t.Errorf("control plane %d panicked:\n%s", i, tail(logs))
		}
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

// startRedis starts a redis-server for the scenario.
func startRedis(t *testing.T) *storetest.Redis {
	t.Helper()
	return storetest.StartRedis(t)
}

// httpClient is shared by the tests' raw API calls.
var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// call sends one API request with a JSON body (nil for none) and headers,
// and decodes a JSON answer into out (nil to discard it). It returns the
// status and the answer's headers; err is a transport error.
func call(ctx context.Context, method, url string, body any, hdr map[string]string, out any) (int, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, resp.Header, err
	}
	if resp.StatusCode >= 400 {
		if p, ok := out.(*problem); ok {
			json.Unmarshal(b, p)
		}
		return resp.StatusCode, resp.Header, nil
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, resp.Header, fmt.Errorf("decode %s %s: %w", method, url, err)
		}
	}
	return resp.StatusCode, resp.Header, nil
}

// mustCall sends an operator request that must succeed, retrying for a
// few seconds while the plane or the store is busy.
func mustCall(t *testing.T, method, url string, body any, out any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		code, _, err := call(ctx, method, url, body, nil, out)
		cancel()
		if err == nil && code < 300 {
			return
		}
		if err == nil && code < 500 && code != http.StatusTooManyRequests {
			var p problem
			call(context.Background(), method, url, body, nil, &p)
			t.Fatalf("%s %s = %d (%s), want 2xx", method, url, code, p.Detail)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s = %d, %v after 10s, want 2xx", method, url, code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newKey returns a fresh Idempotency-Key.
func newKey() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errGaveUp is sendOnce's error when no plane answered before the deadline.
var errGaveUp = errors.New("no control plane answered")

// sendOnce sends one decision request (outcomes, take, acquire) the way the
// API says a client may: with an Idempotency-Key, re-sent with the same key
// to the next plane after a lost reply or a 5xx, until one answers 2xx.
// A 4xx is returned as is. It returns the status, whether the answer was a
// replay, and how many attempts it took.
func sendOnce(ctx context.Context, bases []string, path string, body, out any) (status int, replayed bool, attempts int, err error) {
	hdr := map[string]string{"Idempotency-Key": newKey()}
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			return 0, false, attempts, errGaveUp
		}
		attempts++
		actx, cancel := context.WithTimeout(ctx, time.Second)
		code, h, err := call(actx, http.MethodPost, bases[i%len(bases)]+path, body, hdr, out)
		cancel()
		if err == nil && code < 500 {
			return code, h.Get("Idempotent-Replayed") == "true", attempts, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// problem is an API error's problem document.
type problem struct {
	Detail string `json:"detail"`
}

// breakerView is the part of a breaker's GET answer the scenarios read.
type breakerView struct {
	State string `json:"state"`
	Stats struct {
		Calls    int64 `json:"calls"`
		Failures int64 `json:"failures"`
	} `json:"stats"`
}

// limitView is the part of a rate limit's GET answer the scenarios read.
type limitView struct {
	Tokens *float64 `json:"tokens"`
}

// percentile returns the p-th percentile (0..100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// ms formats a duration in milliseconds with one decimal.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// toxi is a toxiproxy server in this process; each link is a proxy on a
// free loopback port in front of one upstream.
type toxi struct{ srv *toxiproxy.ApiServer }

func newToxi(t *testing.T) *toxi {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	t.Cleanup(func() { srv.Collection.Clear() })
	return &toxi{srv: srv}
}

// link is one proxy: Addr in front of an upstream, with toxics that the
// test adds and removes by name.
type link struct {
	p    *toxiproxy.Proxy
	Addr string
}

// link starts a proxy in front of upstream (host:port).
func (x *toxi) link(t *testing.T, name, upstream string) *link {
	t.Helper()
	p := toxiproxy.NewProxy(x.srv, name, "127.0.0.1:0", upstream)
	if err := x.srv.Collection.Add(p, true); err != nil {
		t.Fatalf("toxiproxy %s: %v", name, err)
	}
	return &link{p: p, Addr: p.Listen}
}

// toxic is one toxic to add to a link: a toxiproxy type (latency,
// timeout, reset_peer, slicer, ...), its stream (upstream: towards the
// server; downstream: the replies), the share of connections it touches
// (toxiproxy's toxicity, per connection) and its attributes.
type toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float32        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// add adds a toxic; remove takes it away again.
func (l *link) add(t *testing.T, tx toxic) {
	t.Helper()
	if tx.Stream == "" {
		tx.Stream = "downstream"
	}
	if tx.Toxicity == 0 {
		tx.Toxicity = 1
	}
	b, _ := json.Marshal(tx)
	if _, err := l.p.Toxics.AddToxicJson(bytes.NewReader(b)); err != nil {
		t.Fatalf("add toxic %s to %s: %v", tx.Name, l.p.Name, err)
	}
}

func (l *link) remove(t *testing.T, name string) {
	t.Helper()
	if err := l.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		t.Fatalf("remove toxic %s from %s: %v", name, l.p.Name, err)
	}
}

// readyz asks a plane's /readyz and returns the status (0: no answer).
func readyz(base string, timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	code, _, err := call(ctx, http.MethodGet, base+"/readyz", nil, nil, nil)
	if err != nil {
		return 0
	}
	return code
}
