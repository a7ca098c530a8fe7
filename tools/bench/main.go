// Command bench measures Breakwater's decision path side by side in one run
// and prints one table (Markdown) of what it measured: `make bench` runs it
// from the repository root.
//
// Every server is up at once for the whole run: one redis-server, the
// controlplane binary over it, a chi hello-world in a process of its own,
// and a relay: chi and the store running the take script for each request
// and nothing else (no validation, auth, limits, idempotency or metrics),
// the floor of any decision served over HTTP from Redis. Each round loads,
// one after the other and for the same time,
//
//   - hello, relay, take, acquire and outcomes over HTTP with wrk (2
//     threads, 50 connections, loopback);
//   - the take, acquire and outcomes scripts bare, through the store from
//     50 goroutines, no HTTP;
//   - a floor script (TIME, one MGET, one SET, a short reply: what any
//     decision must do) the same way;
//
// and reads each script's own time inside Redis from INFO commandstats
// (reset before each load). The table shows medians over the rounds,
// beside allocations per decision (BenchmarkHandler in internal/httpapi)
// and the SDK's cached path beside sony/gobreaker v2 (client/), both run
// with go test first. docs/performance.md explains the table.
//
//	go run ./tools/bench [-rounds 3] [-duration 5s] [-profile DIR]
//
// With -profile, the control plane serves net/http/pprof (its --pprof flag)
// and a CPU profile of each decision endpoint under load is written to DIR
// during the first round.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-hello" {
		serveHello(os.Args[2])
		return
	}
	if len(os.Args) == 4 && os.Args[1] == "-relay" {
		serveRelay(os.Args[2], os.Args[3])
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	rounds   int
	duration time.Duration
	profile  string
	conns    int
	threads  int
	goBench  bool
}

