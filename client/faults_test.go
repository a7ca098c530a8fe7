package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/client/resilience"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// faultDep is an upstream that counts its calls and answers 200.
func faultDep(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func get1(t *testing.T, hc *http.Client, url string) (*http.Response, error) {
	t.Helper()
	resp, err := hc.Get(url)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// TestTransportAppliesFaults: a fault's aborts answer its status without
// reaching the dependency, carry Breakwater-Fault, and count as failures
// of the dependency even when the status is a 4xx; a Transport with
// IgnoreFaults is untouched; once the fault is deleted calls go out again.
func TestTransportAppliesFaults(t *testing.T) {
	p := startPlane(t, storetest.StartRedis(t))
	p.putBreaker("dep", map[string]any{"minimum_calls": 10000})
	dep, calls := faultDep(t)
	c := newTestClient(t, Config{FlushInterval: 10 * time.Millisecond}, p.URL)
	faulted := (&Transport{Breaker: c.Breaker("dep")}).Client()
	plain := (&Transport{Breaker: c.Breaker("dep"), IgnoreFaults: true}).Client()
	if resp, err := get1(t, faulted, dep.URL); err != nil || resp.StatusCode != 200 {
		t.Fatalf("before the fault: %v, %v", resp, err)
	}

	p.do("PUT", "/v1/faults/dep", map[string]any{"abort_percent": 100, "abort_status": 418, "reason": "drill", "ttl_ms": 60000}, nil)
	waitFor(t, 2*time.Second, "the fault applied", func() bool {
		resp, err := get1(t, faulted, dep.URL)
		return err == nil && resp.StatusCode == http.StatusTeapot
	})
	before, failuresBefore := calls.Load(), p.getBreaker("dep").Stats.Failures
	for range 5 {
		resp, err := get1(t, faulted, dep.URL)
		if err != nil || resp.StatusCode != http.StatusTeapot || resp.Header.Get(FaultHeader) != "dep" {
			t.Fatalf("aborted call = %v, %v; want 418 with %s: dep", resp, err, FaultHeader)
		}
	}
	if n := calls.Load() - before; n != 0 {
		t.Errorf("the dependency got %d aborted calls, want 0", n)
	}
	waitFor(t, 2*time.Second, "the aborts reported as failures", func() bool {
		return p.getBreaker("dep").Stats.Failures >= failuresBefore+5
	})
	if resp, err := get1(t, plain, dep.URL); err != nil || resp.StatusCode != 200 || calls.Load() != before+1 {
		t.Errorf("IgnoreFaults: %v, %v; want the dependency's 200", resp, err)
	}

	p.do("DELETE", "/v1/faults/dep", nil, nil, http.StatusNoContent)
	waitFor(t, 2*time.Second, "the fault's end learned", func() bool {
		resp, err := get1(t, faulted, dep.URL)
		return err == nil && resp.StatusCode == http.StatusOK
	})
}

// TestFaultDelayWithinTimeout: a delayed attempt waits delay_ms before it
// goes out, and the wait counts against Transport.Timeout like a slow
// dependency.
func TestFaultDelayWithinTimeout(t *testing.T) {
	p := startPlane(t, storetest.StartRedis(t))
	p.putBreaker("dep", map[string]any{"minimum_calls": 10000})
	dep, calls := faultDep(t)
	c := newTestClient(t, Config{}, p.URL)
	slow := (&Transport{Breaker: c.Breaker("dep")}).Client()
	bounded := (&Transport{Breaker: c.Breaker("dep"), Timeout: 50 * time.Millisecond}).Client()
	get1(t, slow, dep.URL) // starts the client's learning of faults

	p.do("PUT", "/v1/faults/dep", map[string]any{"delay_percent": 100, "delay_ms": 300, "reason": "latency drill", "ttl_ms": 60000}, nil)
	waitFor(t, 2*time.Second, "the delay applied", func() bool {
		start := time.Now()
		get1(t, slow, dep.URL)
		return time.Since(start) >= 300*time.Millisecond
	})
	before := calls.Load()
	if _, err := get1(t, bounded, dep.URL); !errors.Is(err, resilience.ErrTimeout) {
		t.Errorf("a 300 ms delay under a 50 ms Timeout = %v, want ErrTimeout", err)
	}
	if calls.Load() != before {
		t.Errorf("an attempt that timed out in its delay reached the dependency")
	}
}

// TestBreakerDoOptsIn: Do applies faults only after ApplyFaults(true); an
// aborted call returns a *FaultError without calling fn.
func TestBreakerDoOptsIn(t *testing.T) {
	p := startPlane(t, storetest.StartRedis(t))
	p.putBreaker("dep", map[string]any{"minimum_calls": 10000})
	c := newTestClient(t, Config{}, p.URL)
	b := c.Breaker("dep")
	p.do("PUT", "/v1/faults/dep", map[string]any{"abort_percent": 100, "reason": "drill", "ttl_ms": 60000}, nil)
	ctx := context.Background()
	var ran atomic.Int64
	fn := func(context.Context) error { ran.Add(1); return nil }
	for range 3 {
		if err := b.Do(ctx, fn); err != nil {
			t.Fatalf("Do without ApplyFaults = %v, want nil", err)
		}
	}
	b.ApplyFaults(true)
	waitFor(t, 2*time.Second, "the fault applied to Do", func() bool {
		return errors.Is(b.Do(ctx, fn), ErrFaultInjected)
	})
	before := ran.Load()
	err := b.Do(ctx, fn)
	var fe *FaultError
	if !errors.As(err, &fe) || fe.Status != 503 || fe.Name != "dep" || fe.Reason != "drill" {
		t.Fatalf("Do under a 100%% abort = %v, want a *FaultError with 503", err)
	}
	if ran.Load() != before {
		t.Errorf("Do called fn for an aborted call")
	}
}

// TestFaultsPolledWithoutEvents: a client without an event stream learns
// a fault, and its end, by polling within the breaker's cache_ttl_ms
// (1 s by default).
func TestFaultsPolledWithoutEvents(t *testing.T) {
	p := startPlane(t, storetest.StartRedis(t))
	p.putBreaker("dep", map[string]any{"minimum_calls": 10000})
	dep, _ := faultDep(t)
	c := newTestClient(t, Config{DisableEvents: true}, p.URL)
	hc := (&Transport{Breaker: c.Breaker("dep")}).Client()
	get1(t, hc, dep.URL)
	p.do("PUT", "/v1/faults/dep", map[string]any{"abort_percent": 100, "reason": "drill", "ttl_ms": 60000}, nil)
	set := time.Now()
	waitFor(t, 5*time.Second, "the fault polled", func() bool {
		resp, err := get1(t, hc, dep.URL)
		return err == nil && resp.StatusCode == http.StatusServiceUnavailable
	})
	t.Logf("learned by polling after %v", time.Since(set).Round(time.Millisecond))
	p.do("DELETE", "/v1/faults/dep", nil, nil, http.StatusNoContent)
	waitFor(t, 5*time.Second, "the end polled", func() bool {
		resp, err := get1(t, hc, dep.URL)
		return err == nil && resp.StatusCode == http.StatusOK
	})
}

// TestFaultEndsAtExpiry: with no event at its end, a client stops applying
// a fault at its expires_at.
func TestFaultEndsAtExpiry(t *testing.T) {
	p := startPlane(t, storetest.StartRedis(t))
	p.putBreaker("dep", map[string]any{"minimum_calls": 10000})
	dep, _ := faultDep(t)
	c := newTestClient(t, Config{}, p.URL)
	hc := (&Transport{Breaker: c.Breaker("dep")}).Client()
	get1(t, hc, dep.URL)
	var f struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	p.do("PUT", "/v1/faults/dep", map[string]any{"abort_percent": 100, "reason": "short drill", "ttl_ms": 1000}, &f)
	waitFor(t, 2*time.Second, "the fault applied", func() bool {
		resp, err := get1(t, hc, dep.URL)
		return err == nil && resp.StatusCode == http.StatusServiceUnavailable
	})
	waitFor(t, 5*time.Second, "calls passing after the expiry", func() bool {
		resp, err := get1(t, hc, dep.URL)
		return err == nil && resp.StatusCode == http.StatusOK
	})
	if now := time.Now(); now.Before(f.ExpiresAt) {
		t.Errorf("calls passed at %v, before the fault's expiry %v", now, f.ExpiresAt)
	}
}
