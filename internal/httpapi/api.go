// Package httpapi serves Breakwater's REST contract (api/openapi.yaml) over
// the breaker, rate-limit, audit and events services: routing, strict
// decoding, problem documents, auth and HTTP metrics. It holds no policy or
// storage of its own: it takes each service as a small interface defined
// beside the handlers that use it, speaks internal/contract's types, and
// imports neither the store nor go-redis (a test checks).
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Readier says whether the store can serve.
type Readier interface {
	Ready(ctx context.Context) error
}

// Options are what the API serves from.
type Options struct {
	// Breakers serves /v1/breakers and /v1/outcomes, and the breaker
	// metrics; nil serves none (tests of other concerns only).
	Breakers Breakers
	// Limits serves /v1/ratelimits; nil serves none.
	Limits Limits
	// APILimits keeps the per-token cap on API requests (APIRate): the
	// limits of Breakwater's own key space, which no request can name
	// (ratelimit.NewSystemService). Nil turns the cap off.
	APILimits APILimits
	// Faults keeps the faults of drills; nil serves none (503).
	Faults Faults
	// Store answers /readyz.
	Store Readier
	// Tokens enforces roles; nil serves every request as an anonymous operator.
	Tokens *Tokens
	// Registry receives the HTTP metrics and is served at /metrics. Nil
	// means a fresh registry.
	Registry *prometheus.Registry
	// Logger receives errors the client cannot cause. Nil discards.
	Logger *slog.Logger
	// Audit records operator actions and serves /v1/audit; nil records
	// none (tests of other concerns only: production always wires it).
	Audit Auditor
	// Events feeds /v1/events; nil serves no events (503).
	Events EventSource
	// MaxStreamsPerToken caps the event streams one client (by its
	// Breakwater-Client header, else its address) may hold open on this
	// replica under one token; a token as a whole may hold 4096. Zero
	// means 16.
	MaxStreamsPerToken int
	// Heartbeat is how often an idle event stream gets a comment. Zero
	// means 15s.
	Heartbeat time.Duration
	// APIRate caps each token's requests per second to the API, fleet-wide,
	// with a burst of APIBurst, using the rate limit APILimitName. Zero
	// turns the cap off. It needs APILimits and Tokens: a server without
	// tokens has no one to tell apart.
	APIRate  float64
	APIBurst int64
	// ClientsEvery is how often the replica writes the clients it saw
	// taking to the store and reads back their fleet-wide count. Zero
	// means 5s.
	ClientsEvery time.Duration
	// MetricsRole, when set, is the role /metrics needs (with Tokens);
	// zero leaves /metrics open, as Prometheus scrapers expect by default.
	MetricsRole Role
	// StoreTimeout, the store's own timeout (--store-timeout), is also the
	// deadline of a whole request, from when it arrives: every store call
	// the request makes, one after another or at once, ends by then, and
	// /metrics reads breaker state within it. Zero leaves each store call
	// its own timeout. See docs/design.md, "One deadline per call".
	StoreTimeout time.Duration
}

// API is the HTTP handler of the control plane. It is safe for concurrent use.
type API struct {
	breakers Breakers
	limits   Limits
	faults   Faults
	store    Readier
	tokens   *Tokens
	reg      *prometheus.Registry
	log      *slog.Logger
	metrics  *httpMetrics
	handler  http.Handler

	audit       Auditor
	apiLimit    *apiLimiter
	clients     *clientTracker
	closeOnce   sync.Once
	metricsRole Role
	hub         *hub
	maxStreams  int
	heartbeat   time.Duration
	deadline    time.Duration // Options.StoreTimeout
}

// New returns the API's handler.
func New(o Options) *API {
	a := &API{breakers: o.Breakers, limits: o.Limits, store: o.Store, tokens: o.Tokens, reg: o.Registry, log: o.Logger, audit: o.Audit, faults: o.Faults}
	if a.reg == nil {
		a.reg = prometheus.NewRegistry()
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.metrics = newHTTPMetrics(a.reg)
	a.metricsRole = o.MetricsRole
	a.deadline = o.StoreTimeout
	if a.breakers != nil {
		a.reg.MustRegister(newBreakerCollector(a.breakers, a.log, a.deadline))
		if rc, ok := a.breakers.(outcomeRunCounter); ok {
			registerOutcomeRuns(a.reg, rc)
		}
	}
	if a.faults != nil {
		a.reg.MustRegister(newFaultCollector(a.faults, a.log, a.deadline))
	}
	a.maxStreams, a.heartbeat = o.MaxStreamsPerToken, o.Heartbeat
	if a.maxStreams <= 0 {
		a.maxStreams = 16
	}
	if a.heartbeat <= 0 {
		a.heartbeat = 15 * time.Second
	}
	if o.Limits != nil {
		every := o.ClientsEvery
		if every <= 0 {
			every = 5 * time.Second
		}
		a.clients = newClientTracker(o.Limits, every)
	}
	if o.APIRate > 0 && o.APILimits != nil {
		a.apiLimit = newAPILimiter(o.APILimits, o.APIRate, max(o.APIBurst, 1))
	}
	if o.Events != nil {
		a.hub = newHub(o.Events)
	}
	a.handler = a.routes()
	return a
}

// Close ends every event stream and the store subscription behind them.
// Call it when the server shuts down: streams never go idle by themselves.
// It is safe to call more than once.
func (a *API) Close() {
	a.closeOnce.Do(func() {
		if a.hub != nil {
			a.hub.close()
		}
		if a.clients != nil {
			a.clients.close()
		}
	})
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }
