package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/breakwater-dev/breakwater/internal/contract"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// endpointDownFor is how long an endpoint that failed is tried only after
// the others.
const endpointDownFor = 5 * time.Second

// maxResponse caps how much of an answer is read: every answer of the
// contract is a few hundred bytes.
const maxResponse = 1 << 20

// controlPlane sends requests to the control plane's replicas: it spreads
// them round-robin over the endpoints and fails over to the next one on a
// connection error, a timeout or a 5xx. An endpoint that failed is tried
// after the others for endpointDownFor, so a dead replica costs callers no
// timeout while others answer. It is safe for concurrent use.
type controlPlane struct {
	endpoints []*endpoint
	token     string
	id        string // this client's id, sent with takes (Breakwater-Client)
	hc        *http.Client
	timeout   time.Duration // of each attempt
	next      atomic.Uint32
}

type endpoint struct {
	base      string       // scheme://host[:port][/prefix], no trailing slash
	downUntil atomic.Int64 // Unix ns; zero when up
}

// errUnreachable is matched by the error of a request that no endpoint
// answered: every one refused the connection, timed out or answered 5xx.
var errUnreachable = errors.New("breakwater: no control plane answered")

// unreachableError is the error of a request no endpoint answered. It
// matches errUnreachable and wraps the last endpoint's error.
type unreachableError struct{ last error }

func (e *unreachableError) Error() string {
	return "breakwater: no control plane answered: " + e.last.Error()
}
func (e *unreachableError) Unwrap() []error { return []error{errUnreachable, e.last} }

// apiCapError is a control plane's 429: the token is over the API's own
// request cap, which is fleet-wide, so no other replica would serve it
// either. It is an outage of the control plane for this client, never a
// refusal of the caller's call (a rate limit's "no" is a 200 with
// "allowed": false). After is the answer's Retry-After.
type apiCapError struct {
	status *StatusError
	after  time.Duration
}

func (e *apiCapError) Error() string { return e.status.Error() }
func (e *apiCapError) Unwrap() error { return e.status }

// retryAfterOf returns the wait a control plane's 429 asked for, or 0.
func retryAfterOf(err error) time.Duration {
	var ce *apiCapError
	if errors.As(err, &ce) {
		return ce.after
	}
	return 0
}

// StatusError is a control plane's answer that is an error of the
// request (a 4xx problem document): the token is unknown (401) or too weak
// (403), the breaker or limit does not exist (404), a value is out of
// range (400).
type StatusError struct {
	// Method and Path are the request's.
	Method, Path string
	// Status is the HTTP status code.
	Status int
	// Detail is the problem document's detail, or the body's start.
	Detail string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("breakwater: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// isNotFound reports whether err is a control plane's 404.
func isNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == http.StatusNotFound
}

func newControlPlane(endpoints []string, token string, hc *http.Client, timeout time.Duration) (*controlPlane, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("breakwater: Config.Endpoints is empty")
	}
	cp := &controlPlane{token: token, hc: hc, timeout: timeout, id: newClientID()}
	for _, e := range endpoints {
		u, err := url.Parse(strings.TrimSpace(e))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("breakwater: endpoint %q: want an http:// or https:// URL", e)
		}
		cp.endpoints = append(cp.endpoints, &endpoint{base: strings.TrimRight(u.String(), "/")})
	}
	return cp, nil
}

// order returns the endpoints in the order to try them: round-robin from
// the next one, with those that failed lately moved to the end.
func (cp *controlPlane) order(now int64) []*endpoint {
	n := len(cp.endpoints)
	if n == 1 {
		return cp.endpoints
	}
	start := int(cp.next.Add(1)-1) % n
	out := make([]*endpoint, 0, n)
	var down []*endpoint
	for i := range n {
		e := cp.endpoints[(start+i)%n]
		if e.downUntil.Load() > now {
			down = append(down, e)
			continue
		}
		out = append(out, e)
	}
	return append(out, down...)
}

