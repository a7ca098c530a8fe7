package store

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Observer is told of every round trip to the store: the operation (a
// script's name, or the command), how long it took and how it ended. It
// must be quick and safe for concurrent use.
type Observer func(op string, d time.Duration, err error)

// observeHook counts round trips and reports each to the observer.
type observeHook struct {
	calls    *atomic.Int64
	observer Observer
}

func (h observeHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h observeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.calls.Add(1)
		// Scripts are observed by the pipeliner, under their own names
		// (and an EVALSHA answered NOSCRIPT with the EVAL that follows it).
		if name := cmd.Name(); h.observer != nil && name != "evalsha" && name != "eval" {
			h.observer(name, time.Since(start), err)
		}
		return err
	}
}

func (h observeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		// Script pipelines are observed per script by the pipeliner.
		err := next(ctx, cmds)
		h.calls.Add(1)
		return err
	}
}

// RoundTrips is how many requests this store has sent to Redis. Benchmarks
// use it to show that a decision costs exactly one.
func (s *Store) RoundTrips() int64 { return s.calls.Load() }
