package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// httpMetrics measures every request by route pattern, never by raw path,
// so names in URLs cannot grow the label set.
type httpMetrics struct {
	duration *prometheus.HistogramVec
	calls    *prometheus.CounterVec
	retries  *prometheus.CounterVec
	limited  *prometheus.CounterVec
	replays  *prometheus.CounterVec

	// The children that requests use, each looked up by label values once
	// and kept: hashing label values on every decision shows in profiles.
	durations curried[durationKey, prometheus.Observer]
	routes    curried[routeKey, string]
	callsOf   curried[string, *outcomeCounters]
	retriesOf curried[string, prometheus.Counter]
	takesOf   curried[string, *outcomeCounters]
}

// durationKey is the labels of one request duration child.
type durationKey struct {
	route, method string
	code          int
}

// routeKey is the patterns chi matched on the way to a handler, one per
// router level (the API has at most three); routes with more are named
// without the cache.
type routeKey [4]string

// outcomeCounters are the two children of one breaker's calls (success,
// failure) or one limit's takes (allowed, denied).
type outcomeCounters struct{ yes, no prometheus.Counter }

// curried maps label values to a metric child made once. Its keys are
// bounded: route patterns, methods and codes, and the names of breakers
// and limits the store found (a request for an unknown name never gets
// here).
type curried[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

func (c *curried[K, V]) get(k K, newV func() V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[k]; ok {
		return v
	}
	if c.m == nil {
		c.m = map[K]V{}
	}
	v = newV()
	c.m[k] = v
	return v
}

// breakerCalls returns the calls counters of a breaker.
func (m *httpMetrics) breakerCalls(name string) *outcomeCounters {
	return m.callsOf.get(name, func() *outcomeCounters {
		return &outcomeCounters{m.calls.WithLabelValues(name, "success"), m.calls.WithLabelValues(name, "failure")}
	})
}

// breakerRetries returns the retries counter of a breaker.
func (m *httpMetrics) breakerRetries(name string) prometheus.Counter {
	return m.retriesOf.get(name, func() prometheus.Counter { return m.retries.WithLabelValues(name) })
}

// takes returns the decisions counters of a rate limit.
func (m *httpMetrics) takes(name string) *outcomeCounters {
	return m.takesOf.get(name, func() *outcomeCounters {
		return &outcomeCounters{m.limited.WithLabelValues(name, "allowed"), m.limited.WithLabelValues(name, "denied")}
	})
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "breakwater_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route pattern, method and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method", "code"}),
	}
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "breakwater_breaker_calls_total",
		Help: "Calls reported to this replica, by breaker and outcome (success or failure); sum across replicas for the fleet.",
	}, []string{"breaker", "outcome"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "breakwater_breaker_retries_total",
		Help: "Calls reported to this replica that were retries, by breaker; sum across replicas for the fleet.",
	}, []string{"breaker"})
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "breakwater_ratelimit_decisions_total",
		Help: "Takes answered by this replica, by rate limit (never by key) and decision (allowed or denied).",
	}, []string{"ratelimit", "decision"})
	reg.MustRegister(m.duration, m.calls, m.retries, m.limited)
	m.replays = newReplaysCounter(reg)
	return m
}

func (m *httpMetrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := m.route(chi.RouteContext(r.Context()))
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		k := durationKey{route, methodLabel(r.Method), status}
		m.durations.get(k, func() prometheus.Observer {
			return m.duration.WithLabelValues(k.route, k.method, strconv.Itoa(k.code))
		}).Observe(time.Since(start).Seconds())
	})
}

// route names the route a request took, as the spec writes it, or
// "unmatched". chi builds the pattern anew on every call (six allocations),
// so names are kept by the patterns they come from.
func (m *httpMetrics) route(rc *chi.Context) string {
	if rc == nil {
		return "unmatched"
	}
	name := func() string {
		if p := rc.RoutePattern(); p != "" {
			return routeName(p)
		}
		return "unmatched"
	}
	var k routeKey
	if len(rc.RoutePatterns) > len(k) {
		return name()
	}
	copy(k[:], rc.RoutePatterns)
	return m.routes.get(k, name)
}

// methodLabel maps a request's method to a fixed set, so that made-up
// methods (anyone may send one, without a token) cannot grow the label set.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions:
		return m
	}
	return "other"
}

func itoa(i int) string { return strconv.Itoa(i) }

// routeName is a chi pattern as the spec writes it: no trailing slash.
func routeName(p string) string {
	if len(p) > 1 && p[len(p)-1] == '/' {
		return p[:len(p)-1]
	}
	return p
}

