package client

import (
	"encoding/json"
	"net/http"
)

// A service's health, as HealthHandler reports it: Status of a
// HealthReport and of each DependencyHealth.
const (
	// HealthOK: every call goes out as usual.
	HealthOK = "ok"
	// HealthDegraded: the service works, without some of what it usually
	// has: an optional dependency is refused, a dependency is probed in
	// half-open, or the client decides locally because no control plane
	// answers.
	HealthDegraded = "degraded"
	// HealthDown: a critical dependency's breaker refuses every call, so
	// the service cannot do its work.
	HealthDown = "down"
)

// Where a DependencyHealth's State comes from.
const (
	// HealthSourceControlPlane: the control plane's last answer, as the
	// client caches it (it may have expired: the report does not ask).
	HealthSourceControlPlane = "control_plane"
	// HealthSourceLocal: the client's local breaker, while no control
	// plane answers.
	HealthSourceLocal = "local"
	// HealthSourceFailClosed: no control plane answers and the breaker
	// fails closed (Config.FailClosed), so it refuses every call.
	HealthSourceFailClosed = "fail_closed"
	// HealthSourceNone: no call has asked about the breaker yet, so the
	// client knows nothing of it.
	HealthSourceNone = "none"
)

// A Dependency is a breaker that a service's health depends on. Make one
// with Critical or Optional.
type Dependency struct {
	// Breaker is the breaker's name.
	Breaker string
	// Critical marks a dependency the service cannot work without: while
	// its breaker refuses calls, the service is down. Optional ones only
	// degrade it.
	Critical bool
}

// Critical is a dependency the service cannot work without, guarded by
// the breaker of that name: while the breaker is open or forced open,
// the service's health is down (503).
func Critical(breaker string) Dependency { return Dependency{Breaker: breaker, Critical: true} }

// Optional is a dependency the service can do without, guarded by the
// breaker of that name: while the breaker is open or forced open, the
// service's health is degraded (still 200), with the dependency listed.
func Optional(breaker string) Dependency { return Dependency{Breaker: breaker} }

// HealthReport is a service's health from its dependencies' breakers. Its
// JSON form is the body HealthHandler serves.
type HealthReport struct {
	// Status is HealthDown when a critical dependency is down,
	// HealthDegraded when any dependency is not ok or the client is in
	// degraded mode, else HealthOK.
	Status string `json:"status"`
	// DegradedMode says the client is deciding locally because no
	// control plane answers (see Client.Degraded).
	DegradedMode bool `json:"degraded_mode"`
	// Down names the critical dependencies that are down; empty, never
	// nil, when none.
	Down []string `json:"down"`
	// Degraded names the other dependencies that are not ok: optional
	// ones that are down, and any in half-open or in a slow start.
	// Empty, never nil, when none.
	Degraded []string `json:"degraded"`
	// Dependencies are every dependency, in the order HealthHandler was
	// given them.
	Dependencies []DependencyHealth `json:"dependencies"`
}

// DependencyHealth is one dependency in a HealthReport.
type DependencyHealth struct {
	// Name is the breaker's name.
	Name     string `json:"name"`
	Critical bool   `json:"critical"`
	// State is the API's name of the breaker's state as Breaker.State
	// reports it: "unknown" when the client knows nothing of it yet,
	// "not_found" when the control plane has no breaker of that name.
	State string `json:"state"`
	// Source is where State comes from: HealthSourceControlPlane,
	// HealthSourceLocal, HealthSourceFailClosed or HealthSourceNone.
	Source string `json:"source"`
	// Status is HealthDown while the breaker refuses every call (open,
	// forced open, or failing closed in degraded mode), HealthDegraded in
	// half-open and during a slow start (a share of calls is refused),
	// else HealthOK. A breaker the client knows nothing of
	// yet, or that the control plane does not have, lets calls through:
	// HealthOK.
	Status string `json:"status"`
}

