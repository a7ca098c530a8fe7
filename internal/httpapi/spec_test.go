package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
)

// specFile is api/openapi.yaml, from this package's directory.
const specFile = "../../api/openapi.yaml"

// roleExtension names the weakest role that may call an operation.
const roleExtension = "x-breakwater-role"

// apiSpec is the loaded spec and a router over its paths.
type apiSpec struct {
	doc    *openapi3.T
	router routers.Router
	// problem is the Problem schema, for 404s and 405s of routes the spec
	// does not have.
	problem *openapi3.Schema
	// events is the schema of each event's data on /v1/events, by event
	// name, from the extension eventsExtension.
	events map[string]*openapi3.Schema
}

// eventsExtension, on the media type of /v1/events, names the schema of
// each event's data.
const eventsExtension = "x-breakwater-events"

// loadSpec loads and validates the spec once for the whole test binary.
var loadSpec = sync.OnceValues(func() (*apiSpec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specFile)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", specFile, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("validate %s: %w", specFile, err)
	}
	events, err := eventSchemas(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", specFile, err)
	}
	closeResponseObjects(doc, events)
	// The router matches the servers' scheme and host too; the tests'
	// servers listen on other ports, so route on the paths alone.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", specFile, err)
	}
	problem := doc.Components.Schemas["Problem"]
	if problem == nil || problem.Value == nil {
		return nil, fmt.Errorf("%s: no Problem schema", specFile)
	}
	return &apiSpec{doc: doc, router: router, problem: problem.Value, events: events}, nil
})

// eventSchemas resolves the schemas that eventsExtension names, on the
// 200 answer of GET /v1/events.
func eventSchemas(doc *openapi3.T) (map[string]*openapi3.Schema, error) {
	op := doc.Paths.Find("/v1/events").GetOperation(http.MethodGet)
	if op == nil {
		return nil, errors.New("no GET /v1/events")
	}
	mt := op.Responses.Status(http.StatusOK).Value.Content.Get("text/event-stream")
	if mt == nil {
		return nil, errors.New("GET /v1/events: no text/event-stream answer")
	}
	names, ok := mt.Extensions[eventsExtension].(map[string]any)
	if !ok || len(names) == 0 {
		return nil, fmt.Errorf("GET /v1/events: %s missing or not a map", eventsExtension)
	}
	events := map[string]*openapi3.Schema{}
	for name, v := range names {
		ref, _ := v.(map[string]any)["$ref"].(string)
		schema := doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
		if !strings.HasPrefix(ref, "#/components/schemas/") || schema == nil || schema.Value == nil {
			return nil, fmt.Errorf("%s: event %s: %v is not a reference to a schema of components", eventsExtension, name, v)
		}
		events[name] = schema.Value
	}
	return events, nil
}

// specDoc returns the spec, failing the test if it does not load or is
// not valid OpenAPI.
func specDoc(t *testing.T) *apiSpec {
	t.Helper()
	s, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// closeResponseObjects makes every object schema a response can reach
// reject properties it does not name, unless it says otherwise, and so
// every schema of events' data. The
// published spec leaves them open, so that clients tolerate fields added
// within v1; the tests hold the server to exactly the fields the spec
// names, so that a field added to a handler cannot go unspecified.
func closeResponseObjects(doc *openapi3.T, events map[string]*openapi3.Schema) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(ref *openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if s.Type.Is(openapi3.TypeObject) && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			s.AdditionalProperties.Has = new(false)
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
		for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, sub := range group {
				walk(sub)
			}
		}
	}
	for _, s := range events {
		walk(&openapi3.SchemaRef{Value: s})
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, resp := range op.Responses.Map() {
				if resp.Value == nil {
					continue
				}
				for _, mt := range resp.Value.Content {
					walk(mt.Schema)
				}
			}
		}
	}
}

