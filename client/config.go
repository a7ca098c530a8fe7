package client

import (
	"log/slog"
	"net/http"
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

// Source says where a decision came from, as Hooks.OnDecision reports
// it. The zero value is no source, and its String is "unknown".
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
	// state changed (from an answer or from the event stream). It is not
	// called for the first state learned, nor for a change to or from
	// StateUnknown or StateNotFound.
	OnStateChange func(name string, from, to State)

	// OnDecision is called for every decision of a breaker's Allow
	// (kind KindBreaker) and a limiter's Take, TakeN, Wait and WaitN
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

	// FlushInterval is how often the outcomes gathered for the breakers
	// are reported, one request for all of them, and how long a leased
	// batch of rate-limit tokens lives. Zero means 100 ms.
	FlushInterval time.Duration

	// SuccessFlushInterval is how long a breaker's outcomes may wait to
	// be reported while they are all successes: a breaker with a
	// failure, a slow call or a retry pending is reported at the end of
	// the flush interval it happened in, one with only fast successes
	// that were not retries at most every SuccessFlushInterval (or sooner
	// when MaxBatch fills). Fewer reports of healthy breakers save
	// the store work that grows with the fleet. Zero means 4 x
	// FlushInterval; a value under FlushInterval means FlushInterval
	// (every breaker reported every interval).
	SuccessFlushInterval time.Duration

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
	// ErrRateLimited, resilience.ErrBulkheadFull), which are never counted. It is on
	// the path of every failed call.
	IsFailure func(err error) bool

	// Hooks are called when decisions are made and states change.
	Hooks Hooks

	// DisableEvents turns off the client's /v1/events stream: cached
	// answers then live out their cache_ttl_ms, and a trip or an
	// operator's override is learned only when an answer expires.
	DisableEvents bool
}