// do sends a request with body (nil for none) as JSON and decodes a 2xx
// answer into out (nil to discard it). It returns the answer's headers.
// A 4xx is a *StatusError; an answer from no endpoint is an error that
// matches errUnreachable; when ctx ends first, ctx's error.
//
// key, when not empty, is sent as the Idempotency-Key header of every
// attempt. Only a request with a key is sent again after it may have been
// applied (written, then no answer, a 5xx or an answer that does not
// decode): the control plane applies a key once and replays its first
// answer to a repeat, so the retry is safe. A request without a key is
// tried on the next endpoint only when the last one cannot have applied
// it, or when it changes nothing (a GET). See docs/client-faults.md.
func (cp *controlPlane) do(ctx context.Context, method, path, key string, body, out any) (http.Header, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	var last error
	for _, e := range cp.order(time.Now().UnixNano()) {
		h, retry, err := cp.attempt(ctx, e, method, path, key, payload, out)
		if !retry {
			if err == nil {
				e.downUntil.Store(0)
			}
			return h, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e.downUntil.Store(time.Now().Add(endpointDownFor).UnixNano())
		last = err
	}
	return nil, &unreachableError{last: last}
}

// attempt sends one request to one endpoint. It reports retry when the
// next endpoint should be tried: the endpoint did not answer in time,
// answered 5xx, or answered 2xx with a body that does not decode. A
// request that may have been applied is retried only when it has a key
// or is a GET.
func (cp *controlPlane) attempt(ctx context.Context, e *endpoint, method, path, key string, payload []byte, out any) (http.Header, bool, error) {
	actx, cancel := context.WithTimeout(ctx, cp.timeout)
	defer cancel()
	safe := key != "" || method == http.MethodGet
	var wrote atomic.Bool
	if !safe {
		actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
		})
	}
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, method, e.base+path, rd)
	if err != nil {
		return nil, false, err
	}
	cp.header(req, payload != nil)
	if key != "" {
		req.Header.Set(contract.IdempotencyKeyHeader, key)
	}
	resp, err := cp.hc.Do(req)
	if err != nil {
		return nil, !wrote.Load(), err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxResponse)
	switch {
	case resp.StatusCode >= 500:
		io.Copy(io.Discard, body)
		return nil, safe, &StatusError{Method: method, Path: path, Status: resp.StatusCode, Detail: "server error"}
	case resp.StatusCode == http.StatusTooManyRequests:
		// The API's per-token cap, shared by every replica: the next one
		// would refuse as well.
		se := statusError(method, path, resp.StatusCode, body)
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return nil, false, &unreachableError{last: &apiCapError{status: se, after: time.Duration(max(ra, 0)) * time.Second}}
	case resp.StatusCode >= 400:
		return nil, false, statusError(method, path, resp.StatusCode, body)
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(body).Decode(out); err != nil {
			return nil, safe, fmt.Errorf("breakwater: %s %s: decode answer: %w", method, path, err)
		}
	}
	io.Copy(io.Discard, body)
	return resp.Header, false, nil
}

// stream opens a long-lived GET (the event stream) on the first endpoint
// that answers 200, waiting at most the request timeout for its headers.
// The caller reads and closes the body; cancelling ctx ends the stream.
func (cp *controlPlane) stream(ctx context.Context, path string) (*http.Response, error) {
	var last error
	for _, e := range cp.order(time.Now().UnixNano()) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+path, nil)
		if err != nil {
			return nil, err
		}
		cp.header(req, false)
		req.Header.Set("Accept", "text/event-stream")
		// The client's own Timeout would cut the stream: wait for the
		// headers only.
		timedOut := atomic.Bool{}
		sctx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(cp.timeout, func() { timedOut.Store(true); cancel() })
		resp, err := cp.hc.Do(req.WithContext(sctx))
		stopped := timer.Stop()
		if err == nil && resp.StatusCode == http.StatusOK && stopped {
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		}
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch {
		case err != nil:
			last = err
		case timedOut.Load():
			resp.Body.Close()
			last = errors.New("timed out")
		default:
			last = statusError(http.MethodGet, path, resp.StatusCode, io.LimitReader(resp.Body, maxResponse))
			if ra, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && resp.StatusCode == http.StatusTooManyRequests {
				last = &RetryAfterError{Err: last, After: time.Duration(ra) * time.Second}
			}
			resp.Body.Close()
		}
	}
	return nil, &unreachableError{last: last}
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	c.cancel()
	return c.ReadCloser.Close()
}

