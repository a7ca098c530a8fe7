package contract

import "time"

// Audit results.
const (
	// AuditOK is the result of an action that was applied.
	AuditOK = "ok"
	// AuditUnknown is the result of an action whose store reply was lost
	// (it may have been applied), or whose result was never recorded.
	AuditUnknown = "unknown"
	// AuditErrorPrefix starts the result of an action that failed,
	// followed by what the API answered.
	AuditErrorPrefix = "error: "
)

// AuditEntry is one operator action as GET /v1/audit shows it.
type AuditEntry struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Reason string    `json:"reason,omitempty"`
	// Result is AuditOK, AuditErrorPrefix and what failed, or
	// AuditUnknown.
	Result string `json:"result"`
	// ConfigVersion is the config version a put made (breakers and rate
	// limits), when it applied.
	ConfigVersion int64 `json:"config_version,omitempty"`
}

// AuditAction is an operator action about to run: who, what, on which
// object and why.
type AuditAction struct {
	By     string
	Action string
	Target string
	Reason string
}
