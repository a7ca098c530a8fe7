package httpapi

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/breakwater-dev/breakwater/internal/breaker"
)

func (a *API) listBreakers(w http.ResponseWriter, r *http.Request) {
	bs, err := a.breakers.List(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"breakers": bs})
}

func (a *API) getBreaker(w http.ResponseWriter, r *http.Request) {
	b, err := a.breakers.Get(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (a *API) putBreaker(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := breaker.ValidateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	cfg := breaker.DefaultConfig()
	if err := decode(w, r, &cfg, true); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := cfg.Validate(); err != nil {
		a.writeError(w, r, err)
		return
	}
	var b breaker.Breaker
	var created bool
	err := a.audited(r, "breaker.put", name, "", func(ctx context.Context) (err error) {
		b, created, err = a.breakers.Put(ctx, name, cfg)
		return err
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writePut(w, created, "/v1/breakers/"+name, b)
}

// writePut answers a PUT with the object: 201 with its Location when it
// was created, else 200.
func writePut(w http.ResponseWriter, created bool, location string, v any) {
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", location)
	}
	writeJSON(w, status, v)
}

func (a *API) deleteBreaker(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := breaker.ValidateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.audited(r, "breaker.delete", name, "", func(ctx context.Context) error { return a.breakers.Delete(ctx, name) }); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) acquire(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	if err := decode(w, r, &body, true); err != nil {
		a.writeError(w, r, err)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	d, replayed, err := a.breakers.AcquireOnce(r.Context(), chi.URLParam(r, "name"), key)
	a.markReplayed(w, "acquire", replayed)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeDecision(w, d)
}

// outcomeJSON is one entry of an outcomes report. Pointers tell a field
// that is missing from one set to zero.
type outcomeJSON struct {
	Success    *bool  `json:"success"`
	DurationMS int64  `json:"duration_ms"`
	Count      *int64 `json:"count"`
	Permit     string `json:"permit"`
	Generation *int64 `json:"generation"`
}

func (a *API) reportOutcomes(w http.ResponseWriter, r *http.Request) {
	key, err := idempotencyKey(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var body struct {
		Outcomes []outcomeJSON `json:"outcomes"`
	}
	if err := decode(w, r, &body, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.Outcomes == nil {
		a.writeError(w, r, badRequest("outcomes", "outcomes: required"))
		return
	}
	outs := make([]breaker.Outcome, len(body.Outcomes))
	for i, o := range body.Outcomes {
		if o.Success == nil {
			a.writeError(w, r, badRequest(fieldAt(i, "success"), fieldAt(i, "success")+": required"))
			return
		}
		outs[i] = breaker.Outcome{Success: *o.Success, DurationMS: o.DurationMS, Count: 1, Permit: o.Permit, Generation: -1}
		if o.Count != nil {
			outs[i].Count = *o.Count
		}
		if o.Generation != nil {
			if *o.Generation < 0 {
				a.writeError(w, r, badRequest(fieldAt(i, "generation"), fieldAt(i, "generation")+": must not be negative"))
				return
			}
			outs[i].Generation = *o.Generation
		}
	}
	name := chi.URLParam(r, "name")
	d, replayed, err := a.breakers.ReportOnce(r.Context(), name, key, outs)
	a.markReplayed(w, "outcomes", replayed)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if replayed {
		// Counted when first reported.
		writeDecision(w, d)
		return
	}
	var ok, failed int64
	for _, o := range outs {
		if o.Success {
			ok += o.Count
		} else {
			failed += o.Count
		}
	}
	if ok > 0 {
		a.metrics.calls.WithLabelValues(name, "success").Add(float64(ok))
	}
	if failed > 0 {
		a.metrics.calls.WithLabelValues(name, "failure").Add(float64(failed))
	}
	writeDecision(w, d)
}

func fieldAt(i int, f string) string {
	return "outcomes[" + itoa(i) + "]." + f
}

func writeDecision(w http.ResponseWriter, d breaker.Decision) {
	if !d.Allowed {
		setRetryAfter(w, d.RetryAfterMS)
	}
	writeJSON(w, http.StatusOK, d)
}

func (a *API) putOverride(w http.ResponseWriter, r *http.Request) {
	var body struct {
		State  string `json:"state"`
		Reason string `json:"reason"`
		TTLMS  *int64 `json:"ttl_ms"`
	}
	if err := decode(w, r, &body, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	req := breaker.ForceRequest{State: body.State, Reason: body.Reason, By: IdentityFrom(r.Context()).Name}
	if body.TTLMS != nil {
		if *body.TTLMS < 1 {
			a.writeError(w, r, badRequest("ttl_ms", "ttl_ms: must be at least 1 (leave it out for no expiry)"))
			return
		}
		req.TTLMS = *body.TTLMS
	}
	name := chi.URLParam(r, "name")
	if err := breaker.ValidateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := breaker.ValidateForce(req); err != nil {
		a.writeError(w, r, err)
		return
	}
	var b breaker.Breaker
	err := a.audited(r, "breaker.override.put", name, req.State+": "+trimReason(req.Reason), func(ctx context.Context) (err error) {
		b, err = a.breakers.Force(ctx, name, req)
		return err
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (a *API) deleteOverride(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := breaker.ValidateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	var b breaker.Breaker
	err := a.audited(r, "breaker.override.delete", name, "", func(ctx context.Context) (err error) {
		b, err = a.breakers.Unforce(ctx, name)
		return err
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (a *API) reset(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	if err := decode(w, r, &body, true); err != nil {
		a.writeError(w, r, err)
		return
	}
	name := chi.URLParam(r, "name")
	if err := breaker.ValidateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	var b breaker.Breaker
	err := a.audited(r, "breaker.reset", name, "", func(ctx context.Context) (err error) {
		b, err = a.breakers.Reset(ctx, name)
		return err
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}