// breakerCollector reads every breaker's state from the store at scrape
// time, so every replica reports the fleet's state, not its own memory.
type breakerCollector struct {
	breakers    breakerLister
	log         *slog.Logger
	timeout     time.Duration
	state       *prometheus.Desc
	transitions *prometheus.Desc
	version     *prometheus.Desc
	admit       *prometheus.Desc
	up          *prometheus.Desc
}

// breakerLister lists every breaker with its state and transitions.
type breakerLister interface {
	List(ctx context.Context) ([]contract.Breaker, error)
}

// newBreakerCollector reads breaker state within timeout per scrape (zero:
// 5s), so that a hung store does not hold /metrics past the request
// deadline; the scrape then serves every other metric, and
// breakwater_store_up 0.
func newBreakerCollector(b breakerLister, log *slog.Logger, timeout time.Duration) *breakerCollector {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &breakerCollector{
		breakers: b,
		log:      log,
		timeout:  timeout,
		state: prometheus.NewDesc("breakwater_breaker_state",
			"Breaker state, fleet-wide, read from the store: 1 for the current state, 0 for the others.",
			[]string{"breaker", "state"}, nil),
		transitions: prometheus.NewDesc("breakwater_breaker_transitions_total",
			"State changes of a breaker since it was created, fleet-wide, read from the store (every replica reports the same value: aggregate with max, not sum).",
			[]string{"breaker", "from", "to"}, nil),
		version: prometheus.NewDesc("breakwater_breaker_config_version",
			"A breaker's config version, read from the store: it moves at every change of its config.",
			[]string{"breaker"}, nil),
		admit: prometheus.NewDesc("breakwater_breaker_admit_percent",
			"Share of calls clients let through, fleet-wide, read from the store: below 100 only during a slow start.",
			[]string{"breaker"}, nil),
		up: prometheus.NewDesc("breakwater_store_up",
			"Whether the last scrape could read breaker state from the store.", nil, nil),
	}
}

func (c *breakerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.transitions
	ch <- c.version
	ch <- c.admit
	ch <- c.up
}

func (c *breakerCollector) Collect(ch chan<- prometheus.Metric) {
	// Collect gets no request context: the scrape's deadline is set here.
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	bs, err := c.breakers.List(ctx)
	if err != nil {
		c.log.Warn("metrics: cannot read breakers", "err", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, b := range bs {
		for _, s := range contract.States {
			v := 0.0
			if b.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, b.Name, s)
		}
		ch <- prometheus.MustNewConstMetric(c.version, prometheus.GaugeValue, float64(b.ConfigVersion), b.Name)
		ch <- prometheus.MustNewConstMetric(c.admit, prometheus.GaugeValue, float64(b.AdmitPercent), b.Name)
		for _, t := range b.Transitions {
			ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(t.Count), b.Name, t.From, t.To)
		}
	}
}

// StoreObserver returns a store.Observer that records the latency of every
// store round trip in breakwater_store_duration_seconds{op}, registered on reg.
func StoreObserver(reg prometheus.Registerer) func(op string, d time.Duration, err error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "breakwater_store_duration_seconds",
		Help:    "Time of store round trips, by operation (script name or command).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 2.5},
	}, []string{"op"})
	reg.MustRegister(h)
	// One child per operation, made once: the operations are the store's
	// scripts and commands, a fixed set.
	var ops curried[string, prometheus.Observer]
	return func(op string, d time.Duration, err error) {
		ops.get(op, func() prometheus.Observer { return h.WithLabelValues(op) }).Observe(d.Seconds())
	}
}

// outcomeRunCounter counts the outcomes script runs of a Breakers and the
// reports they carried; *breaker.Service is one.
type outcomeRunCounter interface {
	OutcomeRuns() (runs, reports int64)
}

// registerOutcomeRuns serves a replica's outcomes script runs and the
// reports they applied: reports per run is what coalescing saves the
// store (docs/design.md, "Coalesced reports").
func registerOutcomeRuns(reg prometheus.Registerer, rc outcomeRunCounter) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "breakwater_outcome_runs_total",
			Help: "Outcomes script runs this replica sent to the store; each applies the reports to one breaker that arrived together.",
		}, func() float64 { runs, _ := rc.OutcomeRuns(); return float64(runs) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "breakwater_outcome_reports_total",
			Help: "Outcome reports (single, or one breaker's report inside a batch) this replica applied through outcomes script runs; per run, the reports coalesced.",
		}, func() float64 { _, reports := rc.OutcomeRuns(); return float64(reports) }),
	)
}
