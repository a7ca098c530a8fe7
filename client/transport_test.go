package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/breakwater-dev/breakwater/client/resilience"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// These tests send real HTTP requests through a Transport to httptest
// dependencies that fail on demand, with breakers and limits kept by a
// real control plane over a real redis-server.

// dependency is an HTTP server standing for a service's dependency. It
// counts the requests it gets and answers each with the next of answers
// (the last one again and again when they run out).
type dependency struct {
	*httptest.Server
	hits   atomic.Int64
	mu     sync.Mutex
	bodies []string // the request bodies, in order
}

// reply is how a dependency answers one request.
type reply struct {
	status int
	header map[string]string
	body   string
}

func startDependency(t *testing.T, answers ...reply) *dependency {
	t.Helper()
	d := &dependency{}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := d.hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		d.mu.Lock()
		d.bodies = append(d.bodies, string(b))
		d.mu.Unlock()
		a := answers[min(int(n), len(answers))-1]
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *dependency) requestBodies() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.bodies...)
}

// countingBodies is a Base transport that counts the response bodies it
// hands out and those closed since.
type countingBodies struct {
	opened, closed atomic.Int64
}

func (cb *countingBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	cb.opened.Add(1)
	resp.Body = &closeCounter{ReadCloser: resp.Body, n: &cb.closed}
	return resp, nil
}

type closeCounter struct {
	io.ReadCloser
	n    *atomic.Int64
	once sync.Once
}

func (c *closeCounter) Close() error {
	c.once.Do(func() { c.n.Add(1) })
	return c.ReadCloser.Close()
}

// sleeps records Retry's waits instead of waiting.
type sleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// transportPlane starts a control plane over a fresh redis-server and a
// client of it that flushes every 10 ms.
func transportPlane(t *testing.T) (*plane, *Client) {
	t.Helper()
	p := startPlane(t, storetest.StartRedis(t))
	c := newTestClient(t, Config{FlushInterval: 10 * time.Millisecond}, p.URL)
	return p, c
}

// get sends a GET through hc and returns the response with its body
// read, or the error.
func get(t *testing.T, hc *http.Client, url string) (int, string, error) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b), nil
}

// tripsFast is a breaker that opens at 50% failures once 5 calls are in
// its window, for a minute.
var tripsFast = map[string]any{
	"window": map[string]any{"type": "count", "size": 10}, "minimum_calls": 5,
	"failure_rate_threshold": 50, "open_duration_ms": 60000,
}

func TestTransportTripsOn5xxThenFailsFast(t *testing.T) {
	p, c := transportPlane(t)
	p.putBreaker("inventory", tripsFast)
	dep := startDependency(t, reply{status: http.StatusInternalServerError, body: "boom"})
	s := &sleeps{}
	tr := &Transport{
		Breaker: c.Breaker("inventory"),
		Retry:   &resilience.Retry{MaxAttempts: 3, MaxDelay: time.Second}, sleep: s.sleep,
	}
	hc := tr.Client()

	for i := range 5 {
		// Without retries: a POST with no idempotency key gets one attempt.
		resp, err := hc.Post(dep.URL, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatalf("POST %d = %v, want the 500 response", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("POST %d status = %d, want 500", i, resp.StatusCode)
		}
	}
	waitFor(t, 2*time.Second, "the breaker open", func() bool { return tr.Breaker.State() == StateOpen })
	hits := dep.hits.Load()

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, dep.URL, nil)
		resp, err := hc.Do(req)
		if resp != nil {
			resp.Body.Close()
		}
		var ra *RetryAfterError
		if !errors.Is(err, ErrOpen) || !errors.As(err, &ra) || ra.After <= 30*time.Second {
			t.Errorf("%s on an open breaker = %v, want ErrOpen with the open time as Retry-After", method, err)
		}
	}
	if got := dep.hits.Load(); got != hits {
		t.Errorf("the dependency got %d requests while the breaker was open, want 0", got-hits)
	}
	if got := s.got(); len(got) != 0 {
		t.Errorf("Retry waited %v on a refusal longer than its MaxDelay, want no wait", got)
	}
}

