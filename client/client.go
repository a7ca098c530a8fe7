package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config's zero fields.
const (
	defaultFlushInterval  = 100 * time.Millisecond
	defaultMaxBatch       = 1000
	defaultRequestTimeout = 2 * time.Second
	defaultProbeInterval  = time.Second
	defaultMaxKeys        = 10000
)

// Kinds of decision, as Hooks.OnDecision and Config.FailClosedFor name
// them.
const (
	KindBreaker = "breaker"
	KindLimiter = "limiter"
)

// Source says where a decision came from.
type Source uint8

const (
	// SourceCache is an answer of the control plane reused from the
	// client's cache, with no network call.
	SourceCache Source = iota + 1
	// SourceServer is an answer the control plane gave for this call.
	SourceServer
	// SourceDegraded is a decision of the client's local breaker or
	// limiter, made while no control plane answers.
	SourceDegraded
)

// String returns "cache", "server" or "degraded".
func (s Source) String() string {
	switch s {
	case SourceCache:
		return "cache"
	case SourceServer:
		return "server"
	case SourceDegraded:
		return "degraded"
	}
	return "unknown"
}

// Hooks are called when things happen in a Client, for metrics and logs:
// a metrics package plugs its counters in here, so that this package
// needs nothing outside the standard library. Each may be nil. They are called synchronously from the goroutine that made
// the decision or learned the news (a caller's, or one of the client's),
// so they must be fast, safe for concurrent use, and must not call back
// into the Client.
type Hooks struct {
	// OnStateChange is called when the client learns that a breaker's
	// state changed (from an answer or from the event stream): from and to
	// are the API's state names (closed, open, half_open, forced_open,
	// forced_closed). It is not called for the first state learned.
	OnStateChange func(name, from, to string)

	// OnDecision is called for every decision of a breaker's Allow
	// (kind KindBreaker) and a limiter's Allow, AllowN, Wait and WaitN
	// attempts (kind KindLimiter): whether the call was allowed and where
	// the decision came from. It is on the hot path: keep it to an atomic
	// increment or two.
	OnDecision func(kind, name string, source Source, allowed bool)

	// OnDegraded is called with true when the client stops reaching every
	// control plane and starts deciding locally, and with false when it
	// reaches one again.
	OnDegraded func(entered bool)
}

// Config configures a Client. Only Endpoints is required; every other
// field's zero value is a working default, given in its doc.
type Config struct {
	// Endpoints are the base URLs of the control plane's replicas, such
	// as "http://10.0.0.5:8080". Requests are spread round-robin over
	// them; one that fails (connection refused, timeout, 5xx) is retried
	// on the next, and a replica that failed is tried after the others
	// for a few seconds. At least one is required.
	Endpoints []string

	// Token is the bearer token sent with every request; its role must
	// be agent or operator. Empty sends none (a server without tokens).
	Token string

	// HTTPClient sends the requests. Nil means a client of its own with
	// pooled keep-alive connections. Its Timeout should be zero: each
	// request gets RequestTimeout, and a Timeout would also cut the
	// long-lived event stream.
	HTTPClient *http.Client

	// Logger receives one line per switch into and out of degraded mode
	// and a few warnings (an unknown breaker or limit). Nil discards.
	Logger *slog.Logger

	// FlushInterval is how often the outcomes gathered for each breaker
	// are reported, as one request per breaker, and how long a leased
	// batch of rate-limit tokens lives. Zero means 100 ms.
	FlushInterval time.Duration

	// MaxBatch is about how many outcomes of one breaker may be pending
	// before they are reported at once rather than at the next flush
	// interval (at most ten early flushes per interval, so the request
	// rate stays bounded however busy the client is). Zero means 1000.
	MaxBatch int

	// CacheTTL, when positive, replaces the control plane's
	// cache_ttl_ms for answers that allow calls: how long such an answer
	// is reused without asking again. Refusals are kept for as long as
	// the control plane says. Zero means the control plane's value.
	CacheTTL time.Duration

	// LeaseSize is how many rate-limit tokens a Limiter takes from the
	// control plane at once to spend locally. Zero adapts it to the
	// observed rate, so that a lease lasts about one FlushInterval
	// (at least 1, at most the limit's capacity). One takes exactly one
	// token per call: one request per call, and the limit is exact
	// across the fleet. A larger value is a fixed lease size.
	LeaseSize int

	// RequestTimeout bounds each request to a control-plane replica.
	// Zero means 2 s.
	RequestTimeout time.Duration

	// DegradedProbeInterval is how often a client that reaches no
	// control plane tries again, with one request in the background.
	// Zero means 1 s.
	DegradedProbeInterval time.Duration

	// FailClosed makes breakers refuse every call (an error matching both
	// ErrOpen and ErrUnavailable) and limiters refuse every call (matching
	// ErrRateLimited and ErrUnavailable) while no control plane answers.
	// The default, false, fails open to a local breaker and a local
	// limiter (see FleetShare): the service stays protected against its
	// dependency's failures, with decisions of this replica alone.
	FailClosed bool

	// FailClosedFor, if set, decides FailClosed for each breaker (kind
	// KindBreaker) and limiter (KindLimiter) by name, overriding
	// FailClosed. It is called when a decision is made in degraded mode.
	FailClosedFor func(kind, name string) bool

	// FleetShare is the share of a rate limit's capacity and refill rate
	// that this replica's local limiter holds while no control plane
	// answers, in (0, 1]: with 4 replicas, 0.25 keeps the fleet within
	// the limit. Zero means a fair share: 1/N, where N is how many
	// clients the control plane last counted taking from that limit in the
	// last 30 s, fleet-wide (each take's answer says); 1 when never told.
	FleetShare float64

	// MaxKeys bounds how many keyed buckets (Limiter.For) each limiter
	// keeps; beyond it an arbitrary one is forgotten, with its lease.
	// Zero means 10000.
	MaxKeys int

	// IsFailure reports whether a call's non-nil error counts against the
	// breaker. Nil counts every error except the caller's own
	// cancellation and refusals of other policies (ErrOpen,
	// ErrRateLimited, ErrBulkheadFull), which are never counted. It is on
	// the path of every failed call.
	IsFailure func(err error) bool

	// Hooks are called when decisions are made and states change.
	Hooks Hooks

	// DisableEvents turns off the client's /v1/events stream: cached
	// answers then live out their cache_ttl_ms, and a trip or an
	// operator's override is learned only when an answer expires.
	DisableEvents bool
}

