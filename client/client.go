package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// A Client decides for the breakers and rate limits of a fleet, kept by
// the control plane, from answers it caches; it reports the outcomes of
// calls in batches, leases rate-limit tokens, listens to the control
// plane's event stream, and decides locally when no control plane
// answers.
//
// Make one per process with New and share it: it holds one event stream,
// one flusher goroutine and one clock for all its breakers and limiters.
// The zero value is not usable. Breaker and Limiter return the objects
// that decide. A Client is safe for concurrent use; Close it when done.
type Client struct {
	*core

	mu          sync.Mutex // guards the lists
	breakerList []*Breaker
	limiterList []*limitShared

	breakers sync.Map // name → *Breaker
	limiters sync.Map // name → *Limiter (the key "")
}

// New returns a Client for the control plane at cfg.Endpoints and starts
// its background work: the flusher, and the event stream unless
// cfg.DisableEvents. It makes no request before the first decision, so it
// succeeds while the control plane is down. It fails only on a bad
// Config.
func New(cfg Config) (*Client, error) {
	return newClient(cfg, nil)
}

// newClient is New with a clock of the caller's, for tests; nil takes the
// process's shared clock.
func newClient(cfg Config, clock *coarseClock) (*Client, error) {
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = defaultFlushInterval
	}
	if cfg.SuccessFlushInterval == 0 {
		cfg.SuccessFlushInterval = 4 * cfg.FlushInterval
	}
	cfg.SuccessFlushInterval = max(cfg.SuccessFlushInterval, cfg.FlushInterval)
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = defaultRequestTimeout
	}
	if cfg.DegradedProbeInterval <= 0 {
		cfg.DegradedProbeInterval = defaultProbeInterval
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = defaultMaxKeys
	}
	if cfg.LeaseSize < 0 {
		return nil, fmt.Errorf("breakwater: Config.LeaseSize %d: must not be negative", cfg.LeaseSize)
	}
	shareSet := cfg.FleetShare != 0
	if !shareSet {
		cfg.FleetShare = 1
	}
	if !(cfg.FleetShare > 0 && cfg.FleetShare <= 1) {
		return nil, fmt.Errorf("breakwater: Config.FleetShare %v: must be in (0, 1]", cfg.FleetShare)
	}
	hc := cfg.HTTPClient
	ownHC := hc == nil
	if ownHC {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		hc = &http.Client{Transport: tr}
	}
	cp, err := newControlPlane(cfg.Endpoints, cfg.Token, hc, cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{core: &core{
		cfg:       cfg,
		ownHC:     ownHC,
		shareSet:  shareSet,
		cp:        cp,
		log:       log,
		hooks:     cfg.Hooks,
		flushNow:  make(chan struct{}, 1),
		flushStop: make(chan struct{}),
		flushDone: make(chan struct{}),
	}}
	c.faultTab.kick = make(chan struct{}, 1)
	c.onSwitch, c.onEvent, c.onStale, c.flush, c.probeTarget = c.switchMode, c.dispatch, c.staleAll, c.flushAll, c.probeNames
	c.faultPoll = c.faultPollInterval
	if clock == nil {
		c.clock, c.releaseClock = acquireCoarseClock()
	} else {
		c.clock, c.releaseClock = clock, func() {}
	}
	c.stripeMask = uint32(stripes - 1)
	c.batchTrigger = uint64(max(1, cfg.MaxBatch/min(stripes, runtime.GOMAXPROCS(0))))
	c.refuseDegradedBreaker = &RetryAfterError{Err: degradedError{ErrOpen}, After: cfg.DegradedProbeInterval}
	c.refuseDegradedLimiter = &RetryAfterError{Err: degradedError{ErrRateLimited}, After: cfg.DegradedProbeInterval}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.flushLoop()
	if !cfg.DisableEvents {
		c.goBackground(c.runEvents)
	}
	return c, nil
}

