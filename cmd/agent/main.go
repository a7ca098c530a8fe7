// Command agent is Breakwater's sidecar for replicas not written in Go. It
// runs beside a replica, on loopback, and serves:
//
//   - the decision endpoints of the REST contract (acquire, outcomes, take),
//     answered from the Go SDK's local cache and batching, so a Python or
//     Node replica gets sub-millisecond decisions from localhost;
//   - an egress proxy: for each --route NAME=UPSTREAM_URL, /NAME/rest goes
//     to UPSTREAM_URL/rest, guarded by breaker NAME and, when one exists,
//     rate limit NAME, with a timeout and retries of idempotent requests.
//
// It talks only to control planes, never to Redis, and keeps deciding
// locally (degraded mode) when they cannot be reached.
//
//	agent --controlplane http://cp-a:8080,http://cp-b:8080 --token SECRET --route payments=http://payments:9000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/breakwater-dev/breakwater/client"
	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "agent:", err)
		}
		os.Exit(2)
	}
}

// route is one --route NAME=UPSTREAM_URL.
type route struct {
	Name     string
	Upstream *url.URL
}

// config is every setting of the agent.
type config struct {
	ControlPlanes  []string
	Token          string
	Listen         string
	Routes         []route
	InsecureListen bool
	Timeout        time.Duration
	Attempts       int
	LogLevel       slog.Level
	// RequireControlPlane makes /readyz answer 503 while no control plane
	// is ready.
	RequireControlPlane bool
	// ReadyInterval is how often the control planes' readiness is asked.
	ReadyInterval time.Duration
}

// reservedNames are the first path segments of the agent's own endpoints,
// which no route may take.
var reservedNames = []string{"healthz", "readyz", "metrics", "v1"}

// routeFlag gathers the --route values; parseConfig checks them, so that
// an error never repeats a value that may hold a secret.
type routeFlag struct{ values *[]string }

func (f routeFlag) String() string { return "" }

func (f routeFlag) Set(v string) error {
	*f.values = append(*f.values, v)
	return nil
}

// parseRoute reads one --route NAME=UPSTREAM_URL value.
func parseRoute(v string, routes []route) (route, error) {
	name, raw, ok := strings.Cut(v, "=")
	if !ok || name == "" || raw == "" {
		return route{}, fmt.Errorf("--route: want NAME=UPSTREAM_URL, got %q", redactURL(v))
	}
	if !contract.ValidName(name) {
		return route{}, fmt.Errorf("--route: name %q must match %s (it names the breaker)", name, contract.NamePattern)
	}
	for _, r := range reservedNames {
		if strings.EqualFold(name, r) {
			return route{}, fmt.Errorf("--route: name %q is reserved: /%s/ is one of the agent's own endpoints (reserved: %s)", name, r, strings.Join(reservedNames, ", "))
		}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return route{}, fmt.Errorf("--route %s: upstream %s must be an http(s) URL", name, redactURL(raw))
	}
	if hasDotSegment(u.EscapedPath()) {
		return route{}, fmt.Errorf("--route %s: upstream %s: its path holds a \".\" or \"..\" segment", name, redactURL(raw))
	}
	if u.User != nil {
		return route{}, fmt.Errorf("--route %s: upstream %s carries credentials; the agent does not send URL credentials (and they would show in the process list): have the caller send its Authorization header, which the agent forwards", name, redactURL(raw))
	}
	for _, r := range routes {
		if r.Name == name {
			return route{}, fmt.Errorf("--route: route %s given twice", name)
		}
	}
	return route{Name: name, Upstream: u}, nil
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var c config
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cps := fs.String("controlplane", env("BREAKWATER_CONTROLPLANE", ""), "control-plane URL(s), comma-separated (env BREAKWATER_CONTROLPLANE)")
	fs.StringVar(&c.Token, "token", env("BREAKWATER_TOKEN", ""), "bearer token for the control plane, role agent (env BREAKWATER_TOKEN)")
	fs.StringVar(&c.Listen, "listen", env("BREAKWATER_AGENT_LISTEN", "127.0.0.1:8090"), "address to serve on (env BREAKWATER_AGENT_LISTEN)")
	var routeValues []string
	fs.Var(routeFlag{&routeValues}, "route", "NAME=UPSTREAM_URL: proxy /NAME/... to UPSTREAM_URL/..., guarded by breaker NAME (repeatable)")
	fs.BoolVar(&c.InsecureListen, "insecure-listen", env("BREAKWATER_AGENT_INSECURE_LISTEN", "") == "true", "allow a non-loopback --listen: the agent has no auth of its own (env BREAKWATER_AGENT_INSECURE_LISTEN=true)")
	fs.DurationVar(&c.Timeout, "route-timeout", 10*time.Second, "time for an upstream to answer with headers, per attempt")
	fs.IntVar(&c.Attempts, "route-attempts", 3, "attempts for idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE); 1 turns retries off")
	fs.BoolVar(&c.RequireControlPlane, "require-controlplane", env("BREAKWATER_AGENT_REQUIRE_CONTROLPLANE", "") == "true", "answer /readyz with 503 while no control plane is ready (default: ready, deciding locally; env BREAKWATER_AGENT_REQUIRE_CONTROLPLANE=true)")
	fs.DurationVar(&c.ReadyInterval, "ready-interval", 2*time.Second, "how often /readyz's view of the control planes is refreshed")
	level := fs.String("log-level", env("BREAKWATER_LOG_LEVEL", "info"), "debug, info, warn or error (env BREAKWATER_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := c.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return c, fmt.Errorf("--log-level: %w", err)
	}
	for _, v := range routeValues {
		r, err := parseRoute(v, c.Routes)
		if err != nil {
			return c, err
		}
		c.Routes = append(c.Routes, r)
	}
	for _, u := range strings.Split(*cps, ",") {
		if u = strings.TrimSpace(u); u != "" {
			c.ControlPlanes = append(c.ControlPlanes, u)
		}
	}
	if len(c.ControlPlanes) == 0 {
		return c, fmt.Errorf("--controlplane (or BREAKWATER_CONTROLPLANE) is required")
	}
	if !c.InsecureListen && !serve.IsLoopback(c.Listen) {
		return c, fmt.Errorf("--listen %s is not a loopback address; the agent has no auth of its own: pass --insecure-listen to serve it anyway", c.Listen)
	}
	if c.Attempts < 1 || c.Timeout <= 0 || c.ReadyInterval <= 0 {
		return c, fmt.Errorf("--route-attempts must be >= 1, --route-timeout and --ready-interval > 0")
	}
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hooks := metricsHooks(reg)
	c, err := client.New(client.Config{Endpoints: cfg.ControlPlanes, Token: cfg.Token, Logger: log, Hooks: hooks})
	if err != nil {
		return err
	}
	defer c.Close()

	a := newAgent(c, cfg, log, reg)
	defer a.close()
	go a.watchControlPlane(ctx, cfg.ControlPlanes, cfg.ReadyInterval)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	var names, cps []string
	for _, r := range cfg.Routes {
		names = append(names, r.Name+"="+redactURL(r.Upstream.String()))
	}
	for _, u := range cfg.ControlPlanes {
		cps = append(cps, redactURL(u))
	}
	log.Info("config", "listen", cfg.Listen, "controlplanes", cps, "routes", names,
		"route_timeout", cfg.Timeout.String(), "route_attempts", cfg.Attempts, "token_set", cfg.Token != "")
	log.Info("listening", "addr", ln.Addr().String())

	return serve.Run(ctx, srv, ln, 10*time.Second, "", "")
}
