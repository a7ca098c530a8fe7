// Command controlplane serves Breakwater's REST API over Redis, or over an
// embedded in-memory store when no Redis is named.
//
//	controlplane [--listen 127.0.0.1:8080] [--redis redis://host:6379/0] [--tokens FILE]
//
// Every flag has an environment default; see --help.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/breakwater-dev/breakwater/internal/audit"
	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/events"
	"github.com/breakwater-dev/breakwater/internal/fault"
	"github.com/breakwater-dev/breakwater/internal/httpapi"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/serve"
	"github.com/breakwater-dev/breakwater/internal/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "controlplane:", err)
		}
		os.Exit(2)
	}
}

// config is every setting of the control plane, from flags and environment.
type config struct {
	Listen         string
	Redis          string
	Tokens         string
	InsecureListen bool
	TLSCert        string
	TLSKey         string
	LogLevel       slog.Level
	StoreTimeout   time.Duration
	APIRate        float64
	APIBurst       int64
	MetricsRole    string
	ShutdownGrace  time.Duration
	PProf          string
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var c config
	fs := flag.NewFlagSet("controlplane", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Listen, "listen", env("BREAKWATER_LISTEN", "127.0.0.1:8080"), "address to serve on (env BREAKWATER_LISTEN)")
	fs.StringVar(&c.Redis, "redis", env("BREAKWATER_REDIS", ""), "redis://[user:pass@]host:port/db, rediss:// for TLS, redis+sentinel:// or redis+cluster:// (env BREAKWATER_REDIS); empty: embedded in-memory store")
	fs.StringVar(&c.Tokens, "tokens", env("BREAKWATER_TOKENS", ""), "tokens file, one \"name role secret\" a line (env BREAKWATER_TOKENS); empty: no auth")
	fs.BoolVar(&c.InsecureListen, "insecure-listen", env("BREAKWATER_INSECURE_LISTEN", "") == "true", "allow a non-loopback --listen without a tokens file (env BREAKWATER_INSECURE_LISTEN=true)")
	fs.StringVar(&c.TLSCert, "tls-cert", env("BREAKWATER_TLS_CERT", ""), "serve HTTPS with this certificate (PEM; env BREAKWATER_TLS_CERT); needs --tls-key")
	fs.StringVar(&c.TLSKey, "tls-key", env("BREAKWATER_TLS_KEY", ""), "the certificate's private key (PEM; env BREAKWATER_TLS_KEY)")
	level := fs.String("log-level", env("BREAKWATER_LOG_LEVEL", "info"), "debug, info, warn or error (env BREAKWATER_LOG_LEVEL)")
	fs.Float64Var(&c.APIRate, "api-rate", 500, "requests per second each token may make to the API, fleet-wide, with --tokens; 0 turns the cap off")
	fs.Int64Var(&c.APIBurst, "api-burst", 1000, "burst of --api-rate")
	fs.StringVar(&c.MetricsRole, "metrics-role", env("BREAKWATER_METRICS_ROLE", ""), "role /metrics needs (reader, agent or operator; env BREAKWATER_METRICS_ROLE); empty: open")
	fs.DurationVar(&c.StoreTimeout, "store-timeout", store.DefaultTimeout, "deadline of each API request: of all its store calls together, each bounded by it")
	fs.StringVar(&c.PProf, "pprof", env("BREAKWATER_PPROF", ""), "serve net/http/pprof on this loopback address (env BREAKWATER_PPROF); empty: off")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 10*time.Second, "how long in-flight requests may finish after SIGTERM")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := c.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return c, fmt.Errorf("--log-level: %w", err)
	}
	if c.MetricsRole != "" && c.Tokens == "" {
		return c, fmt.Errorf("--metrics-role needs --tokens")
	}
	if c.APIRate < 0 || c.APIBurst < 1 {
		return c, fmt.Errorf("--api-rate must be >= 0 and --api-burst >= 1")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if c.PProf != "" && !serve.IsLoopback(c.PProf) {
		return c, fmt.Errorf("--pprof %s: profiles are served on a loopback address only", c.PProf)
	}
	if c.Tokens == "" && !c.InsecureListen && !serve.IsLoopback(c.Listen) {
		return c, fmt.Errorf("--listen %s is not a loopback address and no --tokens file is set: anyone who can reach it could force circuits; set --tokens, or --insecure-listen to serve open anyway", c.Listen)
	}
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	store.SetLogger(log)

	var tokens *httpapi.Tokens
	if cfg.Tokens != "" {
		tokens, err = httpapi.LoadTokens(cfg.Tokens, log)
		if err != nil {
			return fmt.Errorf("--tokens %s: %w", cfg.Tokens, err)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var metricsRole httpapi.Role
	if cfg.MetricsRole != "" {
		r, ok := httpapi.ParseRole(cfg.MetricsRole)
		if !ok {
			return fmt.Errorf("--metrics-role %q: want reader, agent or operator", cfg.MetricsRole)
		}
		metricsRole = r
	}

	st, err := store.Open(store.Config{URL: cfg.Redis, Timeout: cfg.StoreTimeout, Logger: log, Observer: httpapi.StoreObserver(reg)})
	if err != nil {
		return err
	}
	defer st.Close()
	if p := st.EvictionPolicy(ctx); p != "" && p != "noeviction" {
		log.Warn("redis maxmemory-policy "+p+" may evict breaker state and rate-limit buckets under memory pressure; set it to noeviction",
			"maxmemory_policy", p)
	}
	api := httpapi.New(httpapi.Options{
		Breakers:     breaker.NewService(st),
		Limits:       ratelimit.NewService(st),
		APILimits:    ratelimit.NewSystemService(st),
		Faults:       fault.NewService(st),
		Store:        st,
		Tokens:       tokens,
		Registry:     reg,
		Logger:       log,
		Audit:        audit.New(st, log),
		Events:       events.NewService(st),
		APIRate:      cfg.APIRate,
		APIBurst:     cfg.APIBurst,
		MetricsRole:  metricsRole,
		StoreTimeout: cfg.StoreTimeout,
	})
	defer api.Close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(api.Close) // event streams end so Shutdown can finish

	auth := "open: no tokens file, every request may do everything"
	if tokens != nil {
		auth = fmt.Sprintf("%d tokens from %s", tokens.Len(), cfg.Tokens)
	}
	log.Info("config", "listen", cfg.Listen, "store", st.String(), "redis", store.RedactURL(cfg.Redis),
		"auth", auth, "store_timeout", cfg.StoreTimeout.String())
	if tokens == nil {
		log.Warn("NO AUTH: the API is open to anyone who can reach " + ln.Addr().String() + "; pass --tokens to require bearer tokens")
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	if cfg.PProf != "" {
		stopPProf, err := servePProf(cfg.PProf)
		if err != nil {
			return fmt.Errorf("--pprof: %w", err)
		}
		defer stopPProf()
		log.Info("serving profiles", "addr", cfg.PProf)
	}
	log.Info("listening", "addr", ln.Addr().String(), "scheme", scheme)

	if err := serve.Run(ctx, srv, ln, cfg.ShutdownGrace, cfg.TLSCert, cfg.TLSKey); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