func (cp *controlPlane) header(req *http.Request, hasBody bool) {
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "breakwater-go-client/1")
	req.Header.Set(contract.ClientHeader, cp.id)
	if cp.token != "" {
		req.Header.Set("Authorization", "Bearer "+cp.token)
	}
}

// statusError reads a problem document into a *StatusError.
func statusError(method, path string, status int, body io.Reader) *StatusError {
	b, _ := io.ReadAll(body)
	var p struct {
		Detail string `json:"detail"`
	}
	detail := ""
	if json.Unmarshal(b, &p) == nil {
		detail = p.Detail
	} else if len(b) > 0 {
		detail = strings.TrimSpace(string(b[:min(len(b), 200)]))
	}
	return &StatusError{Method: method, Path: path, Status: status, Detail: detail}
}

// decision is the control plane's answer to acquire and outcomes.
type decision = contract.Decision

// outcome is one entry of an outcomes report. A Generation of 0 or less
// is one the client does not know, and is not sent (see outcomesRequest).
type outcome = contract.Outcome

// outcomesRequest is a report as it travels.
func outcomesRequest(outs []outcome) contract.OutcomesRequest {
	req := contract.OutcomesRequest{Outcomes: make([]contract.OutcomeEntry, len(outs))}
	for i, o := range outs {
		if o.Generation <= 0 {
			o.Generation = contract.NoGeneration
		}
		req.Outcomes[i] = o.Entry()
	}
	return req
}

// breakerView is the part of GET /v1/breakers/{name} the client reads.
type breakerView struct {
	Config     breakerConfig `json:"config"`
	State      string        `json:"state"`
	Generation int64         `json:"generation"`
	Override   *struct {
		State     string     `json:"state"`
		ExpiresAt *time.Time `json:"expires_at"`
	} `json:"override"`
}

// takeRequest and takeResult are the body and answer of a rate limit's take.
type (
	takeRequest = contract.TakeRequest
	takeResult  = contract.TakeResult
)

// limitView is GET /v1/ratelimits/{name}.
type limitView = contract.RateLimit

func breakerPath(name, op string) string {
	p := "/v1/breakers/" + url.PathEscape(name)
	if op != "" {
		p += "/" + op
	}
	return p
}

func limitPath(name, op string) string {
	p := "/v1/ratelimits/" + url.PathEscape(name)
	if op != "" {
		p += "/" + op
	}
	return p
}

func (cp *controlPlane) acquire(ctx context.Context, name string) (decision, error) {
	var d decision
	_, err := cp.do(ctx, http.MethodPost, breakerPath(name, "acquire"), newIdempotencyKey(), struct{}{}, &d)
	return d, err
}

// report sends one outcomes report under key, which names this report
// and no other: a retry of it, and only that, sends the same key.
func (cp *controlPlane) report(ctx context.Context, name, key string, outs []outcome) (decision, error) {
	var d decision
	_, err := cp.do(ctx, http.MethodPost, breakerPath(name, "outcomes"), key, outcomesRequest(outs), &d)
	return d, err
}

// batchReport is one breaker's report in POST /v1/outcomes; batchRequest
// gives it its wire form.
type batchReport struct {
	Breaker  string
	Outcomes []outcome
}

