package breaker

import (
	"context"

	"github.com/breakwater-dev/breakwater/internal/store"
)

// For the benchmarks, which run the bare scripts beside the full path.
var (
	ScriptAcquire  = scriptAcquire
	ScriptOutcomes = scriptOutcomes
)

func Keys(name string) []string { return keys(name) }

// RunReport is one report of ReportRun.
type RunReport struct {
	Key      string
	Outcomes []Outcome
}

// RunAnswer answers one report of ReportRun.
type RunAnswer struct {
	Decision Decision
	Replayed bool
	Err      error
}

// ReportRun applies reports to one breaker in one outcomes script run, as
// coalescing does when they arrive together.
func ReportRun(ctx context.Context, st *store.Store, name string, reps []RunReport) ([]RunAnswer, error) {
	reqs := make([]store.Request, len(reps))
	for i, r := range reps {
		var err error
		if reqs[i], err = reportRequest(name, "outcomes", r.Key, r.Outcomes); err != nil {
			return nil, err
		}
	}
	replies, err := st.RunEach(ctx, scriptOutcomes, keys(name), []any{name}, reqs)
	if err != nil {
		return nil, err
	}
	out := make([]RunAnswer, len(replies))
	for i, r := range replies {
		out[i].Replayed, out[i].Err = r.Replayed, r.Err
		if r.Err == nil {
			out[i].Decision, out[i].Err = parseDecision(r.Val)
		}
	}
	return out, nil
}