func run() error {
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; the table shows the median of each figure")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "how long each load runs in each round")
	flag.StringVar(&o.profile, "profile", "", "write CPU profiles of the control plane under each decision's load to this directory")
	flag.IntVar(&o.conns, "connections", 50, "wrk connections, and goroutines of the bare script loads")
	flag.IntVar(&o.threads, "threads", 2, "wrk threads")
	flag.BoolVar(&o.goBench, "go-bench", true, "run the Go benchmarks (allocations, SDK) too")
	flag.Parse()
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk not found: install it (apt-get install -y wrk) and run again")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return errors.New("redis-server not found: install it (apt-get install -y redis-server) and run again")
	}
	tmp, err := os.MkdirTemp("", "breakwater-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var rep report
	rep.machine = describeMachine()
	rep.opts = o
	if o.goBench {
		progress("go test: allocations per decision (BenchmarkHandler)")
		rep.handler, err = goBench("./internal/httpapi/", "^BenchmarkHandler$", 1)
		if err != nil {
			return err
		}
		progress("go test: the SDK's cached path and sony/gobreaker v2")
		rep.sdk, err = goBench("./client/", "^Benchmark(BreakerDo|BreakerAllow|GobreakerExecute|GobreakerTwoStepAllow)(Parallel)?$", 3)
		if err != nil {
			return err
		}
	}

	progress("starting redis-server, controlplane and a chi hello-world")
	procs := &processes{}
	defer procs.stop()
	redisAddr, err := freeAddr()
	if err != nil {
		return err
	}
	redisPid, err := procs.startRedis(redisAddr, tmp)
	if err != nil {
		return err
	}
	cpBin := filepath.Join(tmp, "controlplane")
	if out, err := exec.Command("go", "build", "-o", cpBin, "./cmd/controlplane").CombinedOutput(); err != nil {
		return fmt.Errorf("build controlplane: %v\n%s", err, out)
	}
	cpAddr, _ := freeAddr()
	args := []string{"--listen", cpAddr, "--redis", "redis://" + redisAddr, "--log-level", "warn"}
	var pprofAddr string
	if o.profile != "" {
		pprofAddr, _ = freeAddr()
		args = append(args, "--pprof", pprofAddr)
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
	}
	cpPid, err := procs.start(filepath.Join(tmp, "controlplane.log"), cpBin, args...)
	if err != nil {
		return err
	}
	helloAddr, _ := freeAddr()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	helloPid, err := procs.start(filepath.Join(tmp, "hello.log"), self, "-hello", helloAddr)
	if err != nil {
		return err
	}
	relayAddr, _ := freeAddr()
	relayPid, err := procs.start(filepath.Join(tmp, "relay.log"), self, "-relay", relayAddr, redisAddr)
	if err != nil {
		return err
	}
	cp, hello, relay := "http://"+cpAddr, "http://"+helloAddr, "http://"+relayAddr
	for _, u := range []string{cp + "/readyz", hello + "/", relay + "/"} {
		if err := waitOK(u, 30*time.Second); err != nil {
			return fmt.Errorf("%v (logs in %s)", err, tmp)
		}
	}
	if err := setUp(cp); err != nil {
		return err
	}
	redis := redisCLI{addr: redisAddr}
	scripts, err := newScriptLoad(redisAddr)
	if err != nil {
		return err
	}
	defer scripts.close()

	targets := httpTargets(cp, hello, relay)
	pids := map[string]int{"hello": helloPid, "relay": relayPid}
	for round := 1; round <= o.rounds; round++ {
		for _, t := range targets {
			progress(fmt.Sprintf("round %d/%d: wrk %s", round, o.rounds, t.name))
			var prof chan error
			if pprofAddr != "" && round == 1 && t.script != "" {
				prof = make(chan error, 1)
				go func() { prof <- fetchProfile(pprofAddr, o.duration, filepath.Join(o.profile, t.name+".pprof")) }()
				time.Sleep(100 * time.Millisecond) // let the profile start first
			}
			if err := redis.resetStats(); err != nil {
				return err
			}
			pid, ok := pids[t.name]
			if !ok {
				pid = cpPid
			}
			server0, ok1 := cpuTime(pid)
			redis0, ok2 := cpuTime(redisPid)
			res, err := runWrk(tmp, t, o)
			if err != nil {
				return err
			}
			server1, _ := cpuTime(pid)
			redis1, _ := cpuTime(redisPid)
			if ok1 && ok2 && res.requests > 0 {
				res.serverUS = float64(server1-server0) / float64(time.Microsecond) / res.requests
				res.redisUS = float64(redis1-redis0) / float64(time.Microsecond) / res.requests
			}
			if t.script != "" {
				var total float64
				res.scriptUS, total, _ = redis.evalsha()
				if res.requests > 0 {
					res.perReqUS = total / res.requests
				}
			}
			rep.add("http", t.name, res)
			if prof != nil {
				if err := <-prof; err != nil {
					return err
				}
			}
		}
		for _, s := range scripts.loads() {
			progress(fmt.Sprintf("round %d/%d: script %s", round, o.rounds, s.name))
			if err := redis.resetStats(); err != nil {
				return err
			}
			res, err := scripts.run(s, o.conns, o.duration)
			if err != nil {
				return err
			}
			res.scriptUS, err = redis.evalshaUS()
			if err != nil {
				return err
			}
			rep.add("script", s.name, res)
		}
	}
	rep.print(os.Stdout)
	return nil
}

func progress(msg string) { fmt.Fprintln(os.Stderr, "bench:", msg) }

// setUp creates what the loads use: a breaker that never trips and a rate
// limit that never runs dry, so that every request takes the same path.
func setUp(cp string) error {
	for path, body := range map[string]string{
		"/v1/breakers/bench":   `{"minimum_calls":1000000}`,
		"/v1/ratelimits/bench": `{"capacity":1000000000,"refill_per_second":1000000000}`,
	} {
		req, _ := http.NewRequest("PUT", cp+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 300 {
			return fmt.Errorf("PUT %s = %d %s", path, res.StatusCode, b)
		}
	}
	return nil
}

// serveHello is the floor: chi's hello-world, in a process of its own as
// the control plane is.
func serveHello(addr string) {
	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
	srv := &http.Server{Addr: addr, Handler: r, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
}

// serveRelay is the floor of a decision: chi reads the request, the store
// runs the take script with the keys and arguments the bare load uses (see
// scripts.go), and a fixed-shape answer goes back. It is what every
// decision endpoint must do at the least, with the same libraries.
func serveRelay(addr, redisAddr string) {
	loads, err := newScriptLoad(redisAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
	take := loads.byName("take")
	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {})
	r.Post("/take", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := loads.st.Run(r.Context(), take.sc, take.keys, take.args...); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"allowed":true,"remaining":999999999,"retry_after_ms":0}` + "\n"))
	})
	srv := &http.Server{Addr: addr, Handler: r, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}

func waitOK(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 within %v: %v", url, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fetchProfile(addr string, d time.Duration, path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	secs := max(int(d.Seconds())-1, 1)
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("profile: status %d", res.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	progress("wrote " + path)
	return f.Close()
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
