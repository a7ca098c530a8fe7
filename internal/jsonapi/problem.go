// Package jsonapi is the JSON side of Breakwater's HTTP servers, shared by
// the control plane and the agent: strict request decoding that names the
// field at fault, and RFC 9457 problem documents.
package jsonapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// Problem is an RFC 9457 problem document (contract.Problem).
type Problem = contract.Problem

// RequestError is a fault of the request itself: bad JSON, an oversized
// body, a missing field. Status is the HTTP status it earns.
type RequestError struct {
	Status int
	Field  string
	Detail string
}

func (e *RequestError) Error() string { return e.Detail }

// BadRequest is a 400 naming field ("" when no one field is at fault).
func BadRequest(field, detail string) error {
	return &RequestError{Status: http.StatusBadRequest, Field: field, Detail: detail}
}

// WriteProblem answers with p, filling in its type and title.
func WriteProblem(w http.ResponseWriter, p Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Title == "" {
		p.Title = "Client Closed Request"
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// SetRetryAfter sets Retry-After to ms in whole seconds, rounded up.
func SetRetryAfter(w http.ResponseWriter, ms int64) {
	w.Header().Set("Retry-After", strconv.FormatInt((max(ms, 0)+999)/1000, 10))
}
