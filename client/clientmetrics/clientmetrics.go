// Package clientmetrics exports what a Breakwater client.Client decides
// as Prometheus metrics, through the client's Hooks, so that the client
// package itself needs nothing outside the standard library.
//
//	m := clientmetrics.New(reg)
//	c, err := client.New(client.Config{Endpoints: endpoints, Hooks: m.Hooks()})
//
// The metrics, all under breakwater_client_:
//
//	breakwater_client_decisions_total{kind, name, source, result}
//	    every decision of a breaker's Allow (kind "breaker") and of a
//	    limiter's Take, TakeN, Wait and WaitN attempts (kind
//	    "limiter"), by the breaker's or limit's name, where it came from
//	    (source "cache", "server" or "degraded") and its result
//	    ("allowed" or "denied")
//	breakwater_client_breaker_state_changes_total{breaker, from, to}
//	    breaker state changes the client learned, by the API's state
//	    names
//	breakwater_client_degraded_switches_total{direction}
//	    switches into ("enter") and out of ("exit") degraded mode
//	breakwater_client_degraded
//	    how many of the clients using these metrics decide locally now
//	    because no control plane answers: 0 or 1 for a single client
//
// Labels are bounded: a limiter's decisions are labelled with the
// limit's name, never with the key of Limiter.For (the client passes the
// name alone to its hooks), so a limit keyed by tenant or user makes six
// series, not six per key.
package clientmetrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater-dev/breakwater/client"
)

// Metrics are a client's metrics. Make them with New and give the
// client Hooks or Wrap. One Metrics may serve several clients: their
// counts add up, and the degraded gauge counts the clients that are
// degraded. For metrics per client, give each its own Metrics on a
// registerer wrapped with a constant label (prometheus.WrapRegistererWith).
// Metrics are safe for concurrent use.
type Metrics struct {
	decisions *prometheus.CounterVec
	changes   *prometheus.CounterVec
	switches  *prometheus.CounterVec
	degraded  prometheus.Gauge

	// byName holds the decision counters of each breaker and limit seen
	// so far. It is copied on write, which happens once per name, so
	// that the hot path reads it with no lock and no allocation.
	byName atomic.Pointer[byName]
	mu     sync.Mutex // serializes writers of byName
}

// byName maps the names of breakers (index 0), limits (1) and other
// kinds (2) to their decision counters.
type byName [3]map[string]*decisionCounters

// kindIndex returns the index of kind in a byName.
func kindIndex(kind string) int {
	switch kind {
	case client.KindBreaker:
		return 0
	case client.KindLimiter:
		return 1
	}
	return 2
}

// decisionCounters are one name's decision counters, by source (cache,
// server, degraded) and result (denied, allowed).
type decisionCounters [3][2]prometheus.Counter

// sources are the client's sources in the order of decisionCounters.
var sources = [3]client.Source{client.SourceCache, client.SourceServer, client.SourceDegraded}

// New returns a client's metrics, registered with reg. It panics if
// registering fails, as prometheus.MustRegister does: when reg already
// holds metrics of these names. Nil reg registers nowhere.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breakwater_client_decisions_total",
			Help: "Decisions of the client's breakers and limiters, by kind (breaker, limiter), name, source (cache, server, degraded) and result (allowed, denied).",
		}, []string{"kind", "name", "source", "result"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breakwater_client_breaker_state_changes_total",
			Help: "Breaker state changes the client learned, from answers or from the event stream.",
		}, []string{"breaker", "from", "to"}),
		switches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breakwater_client_degraded_switches_total",
			Help: "Switches into (enter) and out of (exit) degraded mode, where the client decides locally because no control plane answers.",
		}, []string{"direction"}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "breakwater_client_degraded",
			Help: "How many clients using these metrics are in degraded mode (1 or 0 for a single client).",
		}),
	}
	m.switches.WithLabelValues("enter")
	m.switches.WithLabelValues("exit")
	m.byName.Store(&byName{})
	if reg != nil {
		reg.MustRegister(m.decisions, m.changes, m.switches, m.degraded)
	}
	return m
}

// Hooks returns hooks that update the metrics, for client.Config.Hooks.
func (m *Metrics) Hooks() client.Hooks {
	return client.Hooks{
		OnDecision:    m.onDecision,
		OnStateChange: m.onStateChange,
		OnDegraded:    m.onDegraded,
	}
}

// Wrap returns hooks that update the metrics and then call next's, so
// that hooks of the caller's own keep working beside the metrics. next's
// nil fields are skipped.
func (m *Metrics) Wrap(next client.Hooks) client.Hooks {
	h := m.Hooks()
	if f := next.OnDecision; f != nil {
		h.OnDecision = func(kind, name string, src client.Source, allowed bool) {
			m.onDecision(kind, name, src, allowed)
			f(kind, name, src, allowed)
		}
	}
	if f := next.OnStateChange; f != nil {
		h.OnStateChange = func(name string, from, to client.State) {
			m.onStateChange(name, from, to)
			f(name, from, to)
		}
	}
	if f := next.OnDegraded; f != nil {
		h.OnDegraded = func(entered bool) {
			m.onDegraded(entered)
			f(entered)
		}
	}
	return h
}

// onDecision counts a decision: a map read and an atomic add, with no
// lock and no allocation once the name has been seen.
func (m *Metrics) onDecision(kind, name string, src client.Source, allowed bool) {
	i := int(src) - int(client.SourceCache)
	if i < 0 || i >= len(sources) {
		m.decisions.WithLabelValues(kind, name, src.String(), result(allowed)).Inc()
		return
	}
	dc := m.byName.Load()[kindIndex(kind)][name]
	if dc == nil {
		dc = m.add(kind, name)
	}
	r := 0
	if allowed {
		r = 1
	}
	dc[i][r].Inc()
}

// add makes the decision counters of a name seen for the first time.
func (m *Metrics) add(kind, name string) *decisionCounters {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.byName.Load()
	k := kindIndex(kind)
	if dc := cur[k][name]; dc != nil {
		return dc
	}
	dc := new(decisionCounters)
	for i, src := range sources {
		for r := range 2 {
			dc[i][r] = m.decisions.WithLabelValues(kind, name, src.String(), result(r == 1))
		}
	}
	next := *cur
	next[k] = make(map[string]*decisionCounters, len(cur[k])+1)
	for n, v := range cur[k] {
		next[k][n] = v
	}
	next[k][name] = dc
	m.byName.Store(&next)
	return dc
}

func result(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}

func (m *Metrics) onStateChange(name string, from, to client.State) {
	m.changes.WithLabelValues(name, from.String(), to.String()).Inc()
}

func (m *Metrics) onDegraded(entered bool) {
	if entered {
		m.switches.WithLabelValues("enter").Inc()
		m.degraded.Inc()
		return
	}
	m.switches.WithLabelValues("exit").Inc()
	m.degraded.Dec()
}
