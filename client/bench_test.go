package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Benchmarks of the hot path: a breaker with a fresh cached "closed"
// answer, Allow and done, serially and under RunParallel, beside
// sony/gobreaker v2's CircuitBreaker.Execute and TwoStepCircuitBreaker's
// Allow in the same run. Compare runs with benchstat:
//
//	go test -run '^$' -bench . -benchmem -count 10 ./client/ > new.txt
//
// The control plane here is a stub that answers "closed" with a minute of
// cache_ttl_ms, so the benchmark measures the client alone; the outcomes
// it reports every flush interval cost a request in the background.

// closedStub answers every acquire and report with a closed decision.
func closedStub(tb testing.TB) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && len(r.URL.Path) > len("/v1/breakers/"):
			json.NewEncoder(w).Encode(map[string]any{"name": "bench", "config": defaultBreakerConfig(), "state": "closed", "generation": 1})
		case r.Method == http.MethodPost:
			json.NewEncoder(w).Encode(decision{Allowed: true, State: "closed", CacheTTLMS: 60000, Generation: 1})
		default:
			http.NotFound(w, r)
		}
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// cachedBreaker returns a breaker of a client whose cache holds a fresh
// closed answer.
func cachedBreaker(b *testing.B) *Breaker {
	b.Helper()
	srv := closedStub(b)
	c, err := New(Config{Endpoints: []string{srv.URL}, DisableEvents: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	br := c.Breaker("bench")
	done, err := br.Allow(context.Background())
	if err != nil {
		b.Fatalf("Allow() = %v", err)
	}
	done(nil)
	for br.slowNS.Load() == 0 { // the config arrives in the background
		time.Sleep(time.Millisecond)
	}
	return br
}

func BenchmarkBreakerAllow(b *testing.B) {
	br := cachedBreaker(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		done, err := br.Allow(ctx)
		if err != nil {
			b.Fatal(err)
		}
		done(nil)
	}
}

func BenchmarkBreakerAllowParallel(b *testing.B) {
	br := cachedBreaker(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			done, err := br.Allow(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			done(nil)
		}
	})
}

func BenchmarkBreakerDo(b *testing.B) {
	br := cachedBreaker(b)
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := br.Do(ctx, fn); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBreakerDoParallel(b *testing.B) {
	br := cachedBreaker(b)
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := br.Do(ctx, fn); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGobreakerExecute(b *testing.B) {
	cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
	fn := func() (struct{}, error) { return struct{}{}, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cb.Execute(fn); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGobreakerExecuteParallel(b *testing.B) {
	cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
	fn := func() (struct{}, error) { return struct{}{}, nil }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cb.Execute(fn); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGobreakerTwoStepAllow(b *testing.B) {
	cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
	b.ReportAllocs()
	for b.Loop() {
		done, err := cb.Allow()
		if err != nil {
			b.Fatal(err)
		}
		done(nil)
	}
}

func BenchmarkGobreakerTwoStepAllowParallel(b *testing.B) {
	cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			done, err := cb.Allow()
			if err != nil {
				b.Error(err)
				return
			}
			done(nil)
		}
	})
}
