// Package resilience holds in-process policies for calls to a dependency:
// Retry with exponential backoff and jitter, Timeout, Bulkhead and
// Fallback, and Compose to stack them in one Policy. They need no control
// plane: each decides from what this process sees. Call runs a function
// that returns a value under a Policy.
//
// Every policy has one method, Do, which runs fn under the policy's rule:
//
//	p := resilience.Compose(
//		resilience.Retry{MaxAttempts: 3},
//		resilience.Timeout{Duration: 2 * time.Second},
//	)
//	err := p.Do(ctx, charge)
//
// The fleet-wide circuit breakers and rate limiters of package client
// (client.Breaker, client.Limiter) have the same Do method, so they are
// policies too and compose with these; see Compose for the recommended
// order.
//
// The package imports nothing outside the standard library.
package resilience
