package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// Faults keeps the faults of drills; *fault.Service is one. Each method
// validates its input and answers bad input with a *contract.FieldError,
// a fault that is not active with an error matching contract.ErrNotFound.
type Faults interface {
	// List returns every active fault, sorted by name.
	List(ctx context.Context) ([]contract.Fault, error)
	Get(ctx context.Context, name string) (contract.Fault, error)
	// Put sets the fault of dependency name, replacing any, on behalf of
	// by; it fills in spec's defaults and validates it first.
	Put(ctx context.Context, name string, spec contract.FaultSpec, by string) (contract.Fault, error)
	// Delete ends the fault of name early.
	Delete(ctx context.Context, name string) error
}

// faultRoutes serves the faults operators inject for drills (see
// docs/drills.md).
func (a *API) faultRoutes(r chi.Router) {
	r.With(a.require(RoleReader)).Get("/v1/faults", a.listFaults)
	r.With(a.require(RoleReader)).Get("/v1/faults/{name}", a.getFault)
	r.With(a.require(RoleOperator)).Put("/v1/faults/{name}", a.putFault)
	r.With(a.require(RoleOperator)).Delete("/v1/faults/{name}", a.deleteFault)
}

// errNoFaults answers fault requests on a server built without faults.
var errNoFaults = &requestError{Status: http.StatusServiceUnavailable, Detail: "this replica keeps no faults"}

func (a *API) listFaults(w http.ResponseWriter, r *http.Request) {
	if a.faults == nil {
		a.writeError(w, r, errNoFaults)
		return
	}
	fs, err := a.faults.List(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if fs == nil {
		fs = []contract.Fault{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"faults": fs})
}

func (a *API) getFault(w http.ResponseWriter, r *http.Request) {
	if a.faults == nil {
		a.writeError(w, r, errNoFaults)
		return
	}
	f, err := a.faults.Get(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (a *API) putFault(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := validateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	var body struct {
		AbortPercent *float64 `json:"abort_percent"`
		AbortStatus  *int     `json:"abort_status"`
		DelayPercent *float64 `json:"delay_percent"`
		DelayMS      *int64   `json:"delay_ms"`
		Reason       *string  `json:"reason"`
		TTLMS        *int64   `json:"ttl_ms"`
	}
	if err := decode(w, r, &body, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.Reason == nil {
		a.writeError(w, r, badRequest("reason", "reason: required: say why, for the audit trail"))
		return
	}
	if body.TTLMS == nil {
		a.writeError(w, r, badRequest("ttl_ms", "ttl_ms: required: every fault ends by itself, at most 24 h after it is set"))
		return
	}
	if body.AbortStatus != nil && *body.AbortStatus == 0 {
		a.writeError(w, r, badRequest("abort_status", "abort_status: must be a 4xx or 5xx status, got 0"))
		return
	}
	spec := contract.FaultSpec{Reason: *body.Reason, TTLMS: *body.TTLMS}
	for _, f := range []struct {
		dst *float64
		src *float64
	}{{&spec.AbortPercent, body.AbortPercent}, {&spec.DelayPercent, body.DelayPercent}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if body.AbortStatus != nil {
		spec.AbortStatus = *body.AbortStatus
	}
	if body.DelayMS != nil {
		spec.DelayMS = *body.DelayMS
	}
	if err := spec.Normalize(); err != nil {
		a.writeError(w, r, err)
		return
	}
	what := fmt.Sprintf("abort %v%% with %d, delay %v%% by %d ms, for %s: %s", spec.AbortPercent, spec.AbortStatus,
		spec.DelayPercent, spec.DelayMS, time.Duration(spec.TTLMS)*time.Millisecond, strings.TrimSpace(spec.Reason))
	if a.faults == nil {
		a.writeError(w, r, errNoFaults)
		return
	}
	var f contract.Fault
	err := a.audited(r, "fault.put", name, what, func(ctx context.Context) (err error) {
		f, err = a.faults.Put(ctx, name, spec, IdentityFrom(r.Context()).Name)
		return err
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (a *API) deleteFault(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := validateName(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	if a.faults == nil {
		a.writeError(w, r, errNoFaults)
		return
	}
	if err := a.audited(r, "fault.delete", name, "", func(ctx context.Context) error { return a.faults.Delete(ctx, name) }); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// faultCollector reads the active faults from the store at scrape time, so
// every replica reports the fleet's drills, and a fault that expired is
// gone from the next scrape.
type faultCollector struct {
	faults  Faults
	log     *slog.Logger
	timeout time.Duration
	active  *prometheus.Desc
}

// newFaultCollector reads the faults within timeout per scrape (zero: 5s),
// as newBreakerCollector does.
func newFaultCollector(f Faults, log *slog.Logger, timeout time.Duration) *faultCollector {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &faultCollector{faults: f, log: log, timeout: timeout,
		active: prometheus.NewDesc("breakwater_fault_active",
			"1 for each dependency with an active fault (a drill), read from the store.", []string{"name"}, nil)}
}

func (c *faultCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.active }

func (c *faultCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	fs, err := c.faults.List(ctx)
	if err != nil {
		c.log.Warn("metrics: cannot read faults", "err", err)
		return
	}
	for _, f := range fs {
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, 1, f.Name)
	}
}