// Close reports the outcomes still pending, stops the client's
// goroutines and its event stream, and waits for them; it closes the idle
// connections of its own HTTP client (not those of Config.HTTPClient). Breakers and
// limiters refuse calls with ErrClosed from then on. It returns the error
// of the last report, if it failed. Calling Close again does nothing.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.bgMu.Lock()
	c.bgClosed = true
	c.bgMu.Unlock()
	bs, ls := c.breakersNow(), c.limitersNow()
	for _, b := range bs {
		b.expire()
	}
	for _, s := range ls {
		s.dropLeases()
	}
	close(c.flushStop)
	<-c.flushDone
	c.cancel()
	c.wg.Wait()
	if c.ownHC {
		// Idle keep-alive connections and their goroutines would
		// otherwise live on for the transport's idle timeout.
		c.cp.hc.CloseIdleConnections()
	}
	c.releaseClock()
	return c.flushErr
}

// Degraded reports whether the client is deciding locally because no
// control plane answers.
func (c *Client) Degraded() bool { return c.degraded.Load() }

// Breaker returns the breaker of that name, kept by the control plane
// (create it there with PUT /v1/breakers/{name}). Every call with the same
// name returns the same *Breaker, so calling Breaker per request is fine,
// but keeping the result is cheaper. A name the control plane cannot have
// (see the API's name pattern) gives a Breaker whose Allow always fails.
func (c *Client) Breaker(name string) *Breaker {
	if v, ok := c.breakers.Load(name); ok {
		return v.(*Breaker)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.breakers.Load(name); ok {
		return v.(*Breaker)
	}
	b := newBreaker(c.core, name)
	c.breakers.Store(name, b)
	c.breakerList = append(c.breakerList, b)
	return b
}

// Limiter returns the rate limiter of that name, kept by the control
// plane (create it there with PUT /v1/ratelimits/{name}), for the
// limit's default bucket (the empty key); For gives the bucket of a key.
// Every call with the same name returns the same *Limiter.
func (c *Client) Limiter(name string) *Limiter {
	if v, ok := c.limiters.Load(name); ok {
		return v.(*Limiter)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.limiters.Load(name); ok {
		return v.(*Limiter)
	}
	s := newLimitShared(c.core, name)
	c.limiters.Store(name, s.root)
	c.limiterList = append(c.limiterList, s)
	return s.root
}

// breakersNow returns the breakers made so far.
func (c *Client) breakersNow() []*Breaker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.breakerList
}

// limitersNow returns the limiters made so far.
func (c *Client) limitersNow() []*limitShared {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limiterList
}

// switchMode tells every breaker and limiter that the client entered
// degraded mode at now, or left it.
func (c *Client) switchMode(entered bool, now int64) {
	for _, b := range c.breakersNow() {
		if entered {
			b.enterDegraded(now)
		} else {
			b.expire()
		}
	}
	for _, s := range c.limitersNow() {
		if entered {
			s.dropLeases()
		} else {
			s.exitDegraded()
		}
	}
}

// probeNames returns the name of a breaker and of a limit that the
// control plane may have, or "", for degraded mode's probe.
func (c *Client) probeNames() (breaker, limit string) {
	for _, b := range c.breakersNow() {
		if b.err == nil {
			return b.name, ""
		}
	}
	if ls := c.limitersNow(); len(ls) > 0 && ls[0].root.err == nil {
		return "", ls[0].name
	}
	return "", ""
}

// flushAll reports the pending outcomes of every breaker, or with all
// false of those with a failure pending (see Breaker.urgent), all
// breakers in one request (or one per thousand reports), and returns the
// last error. So a
// flush costs one round trip however many breakers the client uses, and
// never takes longer than its interval because of their number. While
// degraded the outcomes are dropped: calls let through under the control
// plane's answers before the switch would be ignored by now, and calls
// decided locally stay local.
func (c *Client) flushAll(all bool) error {
	var reports []batchReport
	var owners []*Breaker
	for _, b := range c.breakersNow() {
		if !all && !b.urgent() {
			continue // fast successes only: they wait for a flush of all
		}
		outs := b.pending()
		if len(outs) == 0 || c.degraded.Load() {
			continue
		}
		for len(outs) > 0 {
			n := min(len(outs), contract.MaxOutcomes)
			reports = append(reports, batchReport{Breaker: b.name, Outcomes: outs[:n]})
			owners = append(owners, b)
			outs = outs[n:]
		}
	}
	var last error
	for len(reports) > 0 {
		n := min(len(reports), contract.MaxBatchReports)
		if err := c.reportBatch(reports[:n], owners[:n]); err != nil {
			last = err
		}
		reports, owners = reports[n:], owners[n:]
	}
	return last
}

// reportBatch sends reports, each owned by the breaker at the same index,
// in one request, and caches each breaker's answer. A control plane from
// before the batch report answers 404 or 405 to it: the client reports per
// breaker from then on.
func (c *Client) reportBatch(reports []batchReport, owners []*Breaker) error {
	if c.perBreaker.Load() {
		var last error
		for i, r := range reports {
			if err := owners[i].report(r.Outcomes); err != nil {
				last = err
			}
		}
		return last
	}
	ctx, cancel := c.requestCtx() // Close cancels c.ctx only after the last flush
	results, err := c.cp.reportBatch(ctx, newIdempotencyKey(), reports)
	cancel()
	var se *StatusError
	switch {
	case err == nil:
	case errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusMethodNotAllowed):
		c.perBreaker.Store(true)
		return c.reportBatch(reports, owners)
	case isForbidden(err):
		c.warnForbidden(err)
		return err
	case errors.Is(err, errUnreachable), isUnauthorized(err):
		c.enterDegraded(err)
		return err
	default:
		return err
	}
	now := c.clock.unixNano()
	var last error
	for i, res := range results {
		b := owners[i]
		switch {
		case res.Error == nil:
			b.apply(res.decision, now)
		case res.Error.Status == http.StatusNotFound:
			b.forget(now)
			fallthrough
		default:
			last = &StatusError{Method: http.MethodPost, Path: "/v1/outcomes", Status: res.Error.Status, Detail: b.name + ": " + res.Error.Detail}
		}
	}
	return last
}

