package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/breakwater-dev/breakwater/client"
	"github.com/breakwater-dev/breakwater/client/resilience"
	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/jsonapi"
)

// permitTTL is how long an acquire's permit waits for its outcome before
// the agent forgets it (the call is then not counted).
const permitTTL = 5 * time.Minute

// agent serves the decision endpoints and the proxy routes.
type agent struct {
	c         *client.Client
	log       *slog.Logger
	handler   http.Handler
	ready     atomic.Bool // the control planes were asked at least once
	reachable atomic.Bool // a control plane answered the last check
	requireCP bool        // not ready while no control plane is

	upstream *http.Transport         // the proxy's, to every route's upstream
	routes   map[string]http.Handler // the proxy's handler of each route

	mu      sync.Mutex
	permits map[string]heldPermit
	stop    chan struct{}
	done    chan struct{}
}

// heldPermit is a call an acquire let through, waiting for its outcome.
type heldPermit struct {
	done    func(error)
	breaker string
	expires time.Time
}

func newAgent(c *client.Client, cfg config, log *slog.Logger, reg *prometheus.Registry) *agent {
	a := &agent{c: c, log: log, permits: map[string]heldPermit{}, stop: make(chan struct{}), done: make(chan struct{})}
	a.upstream, a.routes = newUpstreamTransport(), map[string]http.Handler{}
	a.requireCP = cfg.RequireControlPlane
	r := chi.NewRouter()
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "", "no such route: "+r.URL.Path+" (only configured --route names are proxied)")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusMethodNotAllowed, "", r.Method+" is not allowed on "+r.URL.Path)
	})
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", a.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	idem := newIdempotency(reg)
	r.Post("/v1/breakers/{name}/acquire", idem.wrap("acquire", a.acquire))
	r.Post("/v1/breakers/{name}/outcomes", idem.wrap("outcomes", a.outcomes))
	r.Post("/v1/ratelimits/{name}/take", idem.wrap("take", a.take))
	for _, rt := range cfg.Routes {
		p := a.proxy(rt, cfg)
		r.Handle("/"+rt.Name, p)
		r.Handle("/"+rt.Name+"/*", p)
		a.routes[rt.Name] = p
	}
	a.handler = r
	go a.expirePermits()
	return a
}

func (a *agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := routeHandler(a.routes, r); h != nil {
		h.ServeHTTP(w, r)
		return
	}
	a.handler.ServeHTTP(w, r)
}

func (a *agent) close() {
	close(a.stop)
	<-a.done
	a.upstream.CloseIdleConnections()
}

// watchControlPlane asks the control planes whether they are ready, at
// once and then every interval until ctx ends, so that /readyz says what
// holds now: a control plane that comes up after the agent, or goes away,
// shows within one interval.
func (a *agent) watchControlPlane(ctx context.Context, endpoints []string, interval time.Duration) {
	hc := &http.Client{Timeout: min(interval, 3*time.Second)}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		a.reachable.Store(controlPlaneReady(ctx, hc, endpoints))
		a.ready.Store(true)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// controlPlaneReady reports whether any of the control planes answers its
// /readyz with 200.
func controlPlaneReady(ctx context.Context, hc *http.Client, endpoints []string) bool {
	for _, e := range endpoints {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(e, "/")+"/readyz", nil)
		if err != nil {
			continue
		}
		res, err := hc.Do(req)
		if err != nil {
			continue
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			return true
		}
	}
	return false
}

// readyz answers 200 once the control planes were asked, saying whether
// they answer now: the agent serves either way, deciding locally while
// they do not. With --require-controlplane it answers 503 while no
// control plane is ready.
func (a *agent) readyz(w http.ResponseWriter, r *http.Request) {
	if !a.ready.Load() {
		problem(w, http.StatusServiceUnavailable, "", "checking the control planes")
		return
	}
	reachable := a.reachable.Load()
	status := "reachable"
	switch {
	case !reachable:
		status = "unreachable: deciding locally until a control plane answers"
	case a.c.Degraded():
		status = "reachable, still deciding locally (degraded mode) until the client's next probe"
	}
	if !reachable && a.requireCP {
		problem(w, http.StatusServiceUnavailable, "", "no control plane is ready")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "controlplane": status})
}

func (a *agent) expirePermits() {
	defer close(a.done)
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case now := <-t.C:
			a.mu.Lock()
			for id, p := range a.permits {
				if now.After(p.expires) {
					delete(a.permits, id)
				}
			}
			a.mu.Unlock()
		}
	}
}

