package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes is every route of the API, with the role each needs. It must say
// what api/openapi.yaml says; a test compares the two.
func (a *API) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(a.recoverer)
	r.Use(a.metrics.middleware)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, &requestError{Status: http.StatusNotFound, Detail: "no such route: " + r.URL.Path})
	})
	var allow *allowTable // made below, once every route is in
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow.methods(r.URL.Path))
		a.writeError(w, r, &requestError{Status: http.StatusMethodNotAllowed, Detail: r.Method + " is not allowed on " + r.URL.Path})
	})

	// The event stream lasts as long as its client; every other request
	// answers within one deadline (see withDeadline).
	r.With(a.require(RoleAgent)).Get("/v1/events", a.events)
	r.Group(func(r chi.Router) {
		r.Use(withDeadline(a.deadline))
		a.answerRoutes(r)
	})
	allow = newAllowTable(r)
	return r
}

// answerRoutes are the routes that answer once: all but the event stream.
func (a *API) answerRoutes(r chi.Router) {
	r.Get("/healthz", a.healthz)
	r.Get("/readyz", a.readyz)
	metrics := promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{})
	if a.metricsRole != 0 && a.tokens != nil {
		metrics = a.require(a.metricsRole)(metrics)
	}
	r.Method(http.MethodGet, "/metrics", metrics)
	consoleRoutes(r)

	r.With(a.require(RoleOperator)).Get("/v1/audit", a.listAudit)
	r.With(a.require(RoleReader)).Get("/v1/health", a.health)
	r.With(a.require(RoleAgent)).Post("/v1/outcomes", a.reportBatch)

	// Flat patterns, not nested routers: each router a request passes
	// through costs chi a copy of the route's pattern and path.
	r.With(a.require(RoleReader)).Get("/v1/breakers", a.listBreakers)
	r.With(a.require(RoleReader)).Get("/v1/breakers/{name}", a.getBreaker)
	r.With(a.require(RoleOperator)).Put("/v1/breakers/{name}", a.putBreaker)
	r.With(a.require(RoleOperator)).Delete("/v1/breakers/{name}", a.deleteBreaker)
	r.With(a.require(RoleAgent)).Post("/v1/breakers/{name}/acquire", a.acquire)
	r.With(a.require(RoleAgent)).Post("/v1/breakers/{name}/outcomes", a.reportOutcomes)
	r.With(a.require(RoleOperator)).Put("/v1/breakers/{name}/override", a.putOverride)
	r.With(a.require(RoleOperator)).Delete("/v1/breakers/{name}/override", a.deleteOverride)
	r.With(a.require(RoleOperator)).Post("/v1/breakers/{name}/reset", a.reset)
	r.With(a.require(RoleReader)).Get("/v1/breakers/{name}/history", a.breakerHistory)

	r.With(a.require(RoleReader)).Get("/v1/ratelimits", a.listRateLimits)
	r.With(a.require(RoleReader)).Get("/v1/ratelimits/{name}", a.getRateLimit)
	r.With(a.require(RoleOperator)).Put("/v1/ratelimits/{name}", a.putRateLimit)
	r.With(a.require(RoleOperator)).Delete("/v1/ratelimits/{name}", a.deleteRateLimit)
	r.With(a.require(RoleAgent)).Post("/v1/ratelimits/{name}/take", a.take)
	r.With(a.require(RoleReader)).Get("/v1/ratelimits/{name}/history", a.rateLimitHistory)
	a.faultRoutes(r)
}

// allowTable answers which methods a path is served with, for the Allow
// header that RFC 9110 requires of a 405. chi's own Match cannot say: it
// takes the stubs that mount a subrouter for routes of every method.
type allowTable struct {
	patterns *chi.Mux          // every route pattern, flat, for any method
	allow    map[string]string // route pattern to "DELETE, GET, PUT"
}

func newAllowTable(routes chi.Routes) *allowTable {
	byPattern := map[string][]string{}
	chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		p := routeName(route)
		byPattern[p] = append(byPattern[p], method)
		return nil
	})
	t := &allowTable{patterns: chi.NewRouter(), allow: map[string]string{}}
	for p, ms := range byPattern {
		slices.Sort(ms)
		t.allow[p] = strings.Join(ms, ", ")
		t.patterns.Handle(p, http.NotFoundHandler())
	}
	return t
}

// methods returns the methods path is served with, comma-separated.
func (t *allowTable) methods(path string) string {
	return t.allow[t.patterns.Find(chi.NewRouteContext(), http.MethodGet, routeName(path))]
}