// staleAll makes every cached answer stale and drops what events would
// have refreshed, after events may have been missed.
func (c *Client) staleAll() {
	c.kickFaults("")
	for _, b := range c.breakersNow() {
		b.expire()
		if b.cfg.Load() != nil {
			b.fetchConfig()
		}
	}
	for _, s := range c.limitersNow() {
		if s.cfg.Load() != nil {
			s.fetchConfig()
		}
	}
}

// dispatch applies one event.
func (c *Client) dispatch(name, data string) {
	var e event
	if err := json.Unmarshal([]byte(data), &e); err != nil || e.Name == "" {
		return
	}
	switch name {
	case contract.EventBreakerState:
		if v, ok := c.breakers.Load(e.Name); ok {
			v.(*Breaker).onStateEvent(parseState(e.To), e.Generation, e.SlowStartMS)
		}
	case contract.EventBreakerConfig:
		if v, ok := c.breakers.Load(e.Name); ok {
			v.(*Breaker).fetchConfig()
		}
	case contract.EventBreakerDeleted:
		if v, ok := c.breakers.Load(e.Name); ok {
			v.(*Breaker).forget(c.clock.unixNano())
		}
	case contract.EventFaultConfig, contract.EventFaultDeleted:
		c.kickFaults(e.Name)
	case contract.EventRateLimitConfig, contract.EventRateLimitDeleted:
		if v, ok := c.limiters.Load(e.Name); ok {
			v.(*Limiter).shared.onConfigEvent(name == contract.EventRateLimitDeleted)
		}
	}
}

// faultPollInterval is how often faults are fetched without a stream:
// the least cache_ttl_ms of the breakers, 1 s when none is known.
func (c *Client) faultPollInterval() time.Duration {
	d := time.Second
	for _, b := range c.breakersNow() {
		if cfg := b.cfg.Load(); cfg != nil && cfg.CacheTTLMS > 0 {
			d = min(d, time.Duration(cfg.CacheTTLMS)*time.Millisecond)
		}
	}
	return d
}