// acquire answers from the SDK's cache. A call let through gets a permit
// of the agent's own: report its outcome with it, and the SDK counts it
// (timed from this acquire) in its next batched report. Its answers say
// admit_percent 100: the SDK applies a slow start's share itself, acquire
// by acquire, so the caller lets through every call the agent allows.
func (a *agent) acquire(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := contract.ValidateName("name", name); err != nil {
		writeErr(w, err)
		return
	}
	var body struct{}
	if err := decode(w, r, &body, true); err != nil {
		writeErr(w, err)
		return
	}
	b := a.c.Breaker(name)
	done, err := b.Allow(r.Context())
	if err != nil {
		var ra *client.RetryAfterError
		retry := int64(0)
		if errors.As(err, &ra) {
			retry = ra.After.Milliseconds()
		}
		if !errors.Is(err, client.ErrOpen) {
			problem(w, http.StatusServiceUnavailable, "", err.Error())
			return
		}
		jsonapi.SetRetryAfter(w, retry)
		writeJSON(w, http.StatusOK, contract.Decision{State: b.State().String(), RetryAfterMS: retry, CacheTTLMS: retry, AdmitPercent: 100})
		return
	}
	id := newPermitID()
	a.mu.Lock()
	a.permits[id] = heldPermit{done: done, breaker: name, expires: time.Now().Add(permitTTL)}
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, contract.Decision{Allowed: true, State: b.State().String(), Permit: id, AdmitPercent: 100})
}

func newPermitID() string {
	var b [12]byte
	rand.Read(b[:])
	return "ag-" + hex.EncodeToString(b[:])
}

// errCallFailed is what a reported failure is passed to the SDK as.
var errCallFailed = errors.New("call failed (reported to the agent)")