func TestTransport4xxDoNotTrip(t *testing.T) {
	p, c := transportPlane(t)
	p.putBreaker("catalog", map[string]any{"minimum_calls": 5}) // a 10 s time window holds every call
	dep := startDependency(t, reply{status: http.StatusNotFound})
	hc := (&Transport{Breaker: c.Breaker("catalog")}).Client()
	for i := range 20 {
		status, _, err := get(t, hc, dep.URL)
		if err != nil || status != http.StatusNotFound {
			t.Fatalf("GET %d = %d, %v, want 404", i, status, err)
		}
	}
	c.Close() // reports what is pending
	v := p.getBreaker("catalog")
	if v.State != "closed" || v.Stats.Calls != 20 || v.Stats.Failures != 0 {
		t.Errorf("after 20 404s: state %q, %d calls, %d failures; want closed, 20 calls, 0 failures",
			v.State, v.Stats.Calls, v.Stats.Failures)
	}
}

func TestTransportRetries(t *testing.T) {
	p, c := transportPlane(t)
	failTwice := []reply{
		{status: http.StatusServiceUnavailable, body: "busy 1"},
		{status: http.StatusBadGateway, body: "busy 2"},
		{status: http.StatusOK, body: "ok"},
	}
	// Rand 0.5: the waits are half of each ceiling, 100 ms doubling.
	backoff := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}
	tests := []struct {
		name       string
		method     string
		body       func() io.Reader // nil: no body
		header     map[string]string
		answers    []reply
		wantHits   int64
		wantStatus int
		wantWaits  []time.Duration
	}{
		{name: "GET is retried", method: http.MethodGet, answers: failTwice,
			wantHits: 3, wantStatus: http.StatusOK, wantWaits: backoff},
		{name: "DELETE is retried", method: http.MethodDelete, answers: failTwice,
			wantHits: 3, wantStatus: http.StatusOK, wantWaits: backoff},
		{name: "POST without an idempotency key is not", method: http.MethodPost,
			body: func() io.Reader { return strings.NewReader("charge") }, answers: failTwice,
			wantHits: 1, wantStatus: http.StatusServiceUnavailable},
		{name: "POST with an idempotency key and a replayable body is", method: http.MethodPost,
			body:   func() io.Reader { return strings.NewReader("charge") },
			header: map[string]string{"Idempotency-Key": "order-42"}, answers: failTwice,
			wantHits: 3, wantStatus: http.StatusOK, wantWaits: backoff},
		{name: "PUT whose body cannot be replayed is not", method: http.MethodPut,
			body:    func() io.Reader { return struct{ io.Reader }{strings.NewReader("charge")} },
			answers: failTwice, wantHits: 1, wantStatus: http.StatusServiceUnavailable},
		{name: "gives up after MaxAttempts with the last response", method: http.MethodGet,
			answers:  []reply{{status: http.StatusInternalServerError, body: "down"}},
			wantHits: 4, wantStatus: http.StatusInternalServerError,
			wantWaits: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}},
		{name: "a 4xx is final", method: http.MethodGet,
			answers:  []reply{{status: http.StatusConflict}},
			wantHits: 1, wantStatus: http.StatusConflict},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "dep-" + string(rune('a'+i))
			p.putBreaker(name, nil)
			dep := startDependency(t, tt.answers...)
			bodies := &countingBodies{}
			s := &sleeps{}
			tr := &Transport{
				Base:    bodies,
				Breaker: c.Breaker(name),
				Retry:   &resilience.Retry{MaxAttempts: 4, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}, jitter: func() float64 { return 0.5 }, sleep: s.sleep,
			}
			var body io.Reader
			if tt.body != nil {
				body = tt.body()
			}
			req, err := http.NewRequest(tt.method, dep.URL, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := tr.Client().Do(req)
			if err != nil {
				t.Fatalf("%s = %v, want a response", tt.method, err)
			}
			if got := bodies.closed.Load(); got != tt.wantHits-1 {
				t.Errorf("%d response bodies closed before the caller's, want the %d retried ones", got, tt.wantHits-1)
			}
			last, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || string(last) != tt.answers[min(len(tt.answers), int(tt.wantHits))-1].body {
				t.Errorf("%s = %d %q, want %d and the last answer's body", tt.method, resp.StatusCode, last, tt.wantStatus)
			}
			if got := dep.hits.Load(); got != tt.wantHits {
				t.Errorf("the dependency got %d requests, want %d", got, tt.wantHits)
			}
			if diff := cmp.Diff(tt.wantWaits, s.got()); diff != "" {
				t.Errorf("waits mismatch (-want +got):\n%s", diff)
			}
			if tt.body != nil {
				for i, b := range dep.requestBodies() {
					if b != "charge" {
						t.Errorf("attempt %d sent body %q, want %q", i+1, b, "charge")
					}
				}
			}
		})
	}
	// Every attempt was counted on its own: failures as failures.
	c.Close()
	if v := p.getBreaker("dep-a"); v.Stats.Calls != 3 || v.Stats.Failures != 2 {
		t.Errorf("GET's breaker counted %d calls, %d failures; want 3 calls, 2 failures", v.Stats.Calls, v.Stats.Failures)
	}
}

