// Command demo shows a Breakwater fleet at work on this machine, without
// Docker: a Redis (redis-server when installed), two control planes, a
// dependency that can be made to fail, and two agents in front of it that
// stand for two replicas of a service. It drives traffic, breaks the
// dependency, and prints what the fleet does: it trips once, probes once,
// recovers; then an operator forces the circuit open.
//
//	make demo
//
// It runs the binaries built into bin/ (make build) and stops them all when
// it ends.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

const token = "demo-operator-secret-01"

type fleet struct {
	out     io.Writer
	bin     string
	dir     string
	procs   []*exec.Cmd
	cps     []string
	agents  []string
	up      string
	start   time.Time
	printMu sync.Mutex
}

func (f *fleet) say(format string, args ...any) {
	f.printMu.Lock()
	defer f.printMu.Unlock()
	fmt.Fprintf(f.out, "%6.1fs  %s\n", time.Since(f.start).Seconds(), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, out io.Writer) error {
	exe, _ := os.Executable()
	f := &fleet{out: out, bin: filepath.Dir(exe), start: time.Now()}
	dir, err := os.MkdirTemp("", "breakwater-demo")
	if err != nil {
		return err
	}
	f.dir = dir
	defer os.RemoveAll(dir)
	defer f.stopAll()
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("demo-operator operator "+token+"\n"), 0o600)

	// Redis, or the embedded store when redis-server is not installed.
	redisURL := ""
	if _, err := exec.LookPath("redis-server"); err == nil {
		addr := freeAddr()
		_, port, _ := net.SplitHostPort(addr)
		if err := f.spawn("redis", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"); err != nil {
			return err
		}
		redisURL = "redis://" + addr
		f.say("redis-server on %s", addr)
	} else {
		f.say("redis-server not installed: one control plane on the embedded store (install redis-server for the two-replica fleet)")
	}

	ncp := 2
	if redisURL == "" {
		ncp = 1
	}
	for i := range ncp {
		addr := freeAddr()
		args := []string{"--listen", addr, "--tokens", tokens, "--log-level", "warn"}
		if redisURL != "" {
			args = append(args, "--redis", redisURL)
		}
		if err := f.spawn(fmt.Sprintf("controlplane-%c", 'a'+i), filepath.Join(f.bin, "controlplane"), args...); err != nil {
			return err
		}
		f.cps = append(f.cps, "http://"+addr)
	}
	for _, cp := range f.cps {
		if err := waitReady(ctx, cp+"/readyz"); err != nil {
			return err
		}
	}
	f.say("control planes: %s", strings.Join(f.cps, ", "))

	upAddr := freeAddr()
	if err := f.spawn("demo-upstream", filepath.Join(f.bin, "demo-upstream"), "--listen", upAddr); err != nil {
		return err
	}
	f.up = "http://" + upAddr
	if err := waitReady(ctx, f.up+"/control"); err != nil {
		return err
	}

	// The breaker the agents guard the dependency with.
	cfg := `{"window":{"type":"time","size":2},"minimum_calls":10,"failure_rate_threshold":50,"open_duration_ms":3000,"half_open_max_calls":1,"cache_ttl_ms":500}`
	if _, err := f.call("PUT", f.cps[0]+"/v1/breakers/demo", cfg); err != nil {
		return err
	}
	f.say("breaker demo: trips at 50%% failures over 2 s (10 calls at least), stays open 3 s, then one probe for the fleet")
	go f.watchEvents(ctx, f.cps[0])

	for i := range 2 {
		addr := freeAddr()
		if err := f.spawn(fmt.Sprintf("agent-%d", i+1), filepath.Join(f.bin, "agent"),
			"--listen", addr, "--controlplane", strings.Join(f.cps, ","), "--token", token,
			"--route", "demo="+f.up, "--route-attempts", "1"); err != nil {
			return err
		}
		f.agents = append(f.agents, "http://"+addr)
	}
	for _, a := range f.agents {
		if err := waitReady(ctx, a+"/readyz"); err != nil {
			return err
		}
	}
	f.say("two agents (two replicas of a service) in front of the dependency: %s", strings.Join(f.agents, ", "))

	// Traffic: each replica sends about 100 requests a second.
	var stats [2]struct{ ok, failed, refused atomic.Int64 }
	tctx, cancelTraffic := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, a := range f.agents {
		for range 4 {
			wg.Go(func() {
				client := &http.Client{Timeout: 5 * time.Second}
				for tctx.Err() == nil {
					res, err := client.Get(a + "/demo/orders")
					switch {
					case err != nil:
						stats[i].failed.Add(1)
					case res.StatusCode == 200:
						stats[i].ok.Add(1)
					case res.Header.Get("Content-Type") == "application/problem+json":
						stats[i].refused.Add(1) // the agent refused without calling the dependency
					default:
						stats[i].failed.Add(1)
					}
					if res != nil {
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
					}
					time.Sleep(40 * time.Millisecond)
				}
			})
		}
	}
	defer func() { cancelTraffic(); wg.Wait() }()

	served := func() int64 {
		var c struct {
			Served int64 `json:"served"`
		}
		b, _ := f.call("GET", f.up+"/control", "")
		json.Unmarshal(b, &c)
		return c.Served
	}
	state := func() string {
		var b struct {
			State string `json:"state"`
		}
		body, _ := f.call("GET", f.cps[len(f.cps)-1]+"/v1/breakers/demo", "")
		json.Unmarshal(body, &b)
		return b.State
	}
	report := func(phase string, d time.Duration) error {
		before, t0 := served(), time.Now()
		var start [2][3]int64
		for i := range stats {
			start[i] = [3]int64{stats[i].ok.Load(), stats[i].failed.Load(), stats[i].refused.Load()}
		}
		for time.Since(t0) < d {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			var parts []string
			for i := range stats {
				parts = append(parts, fmt.Sprintf("replica %d: %3d ok %3d failed %3d refused", i+1,
					stats[i].ok.Load()-start[i][0], stats[i].failed.Load()-start[i][1], stats[i].refused.Load()-start[i][2]))
			}
			f.say("%-22s breaker %-12s dependency called %4d times | %s", phase, state(), served()-before, strings.Join(parts, " | "))
		}
		return nil
	}

	if err := report("healthy", 3*time.Second); err != nil {
		return err
	}
	f.say(">>> the dependency starts failing every call")
	f.call("POST", f.up+"/control", `{"failure_rate": 1}`)
	if err := report("failing", 6*time.Second); err != nil {
		return err
	}
	f.say(">>> the dependency recovers")
	f.call("POST", f.up+"/control", `{"failure_rate": 0}`)
	if err := report("recovering", 5*time.Second); err != nil {
		return err
	}
	f.say(">>> an operator forces the circuit open for the whole fleet, through control plane %s", f.cps[len(f.cps)-1])
	f.call("PUT", f.cps[len(f.cps)-1]+"/v1/breakers/demo/override", `{"state":"forced_open","reason":"demo: maintenance window"}`)
	if err := report("forced open", 3*time.Second); err != nil {
		return err
	}
	f.call("DELETE", f.cps[0]+"/v1/breakers/demo/override", "")
	f.say(">>> the override is lifted")
	if err := report("back to normal", 2*time.Second); err != nil {
		return err
	}
	body, _ := f.call("GET", f.cps[0]+"/v1/audit?limit=5", "")
	f.say("audit trail: %s", strings.TrimSpace(string(body)))
	return nil
}