// specChecked wraps h so that every response is checked against
// api/openapi.yaml: its status must be listed for the operation, and its
// content type, body and headers must match what the spec says of that
// status. A path the spec does not have must be answered 404, a method it
// does not have 405 with Allow naming the path's methods, both with a
// problem document. The client gets the response unchanged.
func specChecked(t *testing.T, h http.Handler) http.Handler {
	t.Helper()
	s := specDoc(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/events" {
			// A stream never ends, so it cannot be recorded whole; the
			// events tests check what it sends.
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		res := rec.Result()
		body, err := decoded(res.Header, rec.Body.Bytes())
		if err == nil {
			err = s.check(r, res.StatusCode, res.Header, body)
		}
		if err != nil {
			t.Errorf("%s %s answered %d, which the spec does not allow: %v\nbody: %s",
				r.Method, r.URL.RequestURI(), res.StatusCode, err, body)
		}
		maps.Copy(w.Header(), res.Header)
		w.WriteHeader(res.StatusCode)
		w.Write(rec.Body.Bytes())
	})
}

// decoded is a response body as the client reads it: gzip undone (the
// metrics handler compresses when the client accepts it).
func decoded(header http.Header, body []byte) ([]byte, error) {
	if header.Get("Content-Encoding") != "gzip" {
		return body, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return body, fmt.Errorf("gzip body: %w", err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		return body, fmt.Errorf("gzip body: %w", err)
	}
	return plain, nil
}

// check validates one response against the spec.
func (s *apiSpec) check(r *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := s.router.FindRoute(r)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		return s.checkProblem("the spec has no such path", http.StatusNotFound, status, header, body)
	case errors.Is(err, routers.ErrMethodNotAllowed):
		if err := s.checkAllow(r.URL.Path, header); err != nil {
			return err
		}
		return s.checkProblem("the spec has no such method on this path", http.StatusMethodNotAllowed, status, header, body)
	case err != nil:
		return fmt.Errorf("find route: %w", err)
	}
	opts := &openapi3filter.Options{
		ExcludeRequestBody:    true,
		IncludeResponseStatus: true,
		MultiError:            true,
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    r,
			PathParams: params,
			Route:      route,
			Options:    opts,
		},
		Status:  status,
		Header:  header.Clone(),
		Options: opts,
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	ref := route.Operation.Responses.Status(status)
	// ValidateResponse lets any body through where the spec lists no content.
	if len(ref.Value.Content) == 0 && len(body) > 0 {
		return fmt.Errorf("the spec gives status %d no content, but the body has %d bytes", status, len(body))
	}
	// What a schema cannot say: a decision carries Retry-After exactly when
	// it denies.
	if ref.Ref == "#/components/responses/Decision" {
		var d struct{ Allowed bool }
		if err := json.Unmarshal(body, &d); err != nil {
			return fmt.Errorf("decision: %w", err)
		}
		if ra := header.Get("Retry-After"); d.Allowed == (ra != "") {
			return fmt.Errorf("allowed is %t and Retry-After is %q: want Retry-After exactly when allowed is false", d.Allowed, ra)
		}
	}
	return nil
}

// checkProblem checks the answer to a request the spec has no operation
// for: it must have status want and a problem document.
func (s *apiSpec) checkProblem(why string, want, status int, header http.Header, body []byte) error {
	if status != want {
		return fmt.Errorf("%s, so want %d", why, want)
	}
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("problem document: %w", err)
	}
	return s.problem.VisitJSON(v, openapi3.VisitAsResponse(), openapi3.MultiErrors())
}

// checkAllow checks that the Allow header of a 405 lists exactly the
// methods the spec gives the path.
func (s *apiSpec) checkAllow(path string, header http.Header) error {
	var want []string
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete} {
		route, _, err := s.router.FindRoute(httptest.NewRequest(m, path, nil))
		if err != nil {
			continue
		}
		for method := range route.PathItem.Operations() {
			want = append(want, method)
		}
		break
	}
	slices.Sort(want)
	var got []string
	for m := range strings.SplitSeq(header.Get("Allow"), ",") {
		if m = strings.TrimSpace(m); m != "" {
			got = append(got, m)
		}
	}
	slices.Sort(got)
	if len(want) == 0 || !slices.Equal(got, want) {
		return fmt.Errorf("Allow = %q, want the methods the spec gives %s: %v", header.Get("Allow"), path, want)
	}
	return nil
}

