package ratelimit_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/httpapi"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// Decisions per second at 50 concurrent connections, side by side in one
// run against one real redis-server:
//
//	script  the bare take script through go-redis (EVALSHA), 50 goroutines
//	http    POST /v1/ratelimits/{name}/take through the real handler over
//	        loopback HTTP/1.1, 50 keep-alive connections
//	hello   a chi hello-world handler, same client: the ceiling of this
//	        machine's HTTP stack, to read the http figure against
//
//	go test -run '^$' -bench 'Decisions' -benchmem ./internal/ratelimit/
func BenchmarkDecisions(b *testing.B) {
	r := storetest.StartRedis(b)
	st := r.Open(b)
	svc := ratelimit.NewService(st)
	ctx := context.Background()
	if _, _, err := svc.Put(ctx, "bench", ratelimit.Config{Capacity: ratelimit.MaxCapacity, RefillPerSecond: 1}); err != nil {
		b.Fatal(err)
	}
	api := httpapi.New(httpapi.Options{Breakers: breaker.NewService(st), Limits: svc, Store: st})
	srv := httptest.NewServer(api)
	defer srv.Close()
	hello := chi.NewRouter()
	hello.Get("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
	helloSrv := httptest.NewServer(hello)
	defer helloSrv.Close()

	const conns = 50
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	keys := make([][]byte, 64)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, `{"key":"tenant-%d"}`, i)
	}
	do := func(req *http.Request) error {
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}
	paths := []struct {
		name string
		call func(i int) error
	}{
		{"script", func(i int) error {
			_, err := st.Run(ctx, ratelimit.ScriptTake, ratelimit.Keys("bench", fmt.Sprint("tenant-", i%64)), 1, "0")
			return err
		}},
		{"http", func(i int) error {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/ratelimits/bench/take", bytes.NewReader(keys[i%64]))
			return do(req)
		}},
		{"hello", func(i int) error {
			req, _ := http.NewRequest("GET", helloSrv.URL+"/", nil)
			return do(req)
		}},
	}
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			p.call(0)
			b.ReportAllocs()
			b.SetParallelism((conns + 1) / 2) // x GOMAXPROCS(2) = 50 goroutines
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					if err := p.call(i); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
		})
	}
}