// ErrClosed is returned by a Breaker's or Limiter's methods after their
// Client was closed.
var ErrClosed = errors.New("breakwater: client closed")

// A Client decides for the breakers and rate limits of a fleet, kept by
// the control plane, from answers it caches; it reports the outcomes of
// calls in batches, leases rate-limit tokens, listens to the control
// plane's event stream, and decides locally when no control plane
// answers.
//
// Make one per process with New and share it: it holds one event stream,
// one flusher goroutine and one clock for all its breakers and limiters.
// Breaker and Limiter return the objects that decide. A Client is safe
// for concurrent use; Close it when done.
type Client struct {
	cfg      Config
	shareSet bool // Config.FleetShare was given: no fair share from the server
	ownHC    bool // the HTTP client is the Client's own: Close closes its connections
	cp       *controlPlane
	log      *slog.Logger
	clock    *coarseClock
	hooks    Hooks

	ctx    context.Context // ends at Close: background work stops
	cancel context.CancelFunc

	mu          sync.Mutex // guards the lists, bgClosed and wg.Add
	breakerList []*Breaker
	limiterList []*limitShared
	bgClosed    bool
	wg          sync.WaitGroup

	breakers sync.Map // name → *Breaker
	limiters sync.Map // name → *Limiter (the key "")

	degraded        atomic.Bool
	warnedForbidden atomic.Bool
	probeAfter      atomic.Int64 // ns the control plane asked to wait (429 Retry-After)
	closed          atomic.Bool
	eventsUp        atomic.Bool  // an event stream is connected
	eventsEpoch     atomic.Int64 // counts stream connections
	flushNow        chan struct{}
	flushStop       chan struct{}
	flushDone       chan struct{}
	flushErr        error
	batchTrigger    uint64 // per counter slot: see outcomeBatch.add
	stripeMask      uint32

	faultTab faultTable // faults of drills, see faults.go

	refuseDegradedBreaker *RetryAfterError
	refuseDegradedLimiter *RetryAfterError

	releaseClock func()
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
	c := &Client{
		cfg:       cfg,
		ownHC:     ownHC,
		shareSet:  shareSet,
		cp:        cp,
		log:       log,
		hooks:     cfg.Hooks,
		flushNow:  make(chan struct{}, 1),
		flushStop: make(chan struct{}),
		flushDone: make(chan struct{}),
	}
	c.faultTab.kick = make(chan struct{}, 1)
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
	c.mu.Lock()
	c.bgClosed = true
	bs := c.breakerList
	ls := c.limiterList
	c.mu.Unlock()
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
	b := newBreaker(c, name)
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
	s := newLimitShared(c, name)
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

// goBackground runs fn in a goroutine that Close waits for, unless the
// client is closing. fn must return once c.ctx ends.
func (c *Client) goBackground(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bgClosed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
	return true
}

// decided calls the OnDecision hook.
func (c *Client) decided(kind, name string, src Source, allowed bool) {
	if h := c.hooks.OnDecision; h != nil {
		h(kind, name, src, allowed)
	}
}

// stateChanged calls the OnStateChange hook for a change the client
// learned.
func (c *Client) stateChanged(name, from, to string) {
	if from == "" || from == to || from == stateUnknown || to == stateUnknown {
		return
	}
	if h := c.hooks.OnStateChange; h != nil {
		h(name, from, to)
	}
}

// failClosed reports whether the breaker or limiter of that name refuses
// calls while degraded.
func (c *Client) failClosed(kind, name string) bool {
	if f := c.cfg.FailClosedFor; f != nil {
		return f(kind, name)
	}
	return c.cfg.FailClosed
}

// requestCtx returns a context for a background request.
func (c *Client) requestCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.cfg.RequestTimeout*time.Duration(len(c.cp.endpoints)))
}