// specOperations returns "METHOD /path" for every operation in the spec,
// sorted.
func specOperations(t *testing.T) []string {
	t.Helper()
	var ops []string
	for path, item := range specDoc(t).doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

func TestSpecMatchesRoutes(t *testing.T) {
	routes, ok := New(Options{}).handler.(chi.Routes)
	if !ok {
		t.Fatalf("API.handler is %T, not a chi.Routes", New(Options{}).handler)
	}
	var served []string
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served = append(served, method+" "+routeName(route))
		return nil
	})
	if err != nil {
		t.Fatalf("chi.Walk: %v", err)
	}
	slices.Sort(served)
	if diff := cmp.Diff(specOperations(t), served); diff != "" {
		t.Errorf("operations of api/openapi.yaml and routes of routes.go differ (-spec +router):\n%s", diff)
	}
}

// specRoles returns the role of every operation in the spec, keyed by
// "METHOD /path": the value of x-breakwater-role, or "" for an operation
// open to all by default (security: [], or a security list with an empty
// alternative, as /metrics has: a token is optional there unless the server
// runs with --metrics-role). It fails the test for an operation that has
// neither or both, or a role that is not reader, agent or operator.
func specRoles(t *testing.T) map[string]string {
	t.Helper()
	roles := map[string]string{}
	for path, item := range specDoc(t).doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			ext, hasRole := op.Extensions[roleExtension]
			open := op.Security != nil && (len(*op.Security) == 0 ||
				slices.ContainsFunc(*op.Security, func(r openapi3.SecurityRequirement) bool { return len(r) == 0 }))
			switch {
			case open && hasRole:
				t.Errorf("%s: has both security: [] and %s %v; want one", key, roleExtension, ext)
			case open:
				roles[key] = ""
			case !hasRole:
				t.Errorf("%s: has neither %s nor security: []", key, roleExtension)
			default:
				role, _ := ext.(string)
				if _, ok := parseRole(role); !ok {
					t.Errorf("%s: %s = %v, want reader, agent or operator", key, roleExtension, ext)
				}
				roles[key] = role
			}
		}
	}
	return roles
}

func TestSpecOperationsHaveRoles(t *testing.T) {
	roles := specRoles(t)
	if got, want := len(roles), len(specOperations(t)); got != want {
		t.Errorf("specRoles gave %d roles for %d operations", got, want)
	}
}

