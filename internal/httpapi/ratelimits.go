package httpapi

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/jsonapi"
)

// Limits is the fleet's rate limits; *ratelimit.Service is one. Each
// method validates its input and answers bad input with a
// *contract.FieldError, an unknown limit with an error matching
// contract.ErrNotFound.
type Limits interface {
	List(ctx context.Context) ([]contract.RateLimit, error)
	// Get returns a limit and, when key is not nil, that key's bucket.
	Get(ctx context.Context, name string, key *string) (contract.RateLimit, error)
	// PutWith writes a limit under o's precondition, which fails with a
	// *contract.VersionConflict, and records o.By in its history.
	PutWith(ctx context.Context, name string, cfg contract.RateLimitConfig, o contract.PutOptions) (l contract.RateLimit, created bool, err error)
	// History returns up to limit of a limit's config versions, newest
	// first.
	History(ctx context.Context, name string, limit int) ([]contract.RateLimitVersion, error)
	Delete(ctx context.Context, name string) error
	// TakeOnce takes at most once per idempotency key ("" for none).
	TakeOnce(ctx context.Context, name, idemKey string, req contract.TakeRequest) (res contract.TakeResult, replayed bool, err error)
	clientCounter
}

func (a *API) listRateLimits(w http.ResponseWriter, r *http.Request) {
	ls, err := a.limits.List(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ratelimits": ls})
}

func (a *API) getRateLimit(w http.ResponseWriter, r *http.Request) {
	var key *string
	if q := r.URL.Query(); q.Has("key") {
		k := q.Get("key")
		key = &k
	}
	l, err := a.limits.Get(r.Context(), chi.URLParam(r, "name"), key)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setETag(w, l.ConfigVersion)
	writeJSON(w, http.StatusOK, l)
}

func (a *API) putRateLimit(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := validateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	var body contract.RateLimitConfigRequest
	if err := decode(w, r, &body, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	cfg, err := body.Config()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	cond, err := precondition(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var l contract.RateLimit
	var created bool
	err = a.auditedVersion(r, "ratelimit.put", name, "", func(ctx context.Context) (_ int64, err error) {
		l, created, err = a.limits.PutWith(ctx, name, cfg, contract.PutOptions{By: IdentityFrom(r.Context()).Name, If: cond})
		return l.ConfigVersion, err
	})
	if err != nil {
		a.writeConflict(w, r, err)
		return
	}
	setETag(w, l.ConfigVersion)
	writePut(w, created, "/v1/ratelimits/"+name, l)
}

func (a *API) deleteRateLimit(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := validateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.audited(r, "ratelimit.delete", name, "", func(ctx context.Context) error { return a.limits.Delete(ctx, name) }); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) take(w http.ResponseWriter, r *http.Request) {
	key, err := idempotencyKey(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	req := contract.TakeRequest{Tokens: 1}
	if err := jsonapi.DecodeFast(w, r, &req, true, func(b []byte) bool { return fastTake(b, &req) }); err != nil {
		a.writeError(w, r, err)
		return
	}
	name := chi.URLParam(r, "name")
	res, replayed, err := a.limits.TakeOnce(r.Context(), name, key, req)
	a.markReplayed(w, "take", replayed)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if !replayed {
		c := a.metrics.takes(name)
		if res.Allowed {
			c.yes.Inc()
		} else {
			c.no.Inc()
		}
	}
	h := w.Header()
	if id := r.Header.Get(ClientHeader); contract.ValidClientID(id) {
		h.Set(ClientsHeader, formatCount(a.clients.note(name, id)))
	}
	setRateLimitHeaders(h, res.Limit, res.Remaining, (res.ResetMS+999)/1000)
	if !res.Allowed {
		setRetryAfter(w, res.RetryAfterMS)
	}
	writeAppended(w, func(b []byte) []byte { return appendTake(b, res) })
}
