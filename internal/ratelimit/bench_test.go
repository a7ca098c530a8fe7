package ratelimit

import (
	"context"
	"testing"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// The take path against one real redis-server, two ways:
//
//	BenchmarkTakeScript  the bare take script through the store (EVALSHA),
//	                     no validation, no parsing
//	BenchmarkTake        Service.Take: validation, key encoding, the
//	                     script, parsing the reply
//
// Each reports round-trips/op (requests the store sent to Redis: 1 means
// one round trip per take) and script-us/call (the script's own time inside
// Redis, usec_per_call of evalsha in INFO commandstats).
//
//	go test -run '^$' -bench . -benchmem ./internal/ratelimit/
//
// The bucket holds 1e9 tokens and refills at one a second: it never runs
// dry in a benchmark, so every take is granted and rewrites the bucket, the
// most expensive path for a hot key.
func BenchmarkTake(b *testing.B) {
	svc, r := benchService(b)
	ctx := context.Background()
	req := TakeRequest{Tokens: 1, Key: "tenant-42"}
	benchLoop(b, svc, r, func() error {
		_, err := svc.Take(ctx, "bench", req)
		return err
	})
}

func BenchmarkTakeScript(b *testing.B) {
	svc, r := benchService(b)
	ctx := context.Background()
	ks := keys("bench", "tenant-42")
	benchLoop(b, svc, r, func() error {
		_, err := svc.store.Run(ctx, scriptTake, ks, 1, "0")
		return err
	})
}

// BenchmarkTakeParallel is Service.Take from 8 goroutines per CPU, over
// 64 keys: the throughput of one store connection pool.
func BenchmarkTakeParallel(b *testing.B) {
	svc, _ := benchService(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := svc.Take(ctx, "bench", TakeRequest{Tokens: 1, Key: benchKeys[i%len(benchKeys)]}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

var benchKeys = func() []string {
	ks := make([]string, 64)
	for i := range ks {
		ks[i] = "tenant-" + string(rune('A'+i))
	}
	return ks
}()

func benchService(b *testing.B) (*Service, *storetest.Redis) {
	b.Helper()
	r := storetest.StartRedis(b)
	svc := NewService(r.Open(b))
	if _, _, err := svc.Put(context.Background(), "bench", Config{Capacity: MaxCapacity, RefillPerSecond: 1}); err != nil {
		b.Fatal(err)
	}
	return svc, r
}

func benchLoop(b *testing.B, svc *Service, r *storetest.Redis, call func() error) {
	if err := call(); err != nil { // warm the connection and the script cache
		b.Fatal(err)
	}
	r.Do("CONFIG", "RESETSTAT")
	trips := svc.store.RoundTrips()
	b.ReportAllocs()
	for b.Loop() {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(svc.store.RoundTrips()-trips)/float64(b.N), "round-trips/op")
	b.ReportMetric(r.CommandStats()["evalsha"].UsecPerCall, "script-us/call")
}