func TestTransportHonoursRetryAfter(t *testing.T) {
	p, c := transportPlane(t)
	p.putBreaker("search", nil)
	tests := []struct {
		name       string
		answers    []reply
		wantHits   int64
		wantStatus int
		wantWaits  []time.Duration
	}{
		{
			name: "429 with seconds",
			answers: []reply{
				{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "2"}},
				{status: http.StatusOK},
			},
			wantHits: 2, wantStatus: http.StatusOK, wantWaits: []time.Duration{2 * time.Second},
		},
		{
			name: "503 with seconds",
			answers: []reply{
				{status: http.StatusServiceUnavailable, header: map[string]string{"Retry-After": "3"}},
				{status: http.StatusOK},
			},
			wantHits: 2, wantStatus: http.StatusOK, wantWaits: []time.Duration{3 * time.Second},
		},
		{
			name: "longer than MaxDelay: the caller gets the answer at once",
			answers: []reply{
				{status: http.StatusServiceUnavailable, header: map[string]string{"Retry-After": "120"}, body: "come back later"},
			},
			wantHits: 1, wantStatus: http.StatusServiceUnavailable,
		},
		{
			name: "429 without Retry-After: backoff alone",
			answers: []reply{
				{status: http.StatusTooManyRequests},
				{status: http.StatusOK},
			},
			wantHits: 2, wantStatus: http.StatusOK, wantWaits: []time.Duration{0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dep := startDependency(t, tt.answers...)
			s := &sleeps{}
			tr := &Transport{
				Breaker: c.Breaker("search"),
				Retry:   &resilience.Retry{MaxDelay: 5 * time.Second}, jitter: func() float64 { return 0 }, sleep: s.sleep,
			}
			status, body, err := get(t, tr.Client(), dep.URL)
			if err != nil || status != tt.wantStatus {
				t.Fatalf("GET = %d, %v, want %d", status, err, tt.wantStatus)
			}
			if want := tt.answers[tt.wantHits-1].body; body != want {
				t.Errorf("GET body = %q, want %q", body, want)
			}
			if got := dep.hits.Load(); got != tt.wantHits {
				t.Errorf("the dependency got %d requests, want %d", got, tt.wantHits)
			}
			if diff := cmp.Diff(tt.wantWaits, s.got()); diff != "" {
				t.Errorf("waits mismatch (-want +got):\n%s", diff)
			}
		})
	}
	// A 429 is the dependency answering: not a failure. The 503s are.
	c.Close()
	if v := p.getBreaker("search"); v.Stats.Failures != 2 {
		t.Errorf("breaker counted %d failures, want the 2 503s", v.Stats.Failures)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	tests := []struct {
		name   string
		status int
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"seconds", 429, "7", 7 * time.Second, true},
		{"zero", 503, "0", 0, true},
		{"spaces", 503, " 3 ", 3 * time.Second, true},
		{"past date", 503, "Wed, 21 Oct 2015 07:28:00 GMT", 0, true},
		{"negative", 429, "-1", 0, false},
		{"garbage", 429, "soon", 0, false},
		{"absent", 429, "", 0, false},
		{"not 429 or 503", 500, "7", 0, false},
		{"huge", 503, "99999999999999", maxRetryAfter, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			if tt.value != "" {
				resp.Header.Set("Retry-After", tt.value)
			}
			got, ok := retryAfterHeader(resp)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("retryAfterHeader(%d, %q) = %v, %v, want %v, %v", tt.status, tt.value, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	resp := &http.Response{StatusCode: 503, Header: http.Header{}}
	resp.Header.Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
	if got, ok := retryAfterHeader(resp); !ok || got < 58*time.Minute || got > time.Hour {
		t.Errorf("retryAfterHeader(an hour from now) = %v, %v, want about an hour", got, ok)
	}
}

func TestTransportReplayable(t *testing.T) {
	withBody := func(method string) *http.Request {
		r, _ := http.NewRequest(method, "http://dep/", strings.NewReader("x"))
		return r
	}
	streamed := func(method string) *http.Request {
		r, _ := http.NewRequest(method, "http://dep/", struct{ io.Reader }{strings.NewReader("x")})
		return r
	}
	keyed := func(header string, r *http.Request) *http.Request {
		r.Header.Set(header, "k-1")
		return r
	}
	tests := []struct {
		name string
		req  *http.Request
		want bool
	}{
		{"GET", httptest.NewRequest(http.MethodGet, "/", nil), true},
		{"HEAD", httptest.NewRequest(http.MethodHead, "/", nil), true},
		{"OPTIONS", httptest.NewRequest(http.MethodOptions, "/", nil), true},
		{"PUT with a bytes body", withBody(http.MethodPut), true},
		{"DELETE", withBody(http.MethodDelete), true},
		{"POST", withBody(http.MethodPost), false},
		{"PATCH", withBody(http.MethodPatch), false},
		{"POST with Idempotency-Key", keyed("Idempotency-Key", withBody(http.MethodPost)), true},
		{"POST with X-Idempotency-Key", keyed("X-Idempotency-Key", withBody(http.MethodPost)), true},
		{"PUT with a streamed body", streamed(http.MethodPut), false},
		{"POST with a key and a streamed body", keyed("Idempotency-Key", streamed(http.MethodPost)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (&Transport{}).replayable(tt.req); got != tt.want {
				t.Errorf("replayable(%s) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestTransportCallerCancelIsNotAFailure(t *testing.T) {
	p, c := transportPlane(t)
	p.putBreaker("reports", nil)
	arrived := make(chan struct{}, 1)
	var hits atomic.Int64
	dep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		arrived <- struct{}{}
		<-r.Context().Done() // the caller hangs up
	}))
	t.Cleanup(dep.Close)
	s := &sleeps{}
	tr := &Transport{Breaker: c.Breaker("reports"), Retry: &resilience.Retry{}, sleep: s.sleep, Timeout: time.Minute}

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, dep.URL, nil)
	go func() {
		<-arrived
		cancel()
	}()
	_, err := tr.Client().Do(req)
	if !errors.Is(err, context.Canceled) || errors.Is(err, resilience.ErrTimeout) {
		t.Fatalf("GET cancelled by the caller = %v, want context.Canceled and no resilience.ErrTimeout", err)
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("the dependency got %d requests, want 1: no retry after the caller gave up", got)
	}
	c.Close()
	if v := p.getBreaker("reports"); v.Stats.Calls != 0 {
		t.Errorf("breaker counted %d calls, want 0: the caller's cancellation is not an outcome", v.Stats.Calls)
	}
}

func TestTransportTimeoutCoversHeadersOnly(t *testing.T) {
	p, c := transportPlane(t)
	p.putBreaker("media", nil)
	const timeout = 30 * time.Millisecond
	more := make(chan struct{})
	dep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select { // no headers within the timeout
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		io.WriteString(w, "part 1\n")
		w.(http.Flusher).Flush()
		select {
		case <-more:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "part 2\n")
	}))
	t.Cleanup(dep.Close)
	bh := resilience.NewBulkhead(1, 0)
	tr := &Transport{Breaker: c.Breaker("media"), Bulkhead: bh, Timeout: timeout}
	hc := tr.Client()

	t.Run("streaming body outlives the timeout", func(t *testing.T) {
		resp, err := hc.Get(dep.URL + "/stream")
		if err != nil {
			t.Fatalf("GET /stream = %v", err)
		}
		time.Sleep(3 * timeout) // the attempt's deadline would have passed
		close(more)
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "part 1\npart 2\n" {
			t.Errorf("body = %q, %v; want both parts", b, err)
		}
		if got := bh.InFlight(); got != 0 {
			t.Errorf("bulkhead InFlight() after the body's end = %d, want 0", got)
		}
		resp.Body.Close()
	})
	t.Run("no headers within the timeout", func(t *testing.T) {
		start := time.Now()
		_, err := hc.Get(dep.URL + "/slow")
		var ue *url.Error
		if !errors.Is(err, resilience.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ue) || !ue.Timeout() {
			t.Errorf("GET /slow = %v, want resilience.ErrTimeout, a timeout *url.Error", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("GET /slow took %v, want about %v", took, timeout)
		}
		if got := bh.InFlight(); got != 0 {
			t.Errorf("bulkhead InFlight() after a timeout = %d, want 0", got)
		}
	})
	c.Close()
	if v := p.getBreaker("media"); v.Stats.Calls != 2 || v.Stats.Failures != 1 {
		t.Errorf("breaker counted %d calls, %d failures; want 2 calls, the timeout a failure", v.Stats.Calls, v.Stats.Failures)
	}
}

// trackedBody is a request body that says whether it was closed.
type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

func TestTransportRefusalsSkipTheNetwork(t *testing.T) {
	p := startPlane(t, storetest.StartRedis(t))
	p.putLimit("geo-api", 1, 0.001) // one call, then none for a long while
	c := newTestClient(t, Config{LeaseSize: 1}, p.URL)
	dep := startDependency(t, reply{status: http.StatusOK})
	bh := resilience.NewBulkhead(1, 0)
	tr := &Transport{Limiter: c.Limiter("geo-api"), Bulkhead: bh}
	hc := tr.Client()

	held, err := hc.Get(dep.URL) // the only token; the bulkhead's only slot until closed
	if err != nil {
		t.Fatalf("first GET = %v", err)
	}

	body := &trackedBody{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest(http.MethodPost, dep.URL, body)
	if _, err := tr.RoundTrip(req); !errors.Is(err, resilience.ErrBulkheadFull) {
		t.Errorf("POST while the slot is held = %v, want resilience.ErrBulkheadFull", err)
	}
	if !body.closed.Load() {
		t.Errorf("a refused request's body was not closed")
	}
	held.Body.Close()

	body = &trackedBody{Reader: strings.NewReader("x")}
	req, _ = http.NewRequest(http.MethodPost, dep.URL, body)
	if _, err := tr.RoundTrip(req); !errors.Is(err, ErrRateLimited) {
		t.Errorf("POST past the limit = %v, want ErrRateLimited", err)
	}
	if !body.closed.Load() {
		t.Errorf("a refused request's body was not closed")
	}
	if got := dep.hits.Load(); got != 1 {
		t.Errorf("the dependency got %d requests, want 1: refusals never go out", got)
	}
	if got := bh.InFlight(); got != 0 {
		t.Errorf("bulkhead InFlight() after refusals = %d, want 0", got)
	}
}

func TestTransportZeroValue(t *testing.T) {
	dep := startDependency(t, reply{status: http.StatusInternalServerError, body: "boom"})
	var tr Transport
	status, body, err := get(t, tr.Client(), dep.URL)
	if err != nil || status != http.StatusInternalServerError || body != "boom" {
		t.Errorf("GET through a zero Transport = %d %q %v, want 500 %q", status, body, err, "boom")
	}
}
