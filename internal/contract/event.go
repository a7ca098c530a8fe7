package contract

import "time"

// Event types, the "event:" line of GET /v1/events.
const (
	EventBreakerState     = "breaker.state"
	EventBreakerConfig    = "breaker.config"
	EventBreakerDeleted   = "breaker.deleted"
	EventRateLimitConfig  = "ratelimit.config"
	EventRateLimitDeleted = "ratelimit.deleted"
	// EventFaultConfig and EventFaultDeleted say a drill's fault on the
	// dependency Name was set or ended early; clients fetch it by name.
	EventFaultConfig  = "fault.config"
	EventFaultDeleted = "fault.deleted"
)

// Event is a state or config change as GET /v1/events sends it: Type on
// the "event:" line, the rest as JSON on the "data:" line.
type Event struct {
	Type       string    `json:"-"`
	Name       string    `json:"name"`
	From       string    `json:"from,omitempty"`
	To         string    `json:"to,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	At         time.Time `json:"at"`
	Generation int64     `json:"generation,omitempty"`
	// SlowStartMS is set on a close that starts a slow start: how long
	// the share of calls let through ramps up to 100%.
	SlowStartMS int64 `json:"slow_start_ms,omitempty"`
}
