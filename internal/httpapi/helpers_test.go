package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/audit"
	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/events"
	"github.com/breakwater-dev/breakwater/internal/fault"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// testAPI is the API over a store, served by httptest, with every response
// checked against api/openapi.yaml.
type testAPI struct {
	t   *testing.T
	srv *httptest.Server
	// Mini is set when the store is a miniredis with a test clock.
	Mini *storetest.Mini
}

var testStart = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// newTestAPI serves the API over a miniredis whose clock the test drives.
func newTestAPI(t *testing.T, tokens *Tokens) *testAPI {
	t.Helper()
	m := storetest.NewMini(t, testStart)
	ta := serveAPI(t, m.Store, tokens)
	ta.Mini = m
	return ta
}

// serveAPI serves the API over st.
func serveAPI(t *testing.T, st *store.Store, tokens *Tokens) *testAPI {
	t.Helper()
	api := New(Options{Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Faults: fault.NewService(st), Store: st, Tokens: tokens,
		Events: events.NewService(st), Heartbeat: 200 * time.Millisecond, Audit: audit.New(st, nil)})
	srv := httptest.NewServer(specChecked(t, api))
	t.Cleanup(srv.Close)
	t.Cleanup(api.Close)
	return &testAPI{t: t, srv: srv}
}

// response is an answer read whole.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test if it cannot.
func (r response) JSON(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Problem decodes a problem document.
func (r response) Problem(t *testing.T) Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (body %s)", ct, r.Body)
	}
	var p Problem
	r.JSON(t, &p)
	return p
}

// do sends a request with a body (a string is sent as is, anything else as
// JSON) and an optional bearer token.
func (ta *testAPI) do(method, path string, body any, token string) response {
	ta.t.Helper()
	return ta.doHeader(method, path, body, token, nil)
}

// doHeader is do with extra request headers.
func (ta *testAPI) doHeader(method, path string, body any, token string, header map[string]string) response {
	ta.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			ta.t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, ta.srv.URL+path, rd)
	if err != nil {
		ta.t.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := ta.srv.Client().Do(req)
	if err != nil {
		ta.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ta.t.Fatalf("read body: %v", err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// newServer serves h (spec-checked) for the test's lifetime.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(specChecked(t, h))
	t.Cleanup(srv.Close)
	return srv
}
