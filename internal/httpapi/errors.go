package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store"
)

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Field names the request field at fault, as a JSON path, for 400s.
	Field string `json:"field,omitempty"`
}

// requestError is a fault of the request found by the HTTP layer itself:
// bad JSON, an oversized body, a missing token.
type requestError struct {
	status int
	field  string
	detail string
}

func (e *requestError) Error() string { return e.detail }

func badRequest(field, detail string) error {
	return &requestError{status: http.StatusBadRequest, field: field, detail: detail}
}

// fieldError is what the policy packages return for bad input.
type fieldError interface {
	error
	InvalidField() string
}

// errNotFound is an unknown route or object.
var errNotFound = errors.New("not found")

// problemFor is the one place that maps an error to an HTTP status.
func problemFor(err error) Problem {
	var re *requestError
	var fe fieldError
	switch {
	case errors.As(err, &re):
		return Problem{Status: re.status, Detail: re.detail, Field: re.field}
	case errors.As(err, &fe):
		return Problem{Status: http.StatusBadRequest, Detail: fe.Error(), Field: fe.InvalidField()}
	case errors.Is(err, breaker.ErrNotFound), errors.Is(err, ratelimit.ErrNotFound), errors.Is(err, errNotFound):
		return Problem{Status: http.StatusNotFound, Detail: err.Error()}
	case errors.Is(err, store.ErrUnavailable):
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
	p.Type = "about:blank"
	p.Title = http.StatusText(p.Status)
	if p.Title == "" {
		p.Title = "Client Closed Request"
	}
	switch {
	case p.Status >= 500 && p.Status != http.StatusServiceUnavailable:
		a.log.ErrorContext(r.Context(), "request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	case p.Status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
		a.log.WarnContext(r.Context(), "store unavailable", slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// setRetryAfter sets Retry-After in whole seconds, rounded up.
func setRetryAfter(w http.ResponseWriter, ms int64) {
	w.Header().Set("Retry-After", strconv.FormatInt((ms+999)/1000, 10))
}

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
