package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/jsonapi"
)

// Breakers is the fleet's breakers; *breaker.Service is one. Each method
// validates its input and answers bad input with a *contract.FieldError,
// an unknown breaker with an error matching contract.ErrNotFound. The
// ...Once methods apply a request at most once per idempotency key ("" for
// none) and say whether the answer is a replay.
type Breakers interface {
	List(ctx context.Context) ([]contract.Breaker, error)
	Get(ctx context.Context, name string) (contract.Breaker, error)
	// PutWith writes a breaker under o's precondition, which fails with a
	// *contract.VersionConflict, and records o.By in its history.
	PutWith(ctx context.Context, name string, cfg contract.BreakerConfig, o contract.PutOptions) (b contract.Breaker, created bool, err error)
	// History returns up to limit of a breaker's config versions, newest
	// first.
	History(ctx context.Context, name string, limit int) ([]contract.BreakerVersion, error)
	Delete(ctx context.Context, name string) error
	AcquireOnce(ctx context.Context, name, key string) (d contract.Decision, replayed bool, err error)
	ReportOnce(ctx context.Context, name, key string, outs []contract.Outcome) (d contract.Decision, replayed bool, err error)
	ReportBatch(ctx context.Context, key string, reports []contract.Report) (results []contract.ReportResult, replayed bool, err error)
	Force(ctx context.Context, name string, r contract.ForceRequest) (contract.Breaker, error)
	Unforce(ctx context.Context, name string) (contract.Breaker, error)
	Reset(ctx context.Context, name string) (contract.Breaker, error)
}

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
	if err := validateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	cfg := contract.DefaultBreakerConfig()
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
	var b contract.Breaker
	var created bool
	err = a.auditedVersion(r, "breaker.put", name, "", func(ctx context.Context) (_ int64, err error) {
		b, created, err = a.breakers.PutWith(ctx, name, cfg, contract.PutOptions{By: IdentityFrom(r.Context()).Name, If: cond})
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
	if err := validateName(name); err != nil {
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

func (a *API) reportOutcomes(w http.ResponseWriter, r *http.Request) {
	key, err := idempotencyKey(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var body contract.OutcomesRequest
	if err := jsonapi.DecodeFast(w, r, &body, false, func(b []byte) bool { return fastOutcomes(b, &body.Outcomes) }); err != nil {
		a.writeError(w, r, err)
		return
	}
	outs, err := contract.ReadOutcomes(body.Outcomes)
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

// countCalls counts a report's calls in breakwater_breaker_calls_total,
// and its retries in breakwater_breaker_retries_total.
func (a *API) countCalls(name string, outs []contract.Outcome) {
	var ok, failed, retries int64
	for _, o := range outs {
		retries += o.Retries
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
	if retries > 0 {
		a.metrics.breakerRetries(name).Add(float64(retries))
	}
}

// reportBatch serves POST /v1/outcomes: every breaker's outcomes in one
// request, answered one result per report, in order.
func (a *API) reportBatch(w http.ResponseWriter, r *http.Request) {
	key, err := idempotencyKey(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var body contract.BatchRequest
	if err := decode(w, r, &body, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := body.Validate(); err != nil {
		a.writeError(w, r, err)
		return
	}
	reports := make([]contract.Report, len(body.Reports))
	for i, rep := range body.Reports {
		reports[i] = rep.Read()
	}
	results, replayed, err := a.breakers.ReportBatch(r.Context(), key, reports)
	if replayed {
		w.Header().Set(ReplayedHeader, "true")
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]contract.BatchResult, len(results))
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
	writeJSON(w, http.StatusOK, contract.BatchAnswer{Results: out})
}

func writeDecision(w http.ResponseWriter, d contract.Decision) {
	if !d.Allowed {
		setRetryAfter(w, d.RetryAfterMS)
	}
	writeAppended(w, func(b []byte) []byte { return appendDecision(b, d) })
}

func (a *API) putOverride(w http.ResponseWriter, r *http.Request) {
	var body contract.OverrideRequest
	if err := decode(w, r, &body, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	req, err := body.Force(IdentityFrom(r.Context()).Name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	name := chi.URLParam(r, "name")
	if err := validateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	var b contract.Breaker
	err = a.audited(r, "breaker.override.put", name, req.State+": "+strings.TrimSpace(req.Reason), func(ctx context.Context) (err error) {
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
	if err := validateName(name); err != nil {
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
	var b contract.Breaker
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
	if err := validateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := validateOptionalReason(body.Reason); err != nil {
		a.writeError(w, r, err)
		return
	}
	var b contract.Breaker
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

// validateName checks a breaker's or rate limit's name in a path.
func validateName(name string) error { return contract.ValidateName("name", name) }

// validateOptionalReason checks the reason an operator may give for a
// release or a reset: absent, or 1 to contract.MaxReasonLen characters of
// UTF-8, like the reason of a force. A valid reason goes into the audit
// record whole (less surrounding blanks).
func validateOptionalReason(reason *string) error {
	if reason == nil {
		return nil
	}
	if !utf8.ValidString(*reason) {
		return badRequest("reason", "reason: must be UTF-8")
	}
	if n := utf8.RuneCountInString(*reason); n < 1 || n > contract.MaxReasonLen {
		return badRequest("reason", fmt.Sprintf("reason: must be 1 to %d characters, got %d (leave it out for none)", contract.MaxReasonLen, n))
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