// TestSpecValidatesResponses drives every operation through its happy path
// and the errors it can answer, so that specChecked sees every response
// shape the spec describes. Steps run in order: each builds on the state
// the ones before left.
func TestSpecValidatesResponses(t *testing.T) {
	ta := newTestAPI(t, nil)
	const b = "/v1/breakers/payments"
	huge := `{"minimum_calls": 1, "pad": "` + strings.Repeat("x", MaxBodyBytes) + `"}`
	var permit string // the probe permit a step below is granted
	steps := []struct {
		name   string
		method string
		path   string
		// body is sent as do sends it; a func() any is called when the
		// step runs, for bodies that use what earlier steps answered.
		body any
		want int
		// then runs after the request, with its answer.
		then func(response)
	}{
		{"healthz", "GET", "/healthz", nil, 200, nil},
		{"readyz", "GET", "/readyz", nil, 200, nil},
		{"metrics", "GET", "/metrics", nil, 200, nil},
		{"list empty", "GET", "/v1/breakers", nil, 200, nil},
		{"health empty", "GET", "/v1/health", nil, 200, nil},
		{"create empty body", "PUT", b, nil, 201, nil},
		{"update", "PUT", b, map[string]any{
			"window": map[string]any{"type": "count", "size": 10}, "minimum_calls": 2,
			"failure_rate_threshold": 50, "open_duration_ms": 1000, "half_open_max_calls": 1,
		}, 200, nil},
		{"create full", "PUT", "/v1/breakers/search.v2_eu-1", `{"window":{"size":60},"consecutive_failures":3,"cache_ttl_ms":500}`, 201, nil},
		{"create with slow start and a retry budget", "PUT", "/v1/breakers/budgeted", `{"slow_start_ms":5000,"retry_budget_percent":10,"retry_budget_min_per_second":0.5}`, 201, nil},
		{"outcomes with retries, lent retries", "POST", "/v1/breakers/budgeted/outcomes", `{"outcomes":[{"success":false,"count":10,"retries":2}]}`, 200, nil},
		{"batch outcomes with retries", "POST", "/v1/outcomes", `{"reports":[{"breaker":"budgeted","outcomes":[{"success":true,"count":5,"retries":1}]}]}`, 200, nil},
		{"400 retries over count", "POST", "/v1/breakers/budgeted/outcomes", `{"outcomes":[{"success":false,"count":2,"retries":3}]}`, 400, nil},
		{"400 slow_start_ms out of range", "PUT", "/v1/breakers/budgeted", `{"slow_start_ms":600001}`, 400, nil},
		{"400 retry_budget_percent out of range", "PUT", "/v1/breakers/budgeted", `{"retry_budget_percent":101}`, 400, nil},
		{"400 retry_budget_min_per_second out of range", "PUT", "/v1/breakers/budgeted", `{"retry_budget_min_per_second":-1}`, 400, nil},
		{"list", "GET", "/v1/breakers", nil, 200, nil},
		{"get", "GET", b, nil, 200, nil},
		{"acquire closed", "POST", b + "/acquire", nil, 200, nil},
		{"acquire empty object", "POST", b + "/acquire", "{}", 200, nil},
		{"outcomes closed", "POST", b + "/outcomes", `{"outcomes":[{"success":true,"duration_ms":12,"count":3}]}`, 200, nil},
		{"batch outcomes, one report failing alone", "POST", "/v1/outcomes", `{"reports":[{"breaker":"payments","outcomes":[{"success":true}]},{"breaker":"nope","outcomes":[{"success":true}]},{"breaker":"payments","outcomes":[{"count":2}]}]}`, 200, nil},
		{"outcomes stale generation", "POST", b + "/outcomes", `{"outcomes":[{"success":false,"generation":999}]}`, 200, nil},
		{"outcomes trip", "POST", b + "/outcomes", `{"outcomes":[{"success":false,"duration_ms":3000,"count":5}]}`, 200, nil},
		{"get open", "GET", b, nil, 200, nil},
		{"health degraded", "GET", "/v1/health", nil, 200, nil},
		{"acquire open", "POST", b + "/acquire", nil, 200, func(response) { ta.Mini.Advance(2 * time.Second) }},
		{"acquire half-open permit", "POST", b + "/acquire", nil, 200, func(res response) {
			var d struct{ Permit string }
			res.JSON(t, &d)
			permit = d.Permit
		}},
		{"acquire half-open denied", "POST", b + "/acquire", nil, 200, nil},
		{"outcomes ignored while half-open", "POST", b + "/outcomes", `{"outcomes":[{"success":true}]}`, 200, nil},
		{"outcomes probe closes", "POST", b + "/outcomes", func() any {
			return map[string]any{"outcomes": []map[string]any{{"success": true, "duration_ms": 5, "permit": permit}}}
		}, 200, nil},
		{"override forced_open", "PUT", b + "/override", `{"state":"forced_open","reason":"incident 42","ttl_ms":60000}`, 200, nil},
		{"acquire forced_open", "POST", b + "/acquire", nil, 200, nil},
		{"override forced_closed", "PUT", b + "/override", `{"state":"forced_closed","reason":"upstream is fine"}`, 200, nil},
		{"acquire forced_closed", "POST", b + "/acquire", nil, 200, nil},
		{"delete override", "DELETE", b + "/override", nil, 200, nil},
		{"reset", "POST", b + "/reset", nil, 200, nil},
		{"reset empty object", "POST", b + "/reset", "{}", 200, nil},
		{"reset with a reason", "POST", b + "/reset", `{"reason":"INC-4211 fixed upstream"}`, 200, nil},
		{"delete override with a reason", "DELETE", b + "/override?reason=INC-4211%20fixed", nil, 200, nil},
		{"400 reset reason", "POST", b + "/reset", `{"reason":""}`, 400, nil},
		{"400 delete override reason", "DELETE", b + "/override?reason=", nil, 400, nil},

		{"400 out of range", "PUT", b, `{"window":{"size":0}}`, 400, nil},
		{"400 unknown field", "PUT", b, `{"minimum_call":3}`, 400, nil},
		{"400 malformed", "PUT", b, `{"minimum_calls":`, 400, nil},
		{"400 bad name", "GET", "/v1/breakers/-bad", nil, 400, nil},
		{"400 acquire body", "POST", b + "/acquire", `{"x":1}`, 400, nil},
		{"400 outcomes missing success", "POST", b + "/outcomes", `{"outcomes":[{"duration_ms":1}]}`, 400, nil},
		{"400 outcomes empty", "POST", b + "/outcomes", `{"outcomes":[]}`, 400, nil},
		{"400 override state", "PUT", b + "/override", `{"state":"open","reason":"x"}`, 400, nil},
		{"400 override ttl", "PUT", b + "/override", `{"state":"forced_open","reason":"x","ttl_ms":0}`, 400, nil},
		{"404 get", "GET", "/v1/breakers/nope", nil, 404, nil},
		{"404 delete", "DELETE", "/v1/breakers/nope", nil, 404, nil},
		{"404 acquire", "POST", "/v1/breakers/nope/acquire", nil, 404, nil},
		{"404 outcomes", "POST", "/v1/breakers/nope/outcomes", `{"outcomes":[{"success":true}]}`, 404, nil},
		{"404 override", "PUT", "/v1/breakers/nope/override", `{"state":"forced_open","reason":"x"}`, 404, nil},
		{"404 delete override", "DELETE", "/v1/breakers/nope/override", nil, 404, nil},
		{"404 reset", "POST", "/v1/breakers/nope/reset", nil, 404, nil},
		{"404 no such route", "GET", "/v2/breakers", nil, 404, nil},
		{"405 wrong method", "PATCH", b, nil, 405, nil},
		{"413 put", "PUT", b, huge, 413, nil},
		{"413 outcomes", "POST", b + "/outcomes", huge, 413, nil},
		{"delete", "DELETE", b, nil, 204, nil},
	}
	for _, st := range steps {
		body := st.body
		if f, ok := body.(func() any); ok {
			body = f()
		}
		res := ta.do(st.method, st.path, body, "")
		if res.Status != st.want {
			t.Errorf("%s: %s %s = %d, want %d (body %s)", st.name, st.method, st.path, res.Status, st.want, res.Body)
		}
		if st.then != nil {
			st.then(res)
		}
	}

	t.Run("auth", func(t *testing.T) {
		tokens, err := ParseTokens(strings.NewReader("ops operator operator-secret-0001\nviewer reader reader-secret-000001\n"))
		if err != nil {
			t.Fatal(err)
		}
		ta := newTestAPI(t, tokens)
		for _, st := range []struct {
			name, method, path, token string
			want                      int
		}{
			{"create", "PUT", b, "operator-secret-0001", 201},
			{"401 missing", "GET", b, "", 401},
			{"401 unknown", "GET", b, "no-such-secret-000000", 401},
			{"403 reader acquires", "POST", b + "/acquire", "reader-secret-000001", 403},
			{"reader gets", "GET", b, "reader-secret-000001", 200},
			{"health needs no token", "GET", "/healthz", "", 200},
		} {
			if res := ta.do(st.method, st.path, nil, st.token); res.Status != st.want {
				t.Errorf("%s: %s %s = %d, want %d (body %s)", st.name, st.method, st.path, res.Status, st.want, res.Body)
			}
		}
	})

	t.Run("store down", func(t *testing.T) {
		ta := newTestAPI(t, nil)
		ta.Mini.Stop(t)
		for _, st := range []struct{ method, path string }{
			{"GET", "/readyz"},
			{"GET", "/v1/breakers"},
			{"GET", "/v1/health"},
			{"POST", b + "/acquire"},
		} {
			res := ta.do(st.method, st.path, nil, "")
			if res.Status != http.StatusServiceUnavailable {
				t.Errorf("%s %s with the store down = %d, want 503 (body %s)", st.method, st.path, res.Status, res.Body)
			}
		}
	})
}

