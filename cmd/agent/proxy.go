package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/breakwater-dev/breakwater/client"
)

// guardedTransport sends a proxied request upstream under the route's
// rate limit and breaker: the limiter first (a refused request never
// reaches the breaker), then, per attempt, the breaker and a timeout on
// the upstream's response headers. Idempotent requests whose body can be
// replayed are retried with exponential backoff and full jitter; others
// are tried once. An upstream 5xx or transport error is a failure, a 4xx a
// success; the caller going away is neither.
type guardedTransport struct {
	base     http.RoundTripper
	breaker  *client.Breaker
	limiter  *client.Limiter
	timeout  time.Duration
	attempts int
}

// upstreamError is an attempt that failed with a 5xx.
type upstreamError struct{ status int }

func (e *upstreamError) Error() string { return "upstream answered " + strconv.Itoa(e.status) }

var errHeaderTimeout = fmt.Errorf("upstream did not answer in time: %w", context.DeadlineExceeded)

func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return r.Body == nil || r.Body == http.NoBody || r.GetBody != nil
	}
	return false
}

func (t *guardedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.limiter.Allow(req.Context()); err != nil {
		return nil, err
	}
	attempts := 1
	if idempotent(req) {
		attempts = t.attempts
	}
	retry := client.Retry{
		MaxAttempts: attempts,
		BaseDelay:   50 * time.Millisecond,
		MaxDelay:    2 * time.Second,
		RetryIf: func(err error) bool {
			return !errors.Is(err, client.ErrOpen) // the fleet said stop: do not knock again
		},
	}
	var resp *http.Response
	n := 0
	err := retry.Execute(req.Context(), func(ctx context.Context) error {
		n++
		last := n == attempts
		done, err := t.breaker.Allow(ctx)
		if err != nil {
			return err
		}
		out := req.Clone(ctx)
		if n > 1 && req.GetBody != nil {
			if out.Body, err = req.GetBody(); err != nil {
				done(nil) // never sent: not the upstream's fault
				return client.Permanent(err)
			}
		}
		actx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(t.timeout, cancel)
		r, err := t.base.RoundTrip(out.WithContext(actx))
		if !timer.Stop() && err != nil && ctx.Err() == nil {
			err = errHeaderTimeout
		}
		if err != nil {
			cancel()
			done(err)
			return err
		}
		if r.StatusCode >= 500 {
			uerr := &upstreamError{status: r.StatusCode}
			done(uerr)
			after := retryAfter(r)
			if last || after > retry.MaxDelay {
				// Out of attempts, or told to come back later than we would
				// wait: the caller gets the upstream's own answer.
				r.Body = cancelOnClose{r.Body, cancel}
				resp = r
				return nil
			}
			io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
			r.Body.Close()
			cancel()
			if after > 0 {
				return &client.RetryAfterError{Err: uerr, After: after}
			}
			return uerr
		}
		done(nil)
		// The timeout covered the headers; the body streams for as long as
		// the caller reads it.
		r.Body = cancelOnClose{r.Body, cancel}
		resp = r
		return nil
	})
	if resp != nil {
		return resp, nil
	}
	return nil, err
}

func retryAfter(r *http.Response) time.Duration {
	if r.StatusCode != http.StatusServiceUnavailable && r.StatusCode != http.StatusTooManyRequests {
		return 0
	}
	s, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// cancelOnClose releases an attempt's context when the body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
