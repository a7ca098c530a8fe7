package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/client/resilience"
)

// A 503 whose body stalls after a few bytes must not hold the caller: the
// drain before the retry gives up on it, and the retry answers.
func TestTransportStalledErrorBodyIsCutOff(t *testing.T) {
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	hits := 0
	dep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if hits == 1 {
			w.Header().Set("Content-Length", "100000")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "down for a")
			w.(http.Flusher).Flush()
			select { // the rest of the body never comes
			case <-stall:
			case <-r.Context().Done():
			}
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(dep.Close)
	s := &sleeps{}
	tr := &Transport{Retry: &resilience.Retry{MaxAttempts: 2}, sleep: s.sleep, Timeout: 2 * time.Second}

	// The caller waits far longer than the drain may take, and far less
	// than forever.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, dep.URL, nil)
	resp, err := tr.Client().Do(req)
	if err != nil {
		t.Fatalf("GET after a stalled 503 = %v, want the retry's 200", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(b) != "ok" || hits != 2 {
		t.Errorf("GET = %d %q after %d requests, want 200 \"ok\" after 2", resp.StatusCode, b, hits)
	}
}

// failingBody is a request body that gives some bytes and then fails, as
// an upload does when its sender goes away.
type failingBody struct{ sent bool }

func (b *failingBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "first part of the upload"), nil
	}
	return 0, errors.New("connection reset by the uploader")
}

func (b *failingBody) Close() error { return nil }

// trickleBody is an endless upload that sends one byte every so often.
type trickleBody struct{ every time.Duration }

func (b *trickleBody) Read(p []byte) (int, error) {
	time.Sleep(b.every)
	return copy(p, "x"), nil
}

func (b *trickleBody) Close() error { return nil }

// The caller's failures (an upload that breaks off, one slower than the
// timeout) are not the dependency's: not counted, not retried.
func TestTransportCallerFailuresAreNotCounted(t *testing.T) {
	p, c := transportPlane(t)
	p.putBreaker("uploads", nil)
	dep := startDependency(t, reply{status: http.StatusOK})
	s := &sleeps{}
	tr := &Transport{Breaker: c.Breaker("uploads"), Retry: &resilience.Retry{MaxAttempts: 3}, sleep: s.sleep,
		Timeout: 200 * time.Millisecond, Idempotent: func(*http.Request) bool { return true }}

	t.Run("upload breaks off", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, dep.URL, &failingBody{})
		req.ContentLength = 1000
		req.GetBody = func() (io.ReadCloser, error) { return &failingBody{}, nil }
		_, err := tr.RoundTrip(req)
		if !errors.Is(err, ErrCaller) || errors.Is(err, resilience.ErrTimeout) {
			t.Errorf("POST with a broken body = %v, want resilience.ErrTimeout", err)
		}
	})
	t.Run("upload slower than the timeout", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, dep.URL, &trickleBody{every: 500 * time.Millisecond})
		start := time.Now()
		_, err := tr.RoundTrip(req)
		if !errors.Is(err, ErrCaller) || errors.Is(err, resilience.ErrTimeout) {
			t.Errorf("PUT with a trickling upload = %v, want resilience.ErrTimeout and not resilience.ErrTimeout", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("PUT with a trickling upload took %v, want about the timeout", took)
		}
	})
	if got := s.got(); len(got) != 0 {
		t.Errorf("retried the caller's failures after %v, want no retry", got)
	}
	c.Close()
	if v := p.getBreaker("uploads"); v.Stats.Calls != 0 {
		t.Errorf("breaker counted %d calls (%d failures), want 0: the caller's failures are not outcomes", v.Stats.Calls, v.Stats.Failures)
	}
}

// An open breaker refuses before the limiter is asked: refused calls spend
// none of the fleet's tokens.
func TestTransportOpenBreakerSpendsNoTokens(t *testing.T) {
	p, c := transportPlane(t)
	c.Close()
	c = newTestClient(t, Config{LeaseSize: 1}, p.URL)
	p.putBreaker("geo", nil)
	p.do(http.MethodPut, "/v1/breakers/geo/override", map[string]any{"state": "forced_open", "reason": "drill"}, nil)
	p.putLimit("geo", 3, 0.001)
	dep := startDependency(t, reply{status: http.StatusOK})
	tr := &Transport{Breaker: c.Breaker("geo"), Limiter: c.Limiter("geo")}
	for i := range 5 {
		if _, err := tr.Client().Get(dep.URL); !errors.Is(err, ErrOpen) {
			t.Fatalf("GET %d through an open breaker = %v, want ErrOpen", i, err)
		}
	}
	var v struct {
		Tokens float64 `json:"tokens"`
	}
	p.do(http.MethodGet, "/v1/ratelimits/geo?key=", nil, &v)
	if v.Tokens < 2.99 {
		t.Errorf("bucket holds %v tokens after 5 refusals of an open breaker, want 3: none spent", v.Tokens)
	}
	if got := dep.hits.Load(); got != 0 {
		t.Errorf("the dependency got %d requests, want 0", got)
	}
}

type panickingTransport struct{}

func (panickingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	panic("base transport bug")
}

// A panic in Base or Failed gives the bulkhead's slot back, counts the
// attempt as a failure, and goes on up.
func TestTransportPanicReleasesAndReports(t *testing.T) {
	p, c := transportPlane(t)
	p.putBreaker("flaky", nil)
	dep := startDependency(t, reply{status: http.StatusOK})
	tests := []struct {
		name string
		tr   *Transport
	}{
		{"Base panics", &Transport{Base: panickingTransport{}}},
		{"Failed panics", &Transport{Failed: func(*http.Response, error) bool { panic("classifier bug") }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bh := resilience.NewBulkhead(1, 0)
			tt.tr.Bulkhead, tt.tr.Breaker, tt.tr.Timeout = bh, c.Breaker("flaky"), time.Minute
			req, _ := http.NewRequest(http.MethodGet, dep.URL, nil)
			got := func() (v any) {
				defer func() { v = recover() }()
				tt.tr.RoundTrip(req)
				return nil
			}()
			if got == nil {
				t.Fatalf("RoundTrip did not panic, want the panic to go on up")
			}
			if n := bh.InFlight(); n != 0 {
				t.Errorf("bulkhead InFlight() after a panic = %d, want 0", n)
			}
		})
	}
	c.Close()
	if v := p.getBreaker("flaky"); v.Stats.Calls != 2 || v.Stats.Failures != 2 {
		t.Errorf("breaker counted %d calls, %d failures; want both panics as failures", v.Stats.Calls, v.Stats.Failures)
	}
}

func TestBulkheadExecutePanicReleases(t *testing.T) {
	bh := resilience.NewBulkhead(1, 0)
	func() {
		defer func() { recover() }()
		bh.Do(context.Background(), func(context.Context) error { panic("bug") })
	}()
	if n := bh.InFlight(); n != 0 {
		t.Errorf("InFlight() after fn panicked = %d, want 0", n)
	}
	if err := bh.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Errorf("Execute after a panic = %v, want nil", err)
	}
}
