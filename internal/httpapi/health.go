package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// healthz answers 200 while the process serves.
func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the store runs a script, else 503.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.store.Ready(ctx); err != nil {
		a.log.WarnContext(ctx, "not ready", "err", err)
		w.Header().Set("Retry-After", "1")
		writeProblem(w, Problem{Type: "about:blank", Title: http.StatusText(http.StatusServiceUnavailable),
			Status: http.StatusServiceUnavailable, Detail: "the store does not answer"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// fleetHealth is the answer of GET /v1/health.
type fleetHealth struct {
	// Status is "degraded" while any breaker is open, half-open or
	// forced open, else "ok".
	Status string `json:"status"`
	// Store is "ok": the answer was read from it.
	Store      string          `json:"store"`
	Breakers   contract.Health `json:"breakers"`
	RateLimits int             `json:"ratelimits"`
}

// health answers GET /v1/health: every breaker by state and the number
// of rate limits, read from the store. Degraded is still 200: it answers
// a question, where /readyz is the probe. A store that does not answer is
// 503, as on every endpoint that reads it.
func (a *API) health(w http.ResponseWriter, r *http.Request) {
	bs, err := a.breakers.List(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ls, err := a.limits.List(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	h := fleetHealth{Status: "ok", Store: "ok", Breakers: contract.Summarize(bs), RateLimits: len(ls)}
	if h.Breakers.Degraded() {
		h.Status = "degraded"
	}
	writeJSON(w, http.StatusOK, h)
}