// watchEvents prints every state change the fleet's breaker goes through,
// as the control plane's event stream tells it.
func (f *fleet) watchEvents(ctx context.Context, cp string) {
	req, _ := http.NewRequestWithContext(ctx, "GET", cp+"/v1/events?breaker=demo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var e struct{ From, To, Reason string }
		if json.Unmarshal([]byte(data), &e) == nil && e.To != "" {
			f.say("    event: breaker demo %s -> %s (%s)", e.From, e.To, e.Reason)
		}
	}
}

// call makes an operator request and returns the body.
func (f *fleet) call(method, url, body string) ([]byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewBufferString(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		return b, fmt.Errorf("%s %s = %d %s", method, url, res.StatusCode, b)
	}
	return b, nil
}

func (f *fleet) spawn(name, path string, args ...string) error {
	cmd := exec.Command(path, args...)
	logf, err := os.Create(filepath.Join(f.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || os.IsNotExist(err) {
			return fmt.Errorf("%s: %w (run make build first)", path, err)
		}
		return fmt.Errorf("start %s: %w", name, err)
	}
	f.procs = append(f.procs, cmd)
	return nil
}

func (f *fleet) stopAll() {
	for i := len(f.procs) - 1; i >= 0; i-- {
		p := f.procs[i]
		p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			p.Process.Kill()
		}
	}
}

func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready within 15s", url)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}