// TestSpecCheckRejects makes sure the checker specChecked relies on fails
// on responses the spec does not allow, so that a passing handler test
// means something.
func TestSpecCheckRejects(t *testing.T) {
	s := specDoc(t)
	const (
		breaker  = `{"name":"b","config":{"window":{"type":"time","size":10},"minimum_calls":20,"failure_rate_threshold":50,"slow_call_duration_ms":60000,"slow_call_rate_threshold":100,"consecutive_failures":0,"open_duration_ms":30000,"half_open_max_calls":1,"probe_timeout_ms":10000,"cache_ttl_ms":1000,"slow_start_ms":0,"retry_budget_percent":0,"retry_budget_min_per_second":0},"state":"closed","since":"2026-11-27T10:00:00Z","stats":{"calls":0,"failures":0,"slow_calls":0,"failure_rate":0,"slow_call_rate":0,"retries":0},"generation":1,"config_version":1,"admit_percent":100}`
		denied   = `{"allowed":false,"state":"open","retry_after_ms":1500,"cache_ttl_ms":1500,"generation":2,"admit_percent":100}`
		allowed  = `{"allowed":true,"state":"closed","retry_after_ms":0,"cache_ttl_ms":1000,"generation":1,"admit_percent":100}`
		problem  = `{"type":"about:blank","title":"Not Found","status":404,"detail":"breaker not found"}`
		jsonCT   = "application/json"
		problemT = "application/problem+json"
	)
	h := func(kv ...string) http.Header {
		hd := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			hd.Set(kv[i], kv[i+1])
		}
		return hd
	}
	tests := []struct {
		name         string
		method, path string
		status       int
		header       http.Header
		body         string
		wantErr      bool
	}{
		{"breaker", "GET", "/v1/breakers/b", 200, h("Content-Type", jsonCT), breaker, false},
		{"denial with Retry-After", "POST", "/v1/breakers/b/acquire", 200, h("Content-Type", jsonCT, "Retry-After", "2"), denied, false},
		{"problem", "GET", "/v1/breakers/b", 404, h("Content-Type", problemT), problem, false},
		{"unknown route 404", "GET", "/nope", 404, h("Content-Type", problemT), problem, false},
		{"unknown method 405", "PATCH", "/v1/breakers/b", 405, h("Content-Type", problemT, "Allow", "GET, PUT, DELETE"), strings.Replace(problem, "404", "405", 1), false},

		{"status not listed", "PUT", "/v1/breakers/b", 404, h("Content-Type", problemT), problem, true},
		{"wrong content type", "GET", "/v1/breakers/b", 404, h("Content-Type", jsonCT), problem, true},
		{"field missing", "GET", "/v1/breakers/b", 200, h("Content-Type", jsonCT), strings.Replace(breaker, `"generation":1`, `"gen":1`, 1), true},
		{"field unspecified", "GET", "/v1/breakers/b", 200, h("Content-Type", jsonCT), strings.Replace(breaker, `"name":"b"`, `"name":"b","owner":"x"`, 1), true},
		{"state not in enum", "GET", "/v1/breakers/b", 200, h("Content-Type", jsonCT), strings.Replace(breaker, `"closed"`, `"tripped"`, 1), true},
		{"time not RFC 3339", "GET", "/v1/breakers/b", 200, h("Content-Type", jsonCT), strings.Replace(breaker, `2026-11-27T10:00:00Z`, `yesterday`, 1), true},
		{"denial without Retry-After", "POST", "/v1/breakers/b/acquire", 200, h("Content-Type", jsonCT), denied, true},
		{"allowed with Retry-After", "POST", "/v1/breakers/b/acquire", 200, h("Content-Type", jsonCT, "Retry-After", "1"), allowed, true},
		{"503 without Retry-After", "GET", "/readyz", 503, h("Content-Type", problemT), strings.Replace(problem, "404", "503", 1), true},
		{"401 without WWW-Authenticate", "GET", "/v1/breakers", 401, h("Content-Type", problemT), strings.Replace(problem, "404", "401", 1), true},
		{"201 without Location", "PUT", "/v1/breakers/b", 201, h("Content-Type", jsonCT), breaker, true},
		{"204 with a body", "DELETE", "/v1/breakers/b", 204, h(), "{}", true},
		{"problem without detail", "GET", "/v1/breakers/b", 404, h("Content-Type", problemT), `{"type":"about:blank","title":"Not Found","status":404}`, true},
		{"unknown route served", "GET", "/nope", 200, h("Content-Type", jsonCT), "{}", true},
		{"unknown method served", "PATCH", "/v1/breakers/b", 200, h("Content-Type", jsonCT), breaker, true},
		{"405 without Allow", "PATCH", "/v1/breakers/b", 405, h("Content-Type", problemT), strings.Replace(problem, "404", "405", 1), true},
		{"405 with a wrong Allow", "PATCH", "/v1/breakers/b", 405, h("Content-Type", problemT, "Allow", "GET, POST"), strings.Replace(problem, "404", "405", 1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			err := s.check(r, tt.status, tt.header, []byte(tt.body))
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("check(%s %s %d) = %v, want error %t", tt.method, tt.path, tt.status, err, tt.wantErr)
			}
		})
	}
}

