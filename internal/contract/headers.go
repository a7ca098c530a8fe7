package contract

// Headers of the API besides the standard ones (Retry-After, RateLimit-*).
const (
	// ClientHeader names the SDK client (one per process) that sends a
	// take; it must match ClientIDPattern to be counted.
	ClientHeader = "Breakwater-Client"
	// ClientsHeader answers a take with how many clients took from that
	// limit lately, fleet-wide. A client uses it to hold a fair share of
	// the limit while no control plane answers.
	ClientsHeader = "Breakwater-Clients"
	// IdempotencyKeyHeader names a logical request to acquire, outcomes or
	// take (see ValidateIdempotencyKey): a repeat within IdempotencyTTL is
	// answered with the first answer and applies nothing.
	IdempotencyKeyHeader = "Idempotency-Key"
	// ReplayedHeader is "true" on the answer to such a repeat.
	ReplayedHeader = "Idempotent-Replayed"
)
