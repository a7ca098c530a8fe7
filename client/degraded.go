package client

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/breakwater-dev/breakwater/client/internal/retry"
)

// Degraded mode.
//
// When a request finds no control plane that answers (every endpoint
// refused the connection, timed out or answered 5xx; a 429 of the API's
// per-token request cap; or the token is unknown, 401), the client
// switches to degraded mode: it logs the switch once,
// calls Hooks.OnDegraded(true), and from then on decides locally, with no
// caller waiting on the network:
//
//   - each breaker decides with a local breaker (the same state machine
//     as the control plane's) made with the breaker's last known config,
//     or the defaults if none is known; if the control plane's last answer
//     was open, the local breaker starts open until the time it said. An
//     operator's forced_open or forced_closed is kept until the override
//     ends (as the last read of the breaker said), or, for one that never
//     ends or whose end is not known, until a control plane answers
//     again. Its window starts empty, and it opens on this replica's
//     failures alone.
//   - each limiter decides with a local token bucket holding a fair
//     share of the limit's last known capacity and refill rate: 1/N for
//     the N clients the control plane last counted taking from it (each
//     take's answer says), or Config.FleetShare when set; a limit whose
//     config was never learned is not enforced.
//   - with Config.FailClosed (or FailClosedFor), breakers and limiters
//     refuse every call instead, with an error that matches ErrOpen or
//     ErrRateLimited, and ErrUnavailable.
//
// Outcomes of calls decided locally stay local: they are never reported
// to the control plane, whose fleet-wide window they would skew long
// after the fact. Outcomes pending at the switch are dropped.
//
// One goroutine probes the control plane every DegradedProbeInterval (or
// after the Retry-After of the API cap's 429) with one request of the
// role the client decides with (see probe). A 403 is not an outage: the
// token may not decide, which no wait mends; it is logged once, loudly,
// and calls go out unguarded, as for a breaker the control plane does not
// have. When it answers, the client logs it, calls
// Hooks.OnDegraded(false), and asks the control plane again at the next
// decision of each breaker and limiter.

// ErrUnavailable means no control plane answered and the breaker or
// limiter is set to fail closed (Config.FailClosed): the call was not
// made. The error also matches ErrOpen (a breaker) or ErrRateLimited (a
// limiter).
var ErrUnavailable = errors.New("breakwater: control plane unavailable")

// degradedError is a fail-closed refusal: it matches its kind (ErrOpen or
// ErrRateLimited) and ErrUnavailable.
type degradedError struct{ kind error }

func (e degradedError) Error() string {
	return e.kind.Error() + ": control plane unavailable (fail closed)"
}

func (e degradedError) Is(target error) bool { return target == e.kind || target == ErrUnavailable }

// enterDegraded switches to degraded mode after err, unless the client is
// in it already.
func (c *core) enterDegraded(err error) {
	if c.closed.Load() || !c.degraded.CompareAndSwap(false, true) {
		return
	}
	c.probeAfter.Store(int64(retryAfterOf(err)))
	c.log.Warn("breakwater: no control plane answers; deciding locally until one does",
		"err", err.Error(), "probe_interval", c.cfg.DegradedProbeInterval.String())
	c.onSwitch(true, c.clock.unixNano())
	if h := c.hooks.OnDegraded; h != nil {
		h(true)
	}
	if !c.goBackground(c.probeLoop) {
		c.degraded.Store(false)
	}
}

// exitDegraded switches back to the control plane's decisions.
func (c *core) exitDegraded() {
	if !c.degraded.CompareAndSwap(true, false) {
		return
	}
	c.log.Info("breakwater: a control plane answers again; back to fleet-wide decisions")
	c.onSwitch(false, c.clock.unixNano())
	if h := c.hooks.OnDegraded; h != nil {
		h(false)
	}
}

// probeLoop asks the control plane, one request at a time, a probe
// interval after the last one ended (or as long after as a 429's
// Retry-After asked), until it answers.
func (c *core) probeLoop() {
	for {
		wait := max(c.cfg.DegradedProbeInterval, time.Duration(c.probeAfter.Swap(0)))
		if retry.Sleep(c.ctx, wait) != nil {
			return
		}
		if c.probe() {
			c.exitDegraded()
			return
		}
	}
}

// probe sends one request that needs what the client's decisions need,
// and reports whether it was answered.
//
// With a breaker, it is a decision request of the same role as the
// client's own (agent): an outcomes report whose one entry carries
// generation 0, which no breaker ever has, so the script runs in the store
// and applies nothing. A read would not do: a replica whose store still
// serves reads but not scripts, or a token that may read but not decide,
// answers a read and then fails the next decision, and the client would
// flap in and out of degraded mode. With only limiters it reads a limit
// (a take would spend a token), else /readyz. See docs/client-faults.md.
func (c *core) probe() bool {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RequestTimeout)
	defer cancel()
	method, path, key := http.MethodGet, "/readyz", ""
	var body any
	if breaker, limit := c.probeTarget(); breaker != "" {
		method, path, key = http.MethodPost, breakerPath(breaker, "outcomes"), newIdempotencyKey()
		body = probeReport
	} else if limit != "" {
		path = limitPath(limit, "")
	}
	_, err := c.cp.do(ctx, method, path, key, body, nil)
	if ra := retryAfterOf(err); ra > 0 {
		c.probeAfter.Store(int64(ra))
	}
	return err == nil || isNotFound(err) || isForbidden(err)
}

// probeReport is the body of a probe: one outcome of generation 0, which
// the control plane ignores (generations start at 1 and never go back).
var probeReport = map[string]any{"outcomes": []map[string]any{
	{"success": true, "duration_ms": 0, "count": 1, "generation": 0},
}}
