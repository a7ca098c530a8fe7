package contract

// Health is the fleet's breakers at a glance: each breaker in exactly one
// bucket, by its effective state. The lists hold names in the order the
// breakers were given and are never nil, so that they encode as empty
// arrays.
type Health struct {
	Closed       int      `json:"closed"`
	Open         []string `json:"open"`
	HalfOpen     []string `json:"half_open"`
	ForcedOpen   []string `json:"forced_open"`
	ForcedClosed []string `json:"forced_closed"`
}

// Summarize buckets breakers by their effective state.
func Summarize(bs []Breaker) Health {
	h := Health{Open: []string{}, HalfOpen: []string{}, ForcedOpen: []string{}, ForcedClosed: []string{}}
	for _, b := range bs {
		switch b.State {
		case StateOpen:
			h.Open = append(h.Open, b.Name)
		case StateHalfOpen:
			h.HalfOpen = append(h.HalfOpen, b.Name)
		case StateForcedOpen:
			h.ForcedOpen = append(h.ForcedOpen, b.Name)
		case StateForcedClosed:
			h.ForcedClosed = append(h.ForcedClosed, b.Name)
		default:
			h.Closed++
		}
	}
	return h
}

// Degraded reports whether any breaker keeps calls from its dependency:
// open, half-open or forced open. Forced closed lets every call through,
// so it alone is not degraded.
func (h Health) Degraded() bool {
	return len(h.Open)+len(h.HalfOpen)+len(h.ForcedOpen) > 0
}