// batchRequest is a batch of reports as it travels.
func batchRequest(reports []batchReport) contract.BatchRequest {
	req := contract.BatchRequest{Reports: make([]contract.BatchReport, len(reports))}
	for i, r := range reports {
		req.Reports[i] = contract.BatchReport{Breaker: r.Breaker, Outcomes: outcomesRequest(r.Outcomes).Outcomes}
	}
	return req
}

// batchResult answers one report of a batch: the breaker's decision, or
// the report's own problem.
type batchResult struct {
	decision
	Error *struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	} `json:"error"`
}

// reportBatch sends every breaker's report in one request under key, and
// returns one result per report, in order.
//
// A report the control plane answers 5xx for alone (its store call timed
// out, maybe after it applied) is neither known applied nor known lost, so
// the whole batch is sent again under the same key, once per endpoint (at
// least once more): the store replays the reports it already applied and applies only
// the others, so every outcome is counted once.
func (cp *controlPlane) reportBatch(ctx context.Context, key string, reports []batchReport) ([]batchResult, error) {
	var out struct {
		Results []batchResult `json:"results"`
	}
	for range max(len(cp.endpoints), 2) {
		out.Results = nil
		if _, err := cp.do(ctx, http.MethodPost, "/v1/outcomes", key, batchRequest(reports), &out); err != nil {
			return nil, err
		}
		if len(out.Results) != len(reports) {
			return nil, fmt.Errorf("breakwater: POST /v1/outcomes: %d results for %d reports", len(out.Results), len(reports))
		}
		if !anyUnsettled(out.Results) || ctx.Err() != nil {
			break
		}
	}
	return out.Results, nil
}

// anyUnsettled reports whether a result of a batch is a 5xx: a report
// that may or may not have been applied.
func anyUnsettled(results []batchResult) bool {
	for _, r := range results {
		if r.Error != nil && r.Error.Status >= 500 {
			return true
		}
	}
	return false
}

func (cp *controlPlane) getBreaker(ctx context.Context, name string) (breakerView, error) {
	var v breakerView
	v.Config = defaultBreakerConfig()
	_, err := cp.do(ctx, http.MethodGet, breakerPath(name, ""), "", nil, &v)
	return v, err
}

// takeAnswer is what a take's headers say besides its body.
type takeAnswer struct {
	capacity int64 // RateLimit-Limit
	clients  int64 // Breakwater-Clients: the limit's takers, fleet-wide; 0 when not said
}

func (cp *controlPlane) take(ctx context.Context, name string, req takeRequest) (takeResult, takeAnswer, error) {
	var r takeResult
	h, err := cp.do(ctx, http.MethodPost, limitPath(name, "take"), newIdempotencyKey(), req, &r)
	if err != nil {
		return r, takeAnswer{}, err
	}
	var a takeAnswer
	a.capacity, _ = strconv.ParseInt(h.Get("RateLimit-Limit"), 10, 64)
	a.clients, _ = strconv.ParseInt(h.Get(contract.ClientsHeader), 10, 64)
	return r, a, nil
}

// newClientID names this client to the control plane, which counts the
// clients taking from each limit so each can hold a fair share of it while
// degraded. It is random: it says nothing of the host.
func newClientID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newIdempotencyKey returns a key for one logical decision request: 32
// random hex digits, within the API's 1..128 printable ASCII characters.
func newIdempotencyKey() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (cp *controlPlane) getLimit(ctx context.Context, name string) (limitView, error) {
	var v limitView
	_, err := cp.do(ctx, http.MethodGet, limitPath(name, ""), "", nil, &v)
	return v, err
}

// isUnauthorized reports whether err is a refused token (401): the control
// plane cannot be used, as if it did not answer.
func isUnauthorized(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == http.StatusUnauthorized
}

// isForbidden reports whether err is a 403: the token is known but its
// role may not decide (a reader's token). That is a configuration error,
// not an outage: the control plane answers, and a probe of it would
// succeed, so treating it as one would flap in and out of degraded mode.
func isForbidden(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == http.StatusForbidden
}
