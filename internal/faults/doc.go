// Package faults holds Breakwater's fault suite: tests that run real
// redis-server processes (single, Sentinel, Cluster) and real control-plane
// processes, put Shopify's toxiproxy in process between the control planes
// and Redis and between SDK clients and the control planes, and check that
// the guarantees of docs/guarantees.md hold while Redis is killed, frozen
// or failed over, replies are late or lost, scripts are flushed and
// control planes die.
//
// `go test ./internal/faults` runs the short form of every scenario (part
// of `make test`); `make faults` runs the long form, with the durations and
// trial counts docs/guarantees.md gives, and writes the table of results.
// The package has no code outside its tests.
package faults
