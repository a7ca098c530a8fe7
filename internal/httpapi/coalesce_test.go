package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

var (
	fleetReplicas = flag.Int("fleet.replicas", 2000, "simulated replicas of TestFleetReportsToOneBreaker")
	fleetFor      = flag.Duration("fleet.for", 3*time.Second, "how long TestFleetReportsToOneBreaker's replicas report")
)

// TestFleetReportsToOneBreaker: 2,000 simulated replicas report outcomes
// to one breaker through two control planes over one real redis-server,
// each every flush interval (100 ms), half of them as single reports and
// half as batches, each report with its own Idempotency-Key. The store
// counts every reported call exactly once, and runs strictly fewer
// outcomes scripts than it gets reports: at most half as many. The test
// logs reports and script runs per second (scripts counted by Redis, INFO
// commandstats), the figures of docs/performance.md:
//
//	go test -count=1 -run FleetReportsToOneBreaker -v ./internal/httpapi/
//
// With more replicas, or for longer, -args -fleet.replicas N -fleet.for D.
func TestFleetReportsToOneBreaker(t *testing.T) {
	if testing.Short() {
		t.Skip("a load of a few seconds")
	}
	const interval = 100 * time.Millisecond
	r := storetest.StartRedis(t)
	type plane struct {
		svc *breaker.Service
		url string
		hc  *http.Client
	}
	planes := make([]plane, 2)
	for i := range planes {
		st := r.Open(t)
		svc := breaker.NewService(st)
		api := New(Options{Breakers: svc, Store: st})
		srv := httptest.NewServer(api)
		t.Cleanup(srv.Close)
		t.Cleanup(api.Close)
		// A pool of connections per plane, not one per replica: the race
		// detector allows 8128 goroutines, and coalescing does not depend
		// on how requests share connections.
		hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 200, MaxIdleConnsPerHost: 200}, Timeout: time.Minute}
		t.Cleanup(hc.CloseIdleConnections)
		planes[i] = plane{svc: svc, url: srv.URL, hc: hc}
	}
	ctx := context.Background()
	// Never trips, and keeps an hour of calls: its window's count is every
	// call ever applied.
	cfg := breaker.DefaultConfig()
	cfg.Window = breaker.Window{Type: breaker.WindowTime, Size: contract.MaxTimeWindow}
	cfg.MinimumCalls = contract.MaxMinimumCalls
	if _, _, err := planes[0].svc.Put(ctx, "hot", cfg); err != nil {
		t.Fatal(err)
	}

	var (
		reports, calls, batches atomic.Int64
		errMu                   sync.Mutex
		errs                    []string
	)
	fail := func(format string, args ...any) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(errs) < 5 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	send := func(p plane, path, key string, body any) ([]byte, bool) {
		js, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, p.url+path, bytes.NewReader(js))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		res, err := p.hc.Do(req)
		if err != nil {
			fail("POST %s: %v", path, err)
			return nil, false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			fail("POST %s = %d %s", path, res.StatusCode, b)
			return nil, false
		}
		return b, true
	}

	// Warm up: each plane loads the scripts (an EVALSHA answered NOSCRIPT
	// counts in Redis too) and opens a connection.
	for i, p := range planes {
		outs := []map[string]any{{"success": true, "duration_ms": 3, "count": 1}}
		key := "warm-" + strconv.Itoa(i)
		_, ok1 := send(p, "/v1/breakers/hot/outcomes", key, map[string]any{"outcomes": outs})
		_, ok2 := send(p, "/v1/outcomes", key, map[string]any{"reports": []any{map[string]any{"breaker": "hot", "outcomes": outs}}})
		if !ok1 || !ok2 {
			t.Fatalf("warm-up reports failed: %q", errs)
		}
		calls.Add(2)
	}
	outcomeRuns := func() (runs, reports int64) {
		for _, p := range planes {
			n, m := p.svc.OutcomeRuns()
			runs += n
			reports += m
		}
		return runs, reports
	}
	runs0, reports0 := outcomeRuns()
	before := r.CommandStats()
	start := time.Now()
	stop := start.Add(*fleetFor)
	var wg sync.WaitGroup
	for id := range *fleetReplicas {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(id), 1))
			p := planes[id%2]
			batch := id%4 >= 2
			// Replicas start spread over one interval, as a fleet does.
			next := start.Add(time.Duration(rng.Int64N(int64(interval))))
			for seq := 0; ; seq++ {
				time.Sleep(time.Until(next))
				if seq > 0 && time.Now().After(stop) { // every replica reports at least once
					return
				}
				next = next.Add(interval)
				n := 1 + rng.Int64N(50)
				outs := []map[string]any{{"success": true, "duration_ms": 3, "count": n}}
				if rng.IntN(4) == 0 {
					outs = append(outs, map[string]any{"success": false, "duration_ms": 40, "count": 1})
					n++
				}
				key := "r" + strconv.Itoa(id) + "-" + strconv.Itoa(seq)
				if batch {
					batches.Add(1)
					b, ok := send(p, "/v1/outcomes", key, map[string]any{"reports": []any{map[string]any{"breaker": "hot", "outcomes": outs}}})
					var ans contract.BatchAnswer
					if !ok || json.Unmarshal(b, &ans) != nil || len(ans.Results) != 1 || ans.Results[0].Error != nil {
						fail("batch report %s answered %s", key, b)
						continue
					}
				} else if _, ok := send(p, "/v1/breakers/hot/outcomes", key, map[string]any{"outcomes": outs}); !ok {
					continue
				}
				reports.Add(1)
				calls.Add(n)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := r.CommandStats()
	// Every script run in Redis: the breaker's outcomes runs, and one
	// claim of its key per batch (in the key's own slot, see
	// docs/design.md, "The batch report").
	scripts := after["evalsha"].Calls + after["eval"].Calls - before["evalsha"].Calls - before["eval"].Calls

	svcRuns, svcReports := outcomeRuns()
	svcRuns, svcReports = svcRuns-runs0, svcReports-reports0
	b, err := planes[1].svc.Get(ctx, "hot")
	if err != nil {
		t.Fatal(err)
	}
	sec := elapsed.Seconds()
	rate := func(n int64) float64 { return float64(n) / sec }
	t.Logf("%d replicas, flush interval %v, 2 control planes, %.1fs: %d reports to the breaker (%.0f/s) of %d calls; "+
		"%d outcomes script runs for it (%.0f/s), %.1f reports per run; all scripts in Redis %d (%.0f/s, with a claim per batch)",
		*fleetReplicas, interval, sec, reports.Load(), rate(reports.Load()), calls.Load(),
		svcRuns, rate(svcRuns), float64(reports.Load())/float64(max(svcRuns, 1)), scripts, rate(scripts))
	if len(errs) > 0 {
		t.Errorf("reports failed: %q", errs)
	}
	if b.Stats.Calls != calls.Load() {
		t.Errorf("calls in the breaker's window = %d, want %d: every reported call counted exactly once", b.Stats.Calls, calls.Load())
	}
	if svcReports != reports.Load() {
		t.Errorf("reports the services applied = %d, want %d (the reports answered 200)", svcReports, reports.Load())
	}
	if want := svcRuns + batches.Load(); scripts != want {
		t.Errorf("script runs in Redis = %d, want %d: the services' %d outcomes runs and a claim for each of %d batches", scripts, want, svcRuns, batches.Load())
	}
	if reports.Load() < int64(*fleetReplicas) {
		t.Errorf("%d reports, want at least one per replica (%d)", reports.Load(), *fleetReplicas)
	}
	if 2*svcRuns > reports.Load() {
		t.Errorf("%d outcomes script runs for %d reports, want at most half as many", svcRuns, reports.Load())
	}
}
