package breaker_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/httpapi"
	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// The decision paths side by side against one real redis-server:
//
//	script   the bare Lua script through go-redis (EVALSHA)
//	service  breaker.Service: validation, the script, parsing the reply
//	keyed    the service with a new Idempotency-Key each call (applies and records)
//	replay   the service with one key again and again (answers from the record)
//	http     a real HTTP request over loopback to the real handler
//
// Each reports round-trips/op (requests the store sent to Redis, counted by
// a go-redis hook: 1 means one round trip per decision) and script-us/call
// (the script's own time inside Redis, from INFO commandstats).
//
//	go test -run '^$' -bench . -benchmem ./internal/breaker/
func BenchmarkAcquire(b *testing.B) {
	benchDecision(b, "acquire", breaker.ScriptAcquire, func() []any { return nil }, nil, nil)
}

func BenchmarkOutcomes(b *testing.B) {
	benchDecision(b, "outcomes", breaker.ScriptOutcomes,
		func() []any { return []any{"1", 12, 1, "", -1, 0} },
		[]byte(`{"outcomes":[{"success":true,"duration_ms":12}]}`), nil)
}

// BenchmarkOutcomesRetryBudget is BenchmarkOutcomes for a breaker with a
// retry budget and a slow start: each report also settles and lends
// retries (see docs/performance.md, "The outcomes script").
func BenchmarkOutcomesRetryBudget(b *testing.B) {
	benchDecision(b, "outcomes", breaker.ScriptOutcomes,
		func() []any { return []any{"1", 12, 1, "", -1, 0} },
		[]byte(`{"outcomes":[{"success":true,"duration_ms":12}]}`),
		func(c *breaker.Config) { c.RetryBudgetPercent, c.SlowStartMS = 10, 30000 })
}

// benchBreaker starts a redis-server with a breaker "bench" that never
// trips, so that every iteration takes the same path; with changes its
// config first.
func benchBreaker(b *testing.B, with func(*breaker.Config)) (*storetest.Redis, *store.Store, *breaker.Service) {
	r := storetest.StartRedis(b)
	st := r.Open(b)
	svc := breaker.NewService(st)
	cfg := breaker.DefaultConfig()
	cfg.MinimumCalls = 1_000_000
	if with != nil {
		with(&cfg)
	}
	if _, _, err := svc.Put(context.Background(), "bench", cfg); err != nil {
		b.Fatal(err)
	}
	return r, st, svc
}

func benchDecision(b *testing.B, op string, sc *store.Script, args func() []any, body []byte, with func(*breaker.Config)) {
	r, st, svc := benchBreaker(b, with)
	ctx := context.Background()
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Breakers: svc, Store: st}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := srv.URL + "/v1/breakers/bench/" + op
	keys := breaker.Keys("bench")
	outs := []breaker.Outcome{{Success: true, DurationMS: 12, Count: 1, Generation: -1}}
	var n atomic.Int64 // keys drawn by the keyed path

	paths := []struct {
		name string
		call func() error
	}{
		{"script", func() error {
			ks, as := keys, append([]any{"bench"}, args()...)
			if op == "outcomes" { // one report, as the service sends a lone one
				ks, as = store.EachCall(keys, []any{"bench"}, store.Request{Args: args()})
			}
			_, err := st.Run(ctx, sc, ks, as...)
			return err
		}},
		{"service", func() error {
			var err error
			if op == "acquire" {
				_, err = svc.Acquire(ctx, "bench")
			} else {
				_, err = svc.Report(ctx, "bench", outs)
			}
			return err
		}},
		{"keyed", func() error {
			key := "k-" + strconv.FormatInt(n.Add(1), 10)
			var err error
			if op == "acquire" {
				_, _, err = svc.AcquireOnce(ctx, "bench", key)
			} else {
				_, _, err = svc.ReportOnce(ctx, "bench", key, outs)
			}
			return err
		}},
		{"replay", func() error {
			var err error
			if op == "acquire" {
				_, _, err = svc.AcquireOnce(ctx, "bench", "same")
			} else {
				_, _, err = svc.ReportOnce(ctx, "bench", "same", outs)
			}
			return err
		}},
		{"http", func() error {
			res, err := client.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				return err
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Fatalf("%s = %d", url, res.StatusCode)
			}
			return nil
		}},
	}
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			p.call() // warm the connection and the script cache
			r.Do("CONFIG", "RESETSTAT")
			trips := st.RoundTrips()
			b.ReportAllocs()
			for b.Loop() {
				if err := p.call(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(st.RoundTrips()-trips)/float64(b.N), "round-trips/op")
			b.ReportMetric(r.CommandStats()["evalsha"].UsecPerCall, "script-us/call")
		})
		b.Run(p.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := p.call(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkOutcomesRun measures one outcomes script run that applies n
// reports of one entry each, as coalescing sends them, with and without
// an Idempotency-Key per report: the script's own time inside Redis per
// run (script-us/call) and per report (script-us/report).
//
//	go test -run '^$' -bench OutcomesRun -benchtime 2000x ./internal/breaker/
func BenchmarkOutcomesRun(b *testing.B) {
	r, st, _ := benchBreaker(b, nil)
	ctx := context.Background()
	keys := breaker.Keys("bench")
	var seq atomic.Int64
	for _, keyed := range []bool{false, true} {
		for _, n := range []int{1, 8, 64} {
			name := fmt.Sprintf("reports=%d", n)
			if keyed {
				name += "/keyed"
			}
			b.Run(name, func(b *testing.B) {
				reqs := make([]store.Request, n)
				call := func() error {
					for i := range reqs {
						reqs[i] = store.Request{Args: []any{"1", 12, 1, "", -1, 0}}
						if keyed {
							k := strconv.FormatInt(seq.Add(1), 10)
							reqs[i].Once = store.Once{Key: store.ObjectKeys("b", []string{"bench"}, store.Suffix("i.outcomes.", k))[0], Hash: "h"}
						}
					}
					ks, as := store.EachCall(keys, []any{"bench"}, reqs...)
					_, err := st.Run(ctx, breaker.ScriptOutcomes, ks, as...)
					return err
				}
				if err := call(); err != nil { // load the script
					b.Fatal(err)
				}
				r.Do("CONFIG", "RESETSTAT")
				b.ReportAllocs()
				for b.Loop() {
					if err := call(); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				us := r.CommandStats()["evalsha"].UsecPerCall
				b.ReportMetric(us, "script-us/call")
				b.ReportMetric(us/float64(n), "script-us/report")
			})
		}
	}
}
