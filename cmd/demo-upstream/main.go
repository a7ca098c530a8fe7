// Command demo-upstream is a dependency for demos that can be made to fail:
// every request is answered 200, or 503 with the configured probability,
// after the configured delay.
//
//	POST /control  {"failure_rate": 1.0, "delay_ms": 0}   set how it behaves
//	GET  /control                                         see it, and how many requests it served
//	*    /...                                             the dependency itself
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "demo-upstream:", err)
		os.Exit(2)
	}
}

// behaviour is how the upstream answers now.
type behaviour struct {
	FailureRate float64 `json:"failure_rate"`
	DelayMS     int64   `json:"delay_ms"`
}

type upstream struct {
	mu     sync.Mutex
	b      behaviour
	served int64
	failed int64
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/control" {
		u.control(w, r)
		return
	}
	u.mu.Lock()
	b := u.b
	u.served++
	fail := rand.Float64() < b.FailureRate
	if fail {
		u.failed++
	}
	u.mu.Unlock()
	if b.DelayMS > 0 {
		select {
		case <-time.After(time.Duration(b.DelayMS) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
	if fail {
		http.Error(w, "demo upstream failing on purpose", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"ok\":true,\"path\":%q}\n", r.URL.Path)
}

func (u *upstream) control(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost, http.MethodPut:
		var b behaviour
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil || b.FailureRate < 0 || b.FailureRate > 1 || b.DelayMS < 0 {
			http.Error(w, "want {\"failure_rate\": 0..1, \"delay_ms\": >= 0}", http.StatusBadRequest)
			return
		}
		u.mu.Lock()
		u.b = b
		u.mu.Unlock()
	case http.MethodGet:
	default:
		http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"failure_rate": u.b.FailureRate, "delay_ms": u.b.DelayMS, "served": u.served, "failed": u.failed})
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo-upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv("DEMO_UPSTREAM_LISTEN")
	if def == "" {
		def = "127.0.0.1:9000"
	}
	listen := fs.String("listen", def, "address to serve on (env DEMO_UPSTREAM_LISTEN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: &upstream{}, ReadHeaderTimeout: 5 * time.Second}
	log.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