// outcomes counts reported calls in the SDK's batch: those with an agent
// permit through the permit's done func, the others, and the retries among
// them, with Breaker.RecordRetries.
func (a *agent) outcomes(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := contract.ValidateName("name", name); err != nil {
		writeErr(w, err)
		return
	}
	var body contract.OutcomesRequest
	if err := decode(w, r, &body, false); err != nil {
		writeErr(w, err)
		return
	}
	outs, err := contract.ReadOutcomes(body.Outcomes)
	if err == nil {
		err = contract.ValidateOutcomes(outs)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	b := a.c.Breaker(name)
	a.learn(r.Context(), b)
	if b.State() == client.StateNotFound {
		problem(w, http.StatusNotFound, "", "no breaker named "+name)
		return
	}
	for _, o := range outs {
		var err error
		if !o.Success {
			err = errCallFailed
		}
		if o.Permit != "" {
			a.mu.Lock()
			p, ok := a.permits[o.Permit]
			if ok && p.breaker == name {
				delete(a.permits, o.Permit)
			}
			a.mu.Unlock()
			if ok && p.breaker == name {
				p.done(err)
			}
			continue // an unknown permit settles nothing, as on the control plane
		}
		b.RecordRetries(o.Success, time.Duration(o.DurationMS)*time.Millisecond, o.Count, o.Retries)
	}
	st := b.State()
	writeJSON(w, http.StatusOK, contract.Decision{Allowed: st == client.StateUnknown || st == client.StateClosed || st == client.StateForcedClosed,
		State: st.String(), AdmitPercent: 100})
}

// learn makes sure the SDK holds an answer about breaker b before
// outcomes are recorded, as an acquire would have fetched: without one,
// Record could not tell whether the control plane counts them (closed) or
// ignores them (open), and would drop them. It asks as an acquire does and
// settles the call as abandoned, so nothing is counted for it; only the
// first report for a breaker the agent never saw pays for the request.
// (Should that first ask find the breaker half-open, the probe permit it
// got is not reported and goes back after the breaker's probe timeout.)
func (a *agent) learn(ctx context.Context, b *client.Breaker) {
	if b.State() != client.StateUnknown {
		return
	}
	actx, cancel := context.WithCancel(ctx)
	done, err := b.Allow(actx)
	cancel()
	if err == nil {
		done(context.Canceled) // the caller gave up: not an outcome
	}
}

// take spends tokens the SDK leased from the control plane. All or
// nothing: a partial take grants all it asks or none.
func (a *agent) take(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := contract.ValidateName("name", name); err != nil {
		writeErr(w, err)
		return
	}
	req := contract.TakeRequest{Tokens: 1}
	if err := decode(w, r, &req, true); err != nil {
		writeErr(w, err)
		return
	}
	if err := req.Validate(); err != nil {
		writeErr(w, err)
		return
	}
	err := a.c.Limiter(name).For(req.Key).TakeN(r.Context(), int(req.Tokens))
	if err == nil {
		writeJSON(w, http.StatusOK, contract.TakeResult{Allowed: true, Granted: req.Tokens})
		return
	}
	if !errors.Is(err, client.ErrRateLimited) {
		problem(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	var ra *client.RetryAfterError
	retry := int64(0)
	if errors.As(err, &ra) {
		retry = ra.After.Milliseconds()
	}
	jsonapi.SetRetryAfter(w, retry)
	writeJSON(w, http.StatusOK, contract.TakeResult{RetryAfterMS: retry})
}

// proxy forwards /NAME/rest to the route's upstream through the guarded
// transport. What it guarantees about paths, headers, bodies and retries
// is in docs/agent.md.
func (a *agent) proxy(rt route, cfg config) http.Handler {
	// The SDK's Transport: retry outermost, then the breaker, the rate
	// limit and a timeout on the response headers, per attempt.
	tr := &client.Transport{
		Base:    a.upstream,
		Breaker: a.c.Breaker(rt.Name),
		Limiter: a.c.Limiter(rt.Name),
		Retry:   &resilience.Retry{MaxAttempts: cfg.Attempts, BaseDelay: 50 * time.Millisecond, MaxDelay: 2 * time.Second},
		Timeout: cfg.Timeout,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(rt.Upstream)
			// Checked by the handler below before the proxy runs.
			pr.Out.URL.Path, pr.Out.URL.RawPath, _ = upstreamPath(rt.Name, rt.Upstream, pr.In.URL)
			// The agent is the first proxy on the way: what the caller
			// says of earlier hops is dropped (ReverseProxy removes the
			// inbound X-Forwarded-* and Forwarded), and the hop it saw is
			// set.
			pr.SetXForwarded()
		},
		Transport:  tr,
		BufferPool: copyBuffers,
		// FlushInterval 0: the handler's streamWriter flushes each write.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var ra *client.RetryAfterError
			retry := int64(1000)
			if errors.As(err, &ra) {
				retry = max(ra.After.Milliseconds(), 0)
			}
			switch {
			case errors.Is(err, client.ErrOpen):
				jsonapi.SetRetryAfter(w, retry)
				problem(w, http.StatusServiceUnavailable, "", fmt.Sprintf("circuit %s is open: not calling the upstream", rt.Name))
			case errors.Is(err, client.ErrRateLimited):
				jsonapi.SetRetryAfter(w, retry)
				problem(w, http.StatusTooManyRequests, "", fmt.Sprintf("rate limit %s: too many requests", rt.Name))
			case r.Context().Err() != nil && errors.Is(err, context.Canceled):
				// the caller went away: nothing to answer
			case errors.Is(err, client.ErrCaller):
				problem(w, http.StatusRequestTimeout, "", fmt.Sprintf("the request's body did not arrive in time or broke off: %v", err))
			case errors.Is(err, resilience.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
				problem(w, http.StatusGatewayTimeout, "", fmt.Sprintf("upstream %s did not answer within %v", rt.Name, cfg.Timeout))
			default:
				a.log.Warn("upstream failed", "route", rt.Name, "err", err)
				problem(w, http.StatusBadGateway, "", fmt.Sprintf("upstream %s: %v", rt.Name, err))
			}
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, err := upstreamPath(rt.Name, rt.Upstream, r.URL); err != nil {
			problem(w, http.StatusBadRequest, "path", "path: "+err.Error())
			return
		}
		if r.Method == http.MethodConnect {
			problem(w, http.StatusMethodNotAllowed, "", "CONNECT is not proxied: the agent forwards requests to its routes only")
			return
		}
		if !a.prepareBody(w, r, cfg) {
			return
		}
		sw := newStreamWriter(w)
		defer sw.finish()
		rp.ServeHTTP(sw, r)
	})
}

// copyBuffers lends the proxy its 32 KiB copy buffers.
var copyBuffers = &bufferPool{sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}

const copyBufferSize = 32 << 10

// bufferPool pools arrays, not slices: a slice given back converts to its
// array's pointer, so that Put allocates nothing.
type bufferPool struct{ p sync.Pool }

func (bp *bufferPool) Get() []byte { return bp.p.Get().(*[copyBufferSize]byte)[:] }

func (bp *bufferPool) Put(b []byte) {
	if len(b) == copyBufferSize {
		bp.p.Put((*[copyBufferSize]byte)(b))
	}
}

// The agent answers as the control plane does: problem documents, strict
// decoding naming the field at fault.

func problem(w http.ResponseWriter, status int, field, detail string) {
	jsonapi.WriteProblem(w, jsonapi.Problem{Status: status, Detail: detail, Field: field})
}

func writeErr(w http.ResponseWriter, err error) {
	var re *jsonapi.RequestError
	if errors.As(err, &re) {
		problem(w, re.Status, re.Field, re.Detail)
		return
	}
	var fe *contract.FieldError
	if errors.As(err, &fe) {
		problem(w, http.StatusBadRequest, fe.Field, fe.Error())
		return
	}
	problem(w, http.StatusBadRequest, "", err.Error())
}

func writeJSON(w http.ResponseWriter, status int, v any) { jsonapi.WriteJSON(w, status, v) }

func decode(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	return jsonapi.Decode(w, r, v, allowEmpty)
}
