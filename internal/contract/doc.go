// Package contract is Breakwater's REST contract in Go: the names the API
// accepts, the limits it enforces, the wire types of breakers, decisions,
// outcomes, batch reports, takes, events and audit entries, their
// validation, and the error kinds the API answers with.
//
// The control plane, the SDK (client/) and the agent all use it, so each
// rule is written once. It imports the standard library only, so that the
// SDK may import it without pulling Redis or an HTTP router into its users'
// builds; a test holds it to that. See docs/design.md, "Package
// boundaries".
package contract
