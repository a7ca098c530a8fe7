package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/jsonapi"
)

// Problem is an RFC 9457 problem document.
type Problem = jsonapi.Problem

// requestError is a fault of the request found by the HTTP layer itself:
// bad JSON, an oversized body, a missing token.
type requestError = jsonapi.RequestError

func badRequest(field, detail string) error { return jsonapi.BadRequest(field, detail) }

// fieldError is what the services return for bad input
// (*contract.FieldError).
type fieldError interface {
	error
	InvalidField() string
}

// problemFor is the one place that maps an error to an HTTP status.
func problemFor(err error) Problem {
	var re *requestError
	var fe fieldError
	switch {
	case errors.As(err, &re):
		return Problem{Status: re.Status, Detail: re.Detail, Field: re.Field}
	case errors.As(err, &fe):
		return Problem{Status: http.StatusBadRequest, Detail: fe.Error(), Field: fe.InvalidField()}
	case errors.Is(err, contract.ErrNotFound):
		return Problem{Status: http.StatusNotFound, Detail: err.Error()}
	case errors.Is(err, contract.ErrKeyReused):
		return Problem{Status: http.StatusUnprocessableEntity, Field: IdempotencyKeyHeader,
			Detail: IdempotencyKeyHeader + ": already used with a different request; use a new key for a new request"}
	case errors.Is(err, contract.ErrPreconditionFailed):
		return Problem{Status: http.StatusPreconditionFailed, Detail: err.Error()}
	case errors.Is(err, contract.ErrUnavailable):
		return Problem{Status: http.StatusServiceUnavailable, Detail: "the store is unavailable; try again shortly"}
	case errors.Is(err, context.Canceled):
		return Problem{Status: 499, Detail: "request canceled"}
	default:
		return Problem{Status: http.StatusInternalServerError, Detail: "internal error"}
	}
}

// writeError answers a request with the problem document for err. Errors
// the client cannot cause (500) are logged with their cause; the client
// sees only that something went wrong.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	switch {
	case p.Status >= 500 && p.Status != http.StatusServiceUnavailable:
		a.log.ErrorContext(r.Context(), "request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	case p.Status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
		a.log.WarnContext(r.Context(), "store unavailable", slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p Problem) { jsonapi.WriteProblem(w, p) }

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) { jsonapi.WriteJSON(w, status, v) }

// setRetryAfter sets Retry-After in whole seconds, rounded up.
func setRetryAfter(w http.ResponseWriter, ms int64) { jsonapi.SetRetryAfter(w, ms) }

// recoverer turns a panic in a handler into a logged 500 problem, so a bug
// never takes the process down or leaves a client without an answer.
func (a *API) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.ErrorContext(r.Context(), "panic serving request", slog.String("method", r.Method),
					slog.String("path", r.URL.Path), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
				writeProblem(w, Problem{Type: "about:blank", Title: http.StatusText(http.StatusInternalServerError),
					Status: http.StatusInternalServerError, Detail: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// decode reads a strict JSON body into v; see jsonapi.Decode.
func decode(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	return jsonapi.Decode(w, r, v, allowEmpty)
}

// MaxBodyBytes caps request bodies; larger ones get 413.
const MaxBodyBytes = jsonapi.MaxBodyBytes
