package httpapi

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// Idempotent decisions: acquire, outcomes and take accept an
// Idempotency-Key; the store applies a key's request once and answers a
// repeat with the first answer (see docs/design.md,
// "Retries and idempotency").
const (
	// IdempotencyKeyHeader names a logical request: 1..128 printable ASCII
	// characters, chosen by the client.
	IdempotencyKeyHeader = contract.IdempotencyKeyHeader
	// ReplayedHeader is "true" on the answer to a repeat.
	ReplayedHeader = contract.ReplayedHeader
)

// idempotencyKey reads the request's Idempotency-Key: "" when there is
// none, an error naming the header when it is malformed.
func idempotencyKey(r *http.Request) (string, error) {
	vs, ok := r.Header[IdempotencyKeyHeader]
	if !ok {
		return "", nil
	}
	const field = IdempotencyKeyHeader
	if len(vs) != 1 {
		return "", badRequest(field, field+": must be sent once")
	}
	if err := contract.ValidateIdempotencyKey(vs[0]); err != nil {
		return "", err
	}
	return vs[0], nil
}

// replays counts the repeats answered from the store's record.
func newReplaysCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "breakwater_idempotent_replays_total",
		Help: "Requests answered with the first answer to their Idempotency-Key, applying nothing, by endpoint (acquire, outcomes, take).",
	}, []string{"endpoint"})
	reg.MustRegister(c)
	return c
}

// markReplayed sets the replay header and counts the replay.
func (a *API) markReplayed(w http.ResponseWriter, endpoint string, replayed bool) {
	if !replayed {
		return
	}
	w.Header().Set(ReplayedHeader, "true")
	a.metrics.replays.WithLabelValues(endpoint).Inc()
}
