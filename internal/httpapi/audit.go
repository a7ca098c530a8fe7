package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// Auditor keeps the trail of operator actions; *audit.Log is one.
type Auditor interface {
	// Run records act, runs do with a context the request's cancel does
	// not reach but its deadline does, and records how it ended, failures as describe says, and
	// the config version do made (when above zero). If act cannot be
	// recorded, do never runs and Run returns why.
	Run(ctx context.Context, act contract.AuditAction, do func(context.Context) (int64, error), describe func(error) string) error
	// Newest returns up to limit actions, newest first.
	Newest(ctx context.Context, limit int) ([]contract.AuditEntry, error)
}

// AuditEntry is one operator action as GET /v1/audit shows it.
type AuditEntry = contract.AuditEntry

// audited runs an operator action under the audit trail (see Auditor.Run):
// refused if it cannot be recorded, and run to its end once it is, past
// the client's cancel but within the request's deadline (see
// withDeadline). A failure is recorded as the API answers it.
func (a *API) audited(r *http.Request, action, target, reason string, do func(context.Context) error) error {
	return a.auditedVersion(r, action, target, reason, func(ctx context.Context) (int64, error) { return 0, do(ctx) })
}

// auditedVersion is audited for an action that makes a config version: the
// result record carries the version do returns (when above zero).
func (a *API) auditedVersion(r *http.Request, action, target, reason string, do func(context.Context) (int64, error)) error {
	if a.audit == nil {
		actx, cancel := detach(r.Context())
		defer cancel()
		_, err := do(actx)
		return err
	}
	act := contract.AuditAction{By: IdentityFrom(r.Context()).Name, Action: action, Target: target, Reason: reason}
	return a.audit.Run(r.Context(), act, do, func(err error) string { return problemFor(err).Detail })
}

// listAudit serves GET /v1/audit?limit=N: operator actions, newest first.
func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	limit := contract.DefaultAuditLimit
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > contract.MaxAuditLimit {
			a.writeError(w, r, badRequest("limit", "limit: must be an integer between 1 and "+strconv.Itoa(contract.MaxAuditLimit)))
			return
		}
		limit = n
	}
	entries := []AuditEntry{}
	if a.audit != nil {
		var err error
		if entries, err = a.audit.Newest(r.Context(), limit); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}
