package ratelimit

// For the HTTP benchmark, which runs the bare take script beside the
// handler.
var ScriptTake = scriptTake

func Keys(name, key string) []string { return keys(name, key) }
