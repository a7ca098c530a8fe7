package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
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
	limited  *prometheus.CounterVec
	replays  *prometheus.CounterVec
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
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "breakwater_ratelimit_decisions_total",
		Help: "Takes answered by this replica, by rate limit (never by key) and decision (allowed or denied).",
	}, []string{"ratelimit", "decision"})
	reg.MustRegister(m.duration, m.calls, m.limited)
	m.replays = newReplaysCounter(reg)
	return m
}

func (m *httpMetrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil {
			if p := rc.RoutePattern(); p != "" {
				route = routeName(p)
			}
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		m.duration.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(status)).Observe(time.Since(start).Seconds())
	})
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
		up: prometheus.NewDesc("breakwater_store_up",
			"Whether the last scrape could read breaker state from the store.", nil, nil),
	}
}

func (c *breakerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.transitions
	ch <- c.version
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
	return func(op string, d time.Duration, err error) {
		h.WithLabelValues(op).Observe(d.Seconds())
	}
}
