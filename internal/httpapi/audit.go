package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store"
)

// AuditLog is where operator actions are written: a capped stream in the
// store, so the trail survives restarts of the control plane.
type AuditLog interface {
	Append(ctx context.Context, key string, maxLen int64, fields map[string]string) (string, error)
	Newest(ctx context.Context, key string, count int64, before string) ([]store.StreamEntry, error)
}

// Audit limits.
const (
	auditKey        = "bw:audit"
	auditMaxLen     = 100_000
	auditMaxLimit   = 1000
	auditDefaultLim = 100
)

// AuditEntry is one operator action as GET /v1/audit shows it.
type AuditEntry struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Reason string    `json:"reason,omitempty"`
	// Result is "ok", "error: ..." or "unknown": the store's reply was
	// lost (a timeout after the action was sent), so it may have been
	// applied, or the control plane stopped between the action and its
	// result record.
	Result string `json:"result"`
	// ConfigVersion is the config version a put made (breakers and rate
	// limits), when it applied.
	ConfigVersion int64 `json:"config_version,omitempty"`
}

// audited runs an operator action under the audit trail. The action is
// recorded before it runs: if that record cannot be written, the action is
// refused and nothing changes. Its result is recorded after it, pointing at
// the first record; GET /v1/audit shows the two as one entry.
//
// do gets a context that the client's cancel does not reach, with the
// request's deadline (the store bounds each call with its own timeout
// too): once recorded, an action runs to its end, so that its result can
// be known and recorded.
func (a *API) audited(r *http.Request, action, target, reason string, do func(context.Context) error) error {
	return a.auditedVersion(r, action, target, reason, func(ctx context.Context) (int64, error) { return 0, do(ctx) })
}

// auditedVersion is audited for an action that makes a config version: the
// result record carries the version do returns (when above zero).
func (a *API) auditedVersion(r *http.Request, action, target, reason string, do func(context.Context) (int64, error)) error {
	actx := context.WithoutCancel(r.Context())
	if d, ok := r.Context().Deadline(); ok {
		// The request's deadline still holds (see withDeadline).
		var cancel context.CancelFunc
		actx, cancel = context.WithDeadline(actx, d)
		defer cancel()
	}
	if a.audit == nil {
		_, err := do(actx)
		return err
	}
	ctx := r.Context()
	who := IdentityFrom(ctx).Name
	at := strconv.FormatInt(time.Now().UnixMilli(), 10)
	id, err := a.audit.Append(ctx, auditKey, auditMaxLen, map[string]string{
		"kind": "action", "at": at, "by": who, "action": action, "target": target, "reason": reason,
	})
	if err != nil {
		return err
	}
	version, actErr := do(actx)
	result := "ok"
	switch {
	case errors.Is(actErr, store.ErrMaybeApplied):
		result = "unknown"
	case actErr != nil:
		result = "error: " + problemFor(actErr).Detail
	}
	// The action ran: record how it ended even if the caller has gone.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	fields := map[string]string{"kind": "result", "ref": id, "result": result}
	if version > 0 && actErr == nil {
		fields["config_version"] = strconv.FormatInt(version, 10)
	}
	if _, err := a.audit.Append(rctx, auditKey, auditMaxLen, fields); err != nil {
		a.log.ErrorContext(ctx, "audit: result not recorded", slog.String("ref", id), slog.String("action", action),
			slog.String("target", target), slog.String("result", result), slog.Any("err", err))
	}
	return actErr
}

// listAudit serves GET /v1/audit?limit=N: operator actions, newest first.
func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	limit := int64(auditDefaultLim)
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > auditMaxLimit {
			a.writeError(w, r, badRequest("limit", "limit: must be an integer between 1 and "+strconv.Itoa(auditMaxLimit)))
			return
		}
		limit = n
	}
	if a.audit == nil {
		writeJSON(w, http.StatusOK, map[string]any{"entries": []AuditEntry{}})
		return
	}
	// Each action has up to two records; read enough for limit actions.
	raw, err := a.audit.Newest(r.Context(), auditKey, 2*limit+2, "")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	results := map[string]string{}
	versions := map[string]int64{}
	for _, e := range raw {
		if e.Fields["kind"] == "result" {
			results[e.Fields["ref"]] = e.Fields["result"]
			versions[e.Fields["ref"]], _ = strconv.ParseInt(e.Fields["config_version"], 10, 64)
		}
	}
	entries := []AuditEntry{}
	for _, e := range raw {
		if e.Fields["kind"] != "action" {
			continue
		}
		ms, _ := strconv.ParseInt(e.Fields["at"], 10, 64)
		res, ok := results[e.ID]
		if !ok {
			res = "unknown"
		}
		entries = append(entries, AuditEntry{ID: e.ID, At: time.UnixMilli(ms).UTC(), By: e.Fields["by"],
			Action: e.Fields["action"], Target: e.Fields["target"], Reason: e.Fields["reason"], Result: res,
			ConfigVersion: versions[e.ID]})
		if int64(len(entries)) == limit {
			break
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}

// trimReason keeps audit reasons readable.
func trimReason(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}