// TestSpecMethodNotAllowed sends every path of the spec each method it does
// not list: the answer is a 405 whose Allow header names exactly the
// methods the spec lists for the path.
func TestSpecMethodNotAllowed(t *testing.T) {
	ta := newTestAPI(t, nil)
	for tmpl, item := range specDoc(t).doc.Paths.Map() {
		var want []string
		for method := range item.Operations() {
			want = append(want, method)
		}
		slices.Sort(want)
		path := strings.ReplaceAll(tmpl, "{name}", "payments")
		for _, method := range []string{"GET", "PUT", "POST", "DELETE", "PATCH"} {
			if slices.Contains(want, method) {
				continue
			}
			res := ta.do(method, path, nil, "")
			if res.Status != http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want 405 (body %s)", method, path, res.Status, res.Body)
				continue
			}
			if got := res.Header.Get("Allow"); got != strings.Join(want, ", ") {
				t.Errorf("%s %s: Allow = %q, want %q", method, path, got, strings.Join(want, ", "))
			}
		}
	}
}

// TestSpecEventSchemas makes every kind of event and checks each one's
// data against the schema the spec gives its name.
func TestSpecEventSchemas(t *testing.T) {
	s := specDoc(t)
	ta := newTestAPI(t, nil)
	stream, res := ta.openEvents(t, "", "")
	if stream == nil {
		t.Fatalf("GET /v1/events = %d, want 200", res.StatusCode)
	}
	// The replica subscribes to the store's channel in the background:
	// change a breaker until the stream shows it, so no event below is
	// published before the subscription.
	for subscribed, deadline := false, time.After(10*time.Second); !subscribed; {
		ta.do("PUT", "/v1/breakers/warmup", `{}`, "")
		select {
		case e := <-stream.events:
			subscribed = e.Name == "breaker.config"
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("no event on the stream within 10s")
		}
	}
	const b = "/v1/breakers/payments"
	for _, st := range []struct {
		method, path string
		body         string
		event        string
	}{
		{"PUT", b, `{"window":{"type":"count","size":10},"minimum_calls":2}`, "breaker.config"},
		{"POST", b + "/outcomes", `{"outcomes":[{"success":false,"count":2}]}`, "breaker.state"},
		{"DELETE", b, "", "breaker.deleted"},
		{"PUT", "/v1/ratelimits/search", `{"capacity":10,"refill_per_second":1}`, "ratelimit.config"},
		{"DELETE", "/v1/ratelimits/search", "", "ratelimit.deleted"},
	} {
		var body any
		if st.body != "" {
			body = st.body
		}
		if res := ta.do(st.method, st.path, body, ""); res.Status >= 300 {
			t.Fatalf("%s %s = %d (body %s)", st.method, st.path, res.Status, res.Body)
		}
		e := stream.next(named(st.event))
		schema := s.events[e.Name]
		if schema == nil {
			t.Errorf("event %s: the spec gives it no schema in %s", e.Name, eventsExtension)
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(e.Data), &v); err != nil {
			t.Errorf("event %s: data %s: %v", e.Name, e.Data, err)
			continue
		}
		if err := schema.VisitJSON(v, openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
			t.Errorf("event %s: data %s does not match its schema: %v", e.Name, e.Data, err)
		}
	}
}
