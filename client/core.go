package client

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater-dev/breakwater/client/resilience"
)

// unknownTTL is how long the answer "no such breaker or limit" is kept.
const unknownTTL = time.Second

// flight is a request in progress that other callers may wait for.
type flight struct{ done chan struct{} }

// core is what a Client's breakers and limiters share and consult: the
// config, the connection to the control plane, the clock, the hooks, the
// background goroutines, and the client's mode (degraded, closed). It
// knows nothing of breakers and limiters: the Client above it says, in
// the funcs it sets before any goroutine starts, what a switch of mode,
// an event, a flush and a probe mean for them. See "The Go SDK's layers"
// in docs/design.md.
type core struct {
	cfg      Config
	shareSet bool // Config.FleetShare was given: no fair share from the server
	ownHC    bool // the HTTP client is the Client's own: Close closes its connections
	cp       *controlPlane
	log      *slog.Logger
	clock    *coarseClock
	hooks    Hooks

	ctx    context.Context // ends at Close: background work stops
	cancel context.CancelFunc

	bgMu     sync.Mutex // guards bgClosed and wg.Add
	bgClosed bool
	wg       sync.WaitGroup

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
	perBreaker      atomic.Bool // the control plane has no POST /v1/outcomes: report per breaker
	batchTrigger    uint64      // per counter slot: see outcomeBatch.add
	stripeMask      uint32

	faultTab faultTable // faults of drills, see faults.go

	refuseDegradedBreaker *RetryAfterError
	refuseDegradedLimiter *RetryAfterError

	releaseClock func()

	// Set by the Client before any goroutine starts.
	onSwitch    func(entered bool, now int64)  // degraded mode entered or left
	onEvent     func(name, data string)        // an event of the stream
	onStale     func()                         // events may have been missed
	flush       func(all bool) error           // report the breakers' outcomes: all, or those with failures
	probeTarget func() (breaker, limit string) // a valid name of each, or ""
	faultPoll   func() time.Duration           // how often faults are polled without a stream
}

// goBackground runs fn in a goroutine that Close waits for, unless the
// client is closing. fn must return once c.ctx ends.
func (c *core) goBackground(fn func()) bool {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
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
func (c *core) decided(kind, name string, src Source, allowed bool) {
	if h := c.hooks.OnDecision; h != nil {
		h(kind, name, src, allowed)
	}
}

// stateChanged calls the OnStateChange hook for a change the client
// learned.
func (c *core) stateChanged(name string, from, to State) {
	if from == to || from == StateUnknown || to == StateUnknown || from == StateNotFound || to == StateNotFound {
		return
	}
	if h := c.hooks.OnStateChange; h != nil {
		h(name, from, to)
	}
}

// failClosed reports whether the breaker or limiter of that name refuses
// calls while degraded.
func (c *core) failClosed(kind, name string) bool {
	if f := c.cfg.FailClosedFor; f != nil {
		return f(kind, name)
	}
	return c.cfg.FailClosed
}

// requestCtx returns a context for a background request.
func (c *core) requestCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.cfg.RequestTimeout*time.Duration(len(c.cp.endpoints)))
}

// isFailureSafe is isFailure that turns a panic of Config.IsFailure into a
// failure, keeping the panic's value in *panicked to raise again later.
func (c *core) isFailureSafe(ctx context.Context, err error, panicked *any) (failure bool) {
	defer func() {
		if r := recover(); r != nil {
			*panicked = r
			failure = true
		}
	}()
	return c.isFailure(ctx, err)
}

// isFailure reports whether err, a call's non-nil error, counts as a
// failure; false means the outcome is not counted at all.
func (c *core) isFailure(ctx context.Context, err error) bool {
	if errors.Is(err, ErrOpen) || errors.Is(err, ErrRateLimited) || errors.Is(err, resilience.ErrBulkheadFull) {
		return false
	}
	if ctx != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return false
	}
	if f := c.cfg.IsFailure; f != nil && !f(err) {
		return false
	}
	return true
}

// warnForbidden logs, once per client and loudly, that the token may not
// make decisions: a configuration error that no retry fixes.
func (c *core) warnForbidden(err error) {
	if c.warnedForbidden.Swap(true) {
		return
	}
	c.log.Error("breakwater: the control plane refuses this token's decisions (403): give the client a token of role agent; calls go out unguarded and outcomes are not reported",
		"err", err.Error())
}

// faultTable holds the faults a client knows of.
type faultTable struct {
	faults  atomic.Pointer[map[string]*activeFault]
	started atomic.Bool
	kick    chan struct{}

	mu    sync.Mutex
	full  bool                // the whole list is to be fetched
	names map[string]struct{} // faults to fetch by name
}

// activeFault is a fault as a client applies it.
type activeFault struct {
	abortPercent float64
	abortStatus  int
	delayPercent float64
	delay        time.Duration
	reason       string
	expires      int64 // Unix ns
}