// HealthHandler is an http.Handler for a service's own health endpoint,
// answered from what the Client already knows of its dependencies'
// breakers: it makes no network call, so a fleet of replicas probed by
// their load balancers adds no load on the control plane or on the
// dependencies, and the answer does not wait on either.
//
// It answers GET and HEAD with a HealthReport as JSON: 503 when a
// critical dependency is down, else 200 (degraded or ok). Make one with
// Client.HealthHandler. It is safe for concurrent use.
type HealthHandler struct {
	c    *Client
	deps []Dependency
	bs   []*Breaker
}

// HealthHandler returns a handler for the service's own health endpoint
// over deps, each the name of a breaker of this Client marked Critical or
// Optional. A name given twice is one dependency, critical if either
// says so.
//
// The states it reports are those the client has cached: they are as
// fresh as the event stream and the calls through each breaker keep them
// (see Breaker.State).
func (c *Client) HealthHandler(deps ...Dependency) *HealthHandler {
	h := &HealthHandler{c: c}
	at := map[string]int{}
	for _, d := range deps {
		if i, ok := at[d.Breaker]; ok {
			h.deps[i].Critical = h.deps[i].Critical || d.Critical
			continue
		}
		at[d.Breaker] = len(h.deps)
		h.deps = append(h.deps, d)
		h.bs = append(h.bs, c.Breaker(d.Breaker))
	}
	return h
}

// Check returns the service's health now, from the client's cache.
func (h *HealthHandler) Check() HealthReport {
	r := HealthReport{
		Status:       HealthOK,
		DegradedMode: h.c.Degraded(),
		Down:         []string{},
		Degraded:     []string{},
		Dependencies: make([]DependencyHealth, len(h.deps)),
	}
	if r.DegradedMode {
		r.Status = HealthDegraded
	}
	for i, d := range h.deps {
		dh := h.bs[i].health()
		dh.Critical = d.Critical
		r.Dependencies[i] = dh
		switch {
		case dh.Status == HealthOK:
		case dh.Status == HealthDown && d.Critical:
			r.Down = append(r.Down, d.Breaker)
		default:
			r.Degraded = append(r.Degraded, d.Breaker)
		}
	}
	switch {
	case len(r.Down) > 0:
		r.Status = HealthDown
	case len(r.Degraded) > 0:
		r.Status = HealthDegraded
	}
	return r
}

// ServeHTTP answers GET and HEAD with Check's report: 503 when the
// status is down, else 200. Other methods get 405.
func (h *HealthHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rep := h.Check()
	body, _ := json.Marshal(rep) // strings, bools and slices: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	status := http.StatusOK
	if rep.Status == HealthDown {
		status = http.StatusServiceUnavailable
	}
	w.WriteHeader(status)
	if r.Method == http.MethodGet {
		w.Write(append(body, '\n'))
	}
}

// health is the breaker's state as the client knows it, with no network
// call; Critical is left for the caller.
func (b *Breaker) health() DependencyHealth {
	dh := DependencyHealth{Name: b.name, Source: HealthSourceNone, Status: HealthOK}
	st := StateUnknown
	if b.err != nil {
		// Every call is refused: the name cannot be a breaker's.
		dh.State, dh.Status = st.String(), HealthDown
		return dh
	}
	if a := b.cur.Load(); a != nil {
		st, dh.Source = a.state, HealthSourceControlPlane
	}
	if b.c.degraded.Load() {
		if b.c.failClosed(KindBreaker, b.name) {
			dh.State, dh.Source, dh.Status = st.String(), HealthSourceFailClosed, HealthDown
			return dh
		}
		b.mu.Lock()
		l := b.local
		b.mu.Unlock()
		if l != nil {
			st, dh.Source = l.status(b.c.clock.now()).state, HealthSourceLocal
		}
	}
	dh.State = st.String()
	switch st {
	case StateOpen, StateForcedOpen:
		dh.Status = HealthDown
	case StateHalfOpen:
		dh.Status = HealthDegraded
	case StateClosed:
		if a := b.cur.Load(); dh.Source == HealthSourceControlPlane && a != nil && a.ramp > 0 {
			dh.Status = HealthDegraded // a slow start lets only a share through
		}
	}
	return dh
}
