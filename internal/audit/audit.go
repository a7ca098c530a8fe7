// Package audit is the trail of operator actions: each recorded before it
// runs and its result after, in a capped stream in the store, so the trail
// survives restarts of the control plane and every replica reads the same
// one. It knows nothing of HTTP: the caller says who acted and how a
// failure reads.
package audit

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/store"
)

// Stream is where the trail is kept. *store.Store is one; tests wrap it to
// fail or stall on cue.
type Stream interface {
	Append(ctx context.Context, key string, maxLen int64, fields map[string]string) (string, error)
	Newest(ctx context.Context, key string, count int64, before string) ([]store.StreamEntry, error)
}

// The trail's stream: its key, and the length it is trimmed to (about:
// trimming is approximate, which is cheap for Redis).
const (
	Key    = "bw:audit"
	MaxLen = 100_000
)

// resultTimeout bounds writing a result record, which runs past the
// caller's cancel.
const resultTimeout = 2 * time.Second

// Log is the audit trail. It is safe for concurrent use.
type Log struct {
	stream Stream
	log    *slog.Logger
	now    func() time.Time
}

// New returns the trail kept in stream. Results that cannot be recorded
// are logged to log (nil discards them).
func New(stream Stream, log *slog.Logger) *Log {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Log{stream: stream, log: log, now: time.Now}
}

// Run runs an operator action under the trail. The action is recorded,
// its reason trimmed of surrounding space, before it runs: if that record cannot be written, Run returns the
// error, do never runs and nothing changes. Its result is recorded after
// it in a second record that points at the first; Newest shows the two as
// one entry. The result is contract.AuditOK, contract.AuditUnknown when
// the store's reply was lost (errors.Is(err, contract.ErrMaybeApplied): it
// may have been applied), or contract.AuditErrorPrefix followed by
// describe(err).
//
// do gets a context that ctx's cancel does not reach but ctx's deadline
// still bounds (the API gives each request one deadline for all its store
// calls; see "One deadline per call" in docs/design.md): once recorded,
// an action runs to its end, so that its result can be known and
// recorded. Run returns do's
// error. A config version do returns (above zero, with no error) is the
// version the action made, and the result record carries it.
func (l *Log) Run(ctx context.Context, act contract.AuditAction, do func(context.Context) (int64, error), describe func(error) string) error {
	id, err := l.stream.Append(ctx, Key, MaxLen, map[string]string{
		"kind": "action", "at": strconv.FormatInt(l.now().UnixMilli(), 10), "by": act.By,
		"action": act.Action, "target": act.Target, "reason": trimReason(act.Reason),
	})
	if err != nil {
		return err
	}
	actx := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		actx, cancel = context.WithDeadline(actx, d)
		defer cancel()
	}
	version, actErr := do(actx)
	result := contract.AuditOK
	switch {
	case errors.Is(actErr, contract.ErrMaybeApplied):
		result = contract.AuditUnknown
	case actErr != nil:
		result = contract.AuditErrorPrefix + describe(actErr)
	}
	// The action ran: record how it ended even if the caller has gone.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resultTimeout)
	defer cancel()
	fields := map[string]string{"kind": "result", "ref": id, "result": result}
	if version > 0 && actErr == nil {
		fields["config_version"] = strconv.FormatInt(version, 10)
	}
	if _, err := l.stream.Append(rctx, Key, MaxLen, fields); err != nil {
		// The entry reads "unknown" from now on; say what it was.
		l.log.ErrorContext(ctx, "audit: result not recorded", slog.String("ref", id), slog.String("action", act.Action),
			slog.String("target", act.Target), slog.String("result", result), slog.Any("err", err))
	}
	return actErr
}

// Newest returns up to limit actions, newest first. An action whose result
// record is missing (the control plane stopped between the two, or the
// record could not be written) reads contract.AuditUnknown.
func (l *Log) Newest(ctx context.Context, limit int) ([]contract.AuditEntry, error) {
	// Each action has up to two records; read enough for limit actions.
	raw, err := l.stream.Newest(ctx, Key, 2*int64(limit)+2, "")
	if err != nil {
		return nil, err
	}
	results := map[string]string{}
	versions := map[string]int64{}
	for _, e := range raw {
		if e.Fields["kind"] == "result" {
			results[e.Fields["ref"]] = e.Fields["result"]
			versions[e.Fields["ref"]], _ = strconv.ParseInt(e.Fields["config_version"], 10, 64)
		}
	}
	entries := []contract.AuditEntry{}
	for _, e := range raw {
		if e.Fields["kind"] != "action" {
			continue
		}
		ms, _ := strconv.ParseInt(e.Fields["at"], 10, 64)
		res, ok := results[e.ID]
		if !ok {
			res = contract.AuditUnknown
		}
		entries = append(entries, contract.AuditEntry{ID: e.ID, At: time.UnixMilli(ms).UTC(), By: e.Fields["by"],
			Action: e.Fields["action"], Target: e.Fields["target"], Reason: e.Fields["reason"], Result: res,
			ConfigVersion: versions[e.ID]})
		if len(entries) == limit {
			break
		}
	}
	return entries, nil
}

// trimReason keeps reasons readable: no surrounding space. Their length
// is the caller's to check (the API takes 1 to contract.MaxReasonLen
// characters), and a valid reason is recorded whole, in whatever bytes
// its characters take.
func trimReason(s string) string {
	return strings.TrimSpace(s)
}
