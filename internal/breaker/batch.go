package breaker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/store"
)

// BatchReport is one breaker's outcomes in a batch (contract.Report).
// Err, when set, is why the report could not be read; it is answered as
// that report's error and nothing of it is applied.
type BatchReport = contract.Report

// BatchResult answers one report of a batch: its decision, or Err.
type BatchResult = contract.ReportResult

// ReportBatch applies every breaker's report of one batch, each as Report
// does, and answers each in order. A bad or failed report fails alone.
//
// With an idempotency key, each report runs at most once (its record is
// scoped to the batch endpoint, the key and the report's place), and the
// key is first claimed for this batch's content: a repeat of key with
// another batch is store.ErrKeyReused and applies nothing. replayed says
// the key was seen before with this batch.
func (s *Service) ReportBatch(ctx context.Context, key string, reports []BatchReport) (results []BatchResult, replayed bool, err error) {
	if len(reports) == 0 || len(reports) > contract.MaxBatchReports {
		return nil, false, &ValidationError{Field: "reports", Reason: fmt.Sprintf("must hold 1 to %d reports, got %d", contract.MaxBatchReports, len(reports))}
	}
	if key != "" {
		// The claim's record is in a slot of its own, written before any
		// report: a different batch under the key is refused before it can
		// apply a report the first batch did not have.
		req, err := batchHash(reports)
		if err != nil {
			return nil, false, err
		}
		claimKey := store.ObjectKeys("ob", []string{key}, "claim")[0]
		replayed, err = s.store.Claim(ctx, claimKey, req)
		if err != nil {
			return nil, false, err
		}
	}
	// Every report is queued at once, each for its breaker's next
	// outcomes run, where it may share a run with the reports of other
	// requests (see submitReport); the store pipelines the runs of
	// different breakers.
	results = make([]BatchResult, len(reports))
	pending := make([]*store.Pending, len(reports))
	for i, rep := range reports {
		if rep.Err != nil {
			results[i].Err = rep.Err
			continue
		}
		k := ""
		if key != "" {
			k = key + "#" + strconv.Itoa(i)
		}
		pending[i], results[i].Err = s.submitReport(ctx, rep.Breaker, "batch", k, rep.Outcomes)
	}
	for i, p := range pending {
		if p != nil {
			results[i].Decision, results[i].Replayed, results[i].Err = waitReport(ctx, p)
		}
	}
	return results, replayed, nil
}

// batchHash digests a batch as the server read it.
func batchHash(reports []BatchReport) (string, error) {
	type entry struct {
		Breaker  string
		Outcomes []Outcome
		Err      string
	}
	es := make([]entry, len(reports))
	for i, r := range reports {
		es[i] = entry{Breaker: r.Breaker, Outcomes: r.Outcomes}
		if r.Err != nil {
			es[i].Err = r.Err.Error()
		}
	}
	js, err := json.Marshal(es)
	if err != nil {
		return "", err
	}
	return store.RequestHash([]byte("batch"), js), nil
}
