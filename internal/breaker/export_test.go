package breaker

// For the benchmarks, which run the bare scripts beside the full path.
var (
	ScriptAcquire  = scriptAcquire
	ScriptOutcomes = scriptOutcomes
)

func Keys(name string) []string { return keys(name) }
