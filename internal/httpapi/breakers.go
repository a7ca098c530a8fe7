package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/jsonapi"
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
	setETag(w, b.ConfigVersion)
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
	cond, err := precondition(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var b breaker.Breaker
	var created bool
	err = a.auditedVersion(r, "breaker.put", name, "", func(ctx context.Context) (_ int64, err error) {
		b, created, err = a.breakers.PutWith(ctx, name, cfg, breaker.PutOptions{By: IdentityFrom(r.Context()).Name, If: cond})
		return b.ConfigVersion, err
	})
	if err != nil {
		a.writeConflict(w, r, err)
		return
	}
	setETag(w, b.ConfigVersion)
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
	if err := jsonapi.DecodeFast(w, r, &body, false, func(b []byte) bool { return fastOutcomes(b, &body.Outcomes) }); err != nil {
		a.writeError(w, r, err)
		return
	}
	outs, err := readOutcomes(body.Outcomes)
	if err != nil {
		a.writeError(w, r, err)
		return
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
	a.countCalls(name, outs)
	writeDecision(w, d)
}

// readOutcomes turns a report's entries into outcomes, defaults filled in;
// a missing entry field is a 400 naming it.
func readOutcomes(list []outcomeJSON) ([]breaker.Outcome, error) {
	if list == nil {
		return nil, badRequest("outcomes", "outcomes: required")
	}
	outs := make([]breaker.Outcome, len(list))
	for i, o := range list {
		if o.Success == nil {
			return nil, badRequest(fieldAt(i, "success"), fieldAt(i, "success")+": required")
		}
		outs[i] = breaker.Outcome{Success: *o.Success, DurationMS: o.DurationMS, Count: 1, Permit: o.Permit, Generation: -1}
		if o.Count != nil {
			outs[i].Count = *o.Count
		}
		if o.Generation != nil {
			if *o.Generation < 0 {
				return nil, badRequest(fieldAt(i, "generation"), fieldAt(i, "generation")+": must not be negative")
			}
			outs[i].Generation = *o.Generation
		}
	}
	return outs, nil
}

// countCalls counts a report's calls in breakwater_breaker_calls_total.
func (a *API) countCalls(name string, outs []breaker.Outcome) {
	var ok, failed int64
	for _, o := range outs {
		if o.Success {
			ok += o.Count
		} else {
			failed += o.Count
		}
	}
	c := a.metrics.breakerCalls(name)
	if ok > 0 {
		c.yes.Add(float64(ok))
	}
	if failed > 0 {
		c.no.Add(float64(failed))
	}
}

// batchResult answers one report of a batch: the decision as outcomes
// answers it, or the report's problem, named by its breaker.
type batchResult struct {
	Breaker string `json:"breaker"`
	*breaker.Decision
	Error *Problem `json:"error,omitempty"`
}

// reportBatch serves POST /v1/outcomes: every breaker's outcomes in one
// request, answered one result per report, in order.
func (a *API) reportBatch(w http.ResponseWriter, r *http.Request) {
	key, err := idempotencyKey(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var body struct {
		Reports []struct {
			Breaker  string        `json:"breaker"`
			Outcomes []outcomeJSON `json:"outcomes"`
		} `json:"reports"`
	}
	if err := decode(w, r, &body, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.Reports == nil {
		a.writeError(w, r, badRequest("reports", "reports: required"))
		return
	}
	if n := len(body.Reports); n == 0 || n > breaker.MaxBatchReports {
		a.writeError(w, r, badRequest("reports", "reports: must hold 1 to "+itoa(breaker.MaxBatchReports)+" reports, got "+itoa(n)))
		return
	}
	reports := make([]breaker.BatchReport, len(body.Reports))
	for i, rep := range body.Reports {
		reports[i].Breaker = rep.Breaker
		reports[i].Outcomes, reports[i].Err = readOutcomes(rep.Outcomes)
	}
	results, replayed, err := a.breakers.ReportBatch(r.Context(), key, reports)
	if replayed {
		w.Header().Set(ReplayedHeader, "true")
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]batchResult, len(results))
	for i, res := range results {
		out[i].Breaker = reports[i].Breaker
		if res.Err != nil {
			p := problemFor(res.Err)
			if p.Type == "" {
				p.Type = "about:blank"
			}
			if p.Title == "" {
				p.Title = http.StatusText(p.Status)
			}
			out[i].Error = &p
			continue
		}
		out[i].Decision = &res.Decision
		if res.Replayed {
			a.metrics.replays.WithLabelValues("batch").Inc()
		} else {
			a.countCalls(reports[i].Breaker, reports[i].Outcomes)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

func fieldAt(i int, f string) string {
	return "outcomes[" + itoa(i) + "]." + f
}

func writeDecision(w http.ResponseWriter, d breaker.Decision) {
	if !d.Allowed {
		setRetryAfter(w, d.RetryAfterMS)
	}
	writeAppended(w, func(b []byte) []byte { return appendDecision(b, d) })
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

// deleteOverride takes its optional reason from the query string, since
// a body on DELETE is one many clients and generators cannot send (see
// docs/operating.md).
func (a *API) deleteOverride(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := breaker.ValidateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	var reason *string
	if vs, ok := r.URL.Query()["reason"]; ok {
		if len(vs) > 1 {
			a.writeError(w, r, badRequest("reason", fmt.Sprintf("reason: give it once, got %d", len(vs))))
			return
		}
		reason = &vs[0]
	}
	if err := validateOptionalReason(reason); err != nil {
		a.writeError(w, r, err)
		return
	}
	var b breaker.Breaker
	err := a.audited(r, "breaker.override.delete", name, strings.TrimSpace(deref(reason)), func(ctx context.Context) (err error) {
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
	var body struct {
		Reason *string `json:"reason"`
	}
	if err := decode(w, r, &body, true); err != nil {
		a.writeError(w, r, err)
		return
	}
	name := chi.URLParam(r, "name")
	if err := breaker.ValidateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := validateOptionalReason(body.Reason); err != nil {
		a.writeError(w, r, err)
		return
	}
	var b breaker.Breaker
	err := a.audited(r, "breaker.reset", name, strings.TrimSpace(deref(body.Reason)), func(ctx context.Context) (err error) {
		b, err = a.breakers.Reset(ctx, name)
		return err
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// validateOptionalReason checks the reason an operator may give for a
// release or a reset: absent, or 1 to breaker.MaxReasonLen characters of
// UTF-8, like the reason of a force. A valid reason goes into the audit
// record whole (less surrounding blanks).
func validateOptionalReason(reason *string) error {
	if reason == nil {
		return nil
	}
	if !utf8.ValidString(*reason) {
		return badRequest("reason", "reason: must be UTF-8")
	}
	if n := utf8.RuneCountInString(*reason); n < 1 || n > breaker.MaxReasonLen {
		return badRequest("reason", fmt.Sprintf("reason: must be 1 to %d characters, got %d (leave it out for none)", breaker.MaxReasonLen, n))
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
