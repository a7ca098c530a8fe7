package client

// State is a circuit breaker's state, as Breaker.State reports it and
// Hooks.OnStateChange tells of it. The zero value, StateUnknown, means
// nothing has been learned yet.
type State uint8

const (
	// StateUnknown is the state of a breaker the client has not yet
	// asked the control plane about.
	StateUnknown State = iota
	// StateClosed lets calls through and counts their outcomes.
	StateClosed
	// StateOpen refuses calls until the breaker's open duration ends.
	StateOpen
	// StateHalfOpen lets a few probe calls through, fleet-wide; their
	// outcomes close the breaker or open it again.
	StateHalfOpen
	// StateForcedOpen is an operator's override that refuses every call.
	StateForcedOpen
	// StateForcedClosed is an operator's override that lets every call
	// through, still counting outcomes, and never trips.
	StateForcedClosed
	// StateNotFound means the control plane has no breaker of that name:
	// calls go out unguarded and nothing is reported until it is created.
	StateNotFound
)

// String returns the REST API's name of the state: "closed", "open",
// "half_open", "forced_open" or "forced_closed"; "unknown" for
// StateUnknown and "not_found" for StateNotFound.
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateOpen:
		return "open"
	case StateHalfOpen:
		return "half_open"
	case StateForcedOpen:
		return "forced_open"
	case StateForcedClosed:
		return "forced_closed"
	case StateNotFound:
		return "not_found"
	}
	return "unknown"
}

// parseState returns the State the API names s; StateUnknown for a name
// it does not know.
func parseState(s string) State {
	switch s {
	case "closed":
		return StateClosed
	case "open":
		return StateOpen
	case "half_open":
		return StateHalfOpen
	case "forced_open":
		return StateForcedOpen
	case "forced_closed":
		return StateForcedClosed
	}
	return StateUnknown
}
