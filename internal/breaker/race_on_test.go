//go:build race

package breaker

// raceEnabled: the race detector slows the Lua interpreter of miniredis
// tenfold; the long model run happens in a separate pass without it (see
// the Makefile's unit target).
const raceEnabled = true
