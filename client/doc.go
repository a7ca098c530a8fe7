// Package client is Breakwater's Go SDK: circuit breakers and rate limits
// kept by the control plane for a whole fleet of replicas, decided in
// process from cached answers. The in-process patterns that go with them
// (Retry, Timeout, Bulkhead, Fallback, Compose) are in the subpackage
// resilience; a Breaker and a Limiter compose with them, since they have
// the same Do method.
//
// Make one Client per process with New, and take breakers and limiters
// from it:
//
//	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:8080"}, Token: token})
//	defer c.Close()
//
//	err = c.Breaker("payment-service").Do(ctx, charge)   // errors.Is(err, client.ErrOpen) when refused
//	err = c.Limiter("payment-api").Take(ctx)              // errors.Is(err, client.ErrRateLimited) when refused
//
// # What a decision costs
//
// A breaker decides from the control plane's last answer, cached for its
// cache_ttl_ms: with a fresh "closed" answer Do makes no network call,
// takes no lock and allocates nothing, in tens of nanoseconds
// (docs/performance.md in the repository has the figures and the
// benchmarks that measure them); Allow allocates only the call's own done
// func. Outcomes are counted in striped atomic counters and reported by
// one goroutine per Client, one request for all breakers every
// Config.FlushInterval (a breaker with only fast successes pending waits up to
// Config.SuccessFlushInterval), with the API's count field; the answer to
// each report refreshes the cache, so a busy breaker never waits on the
// network and learns of a trip by its next report at the latest. The control plane sees requests in proportion to
// replicas × breakers / flush interval, not to traffic.
//
// An open breaker refuses locally until the time the control plane gave.
// When an answer expires, one caller asks again while the others keep
// deciding from the expired answer. In half-open every call asks for a
// probe permit, and a probe's outcome is reported at once.
//
// A limiter leases tokens: it takes a batch from the control plane and
// spends it locally, the batch sized to last about one flush interval at
// the observed rate. A lease expires after one flush interval and its
// unspent tokens are lost, never given back: the fleet never admits more
// than the bucket grants, but may admit less, and a replica may be
// refused while another holds tokens. Config.LeaseSize 1 turns leasing
// off (one request per call, exact).
//
// # Events
//
// Each Client holds one stream of the control plane's /v1/events: a state
// change anywhere in the fleet (a trip, an operator's override) updates
// the cached answer within milliseconds. While the stream is down cached
// answers live out their cache_ttl_ms; after a reconnect every cached
// answer is treated as stale.
//
// # Degraded mode
//
// When no control plane answers, the client decides locally: a local
// breaker per breaker, with the last known config and state, and a local
// token bucket per limiter holding a fair share of the last known limit
// (1/N for the N clients the control plane last counted taking from it, or
// Config.FleetShare); or, with Config.FailClosed, it refuses calls. No caller waits on
// a dead control plane more than once: one background probe at a time
// finds out when it is back. Local outcomes stay local. See ErrUnavailable
// and Hooks.OnDegraded.
//
// # HTTP
//
// Transport is an http.RoundTripper that applies a dependency's breaker,
// limiter, bulkhead, retries and per-attempt timeout to every request of
// an http.Client: 5xx answers and transport errors count as failures,
// 4xx as successes, and only requests that are safe to repeat are
// retried.
//
// # Drills
//
// An operator can inject faults into the calls a whole fleet makes to one
// dependency (PUT /v1/faults/{name} on the control plane). A Transport
// with a Breaker applies the faults of the breaker's name unless
// Transport.IgnoreFaults is set; Do and Execute apply them after
// Breaker.ApplyFaults(true). An aborted call never reaches the dependency
// and counts as its failure (a *FaultError from Do, a made-up response
// from a Transport); a delayed call waits first. Faults are learned from
// the event stream, or by polling without one.
//
// # Metrics
//
// The package imports nothing outside the standard library and its own
// subpackages. Its Hooks
// report decisions, state changes and degraded-mode switches; the
// subpackage clientmetrics turns them into Prometheus metrics.
package client
