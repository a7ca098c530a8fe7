package ratelimit

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

var seedFlag = flag.Uint64("seed", 0, "seed of the random sequences (0: a new one)")

// randomSeed is the seed of a random test, logged so a failure can be
// run again with -seed.
func randomSeed(t *testing.T) uint64 {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (run again with -seed %d)", seed, seed)
	return seed
}

// An op of a random sequence.
type op struct {
	advance time.Duration
	kind    opKind
	req     TakeRequest
	cfg     Config
	key     string
}

type opKind int

const (
	opTake opKind = iota
	opPeek
	opPut
	opDelete
)

func (o op) String() string {
	switch o.kind {
	case opTake:
		return fmt.Sprintf("+%v Take(%+v)", o.advance, o.req)
	case opPeek:
		return fmt.Sprintf("+%v Get(key %q)", o.advance, o.key)
	case opPut:
		return fmt.Sprintf("+%v Put(%+v)", o.advance, o.cfg)
	default:
		return fmt.Sprintf("+%v Delete()", o.advance)
	}
}

var (
	randCapacities = []int64{1, 2, 3, 5, 10, 100, 1000, MaxCapacity}
	randRates      = []float64{MinRefillPerSecond, 0.3, 1, 7.5, 100, 1000, 123456.789, MaxRefillPerSecond}
	randKeys       = []string{"", "a", "{a}", "a:b", "🙂"}
)

func randomConfig(rng *rand.Rand) Config {
	for {
		c := Config{
			Capacity:        randCapacities[rng.IntN(len(randCapacities))],
			RefillPerSecond: randRates[rng.IntN(len(randRates))],
		}
		// miniredis keeps a TTL as a time.Duration, which overflows past
		// 292 years; this bucket takes 31,710 years to fill. The scenario
		// table and TestExpiry cover it.
		if c.Capacity*1000 > milliRate(c)*int64(250*365*24*time.Hour/time.Second) {
			continue
		}
		return c
	}
}

// randomOp draws an op for a limit with config cfg: mostly takes, with
// time steps on the scale of the refill, some back, some long.
func randomOp(rng *rand.Rand, cfg Config) op {
	perToken := max(1, int64(1000/cfg.RefillPerSecond)) // ms
	toFull := min(cfg.Capacity*perToken, 1e8)
	var adv int64
	switch n := rng.IntN(100); {
	case n < 20:
	case n < 30:
		adv = 1
	case n < 70:
		adv = rng.Int64N(min(3*perToken, 1e8)) + 1
	case n < 85:
		adv = rng.Int64N(toFull) + 1
	case n < 93:
		adv = -rng.Int64N(3000) - 1
	default:
		adv = 1e8
	}
	o := op{advance: time.Duration(adv) * time.Millisecond, key: randKeys[rng.IntN(len(randKeys))]}
	switch n := rng.IntN(100); {
	case n < 80:
		o.kind = opTake
		o.req = TakeRequest{Key: o.key, Partial: rng.IntN(2) == 0}
		switch m := rng.IntN(20); {
		case m < 12:
			o.req.Tokens = 1 + rng.Int64N(min(cfg.Capacity, 5))
		case m < 18:
			o.req.Tokens = 1 + rng.Int64N(cfg.Capacity)
		case m < 19:
			o.req.Tokens = cfg.Capacity
		default:
			o.req.Tokens = cfg.Capacity + 1
		}
	case n < 92:
		o.kind = opPeek
	case n < 98:
		o.kind = opPut
		o.cfg = randomConfig(rng)
	default:
		o.kind = opDelete
	}
	return o
}

// TestModelMatchesScripts runs random sequences of takes, looks, config
// changes, deletes and clock steps on the reference model and on the
// scripts in miniredis, and wants the same answer at every step. The
// sequences are split over a few stores that run in parallel.
func TestModelMatchesScripts(t *testing.T) {
	sequences := 1000
	if testing.Short() {
		sequences = 200
	}
	const shards = 4
	seed := randomSeed(t)
	for shard := range shards {
		t.Run(fmt.Sprint("shard", shard), func(t *testing.T) {
			t.Parallel()
			runSequences(t, rand.New(rand.NewPCG(uint64(shard), seed)), sequences/shards)
		})
	}
}

func runSequences(t *testing.T, rng *rand.Rand, sequences int) {
	mb := newMiniBackend(t)
	const name = "lim"
	for seq := range sequences {
		mb.reset()
		model := modelBackend{newRefModel(start)}
		cfg := randomConfig(rng)
		mb.put(t, name, cfg)
		model.put(t, name, cfg)
		var history []op
		for range 5 + rng.IntN(25) {
			o := randomOp(rng, cfg)
			history = append(history, o)
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("sequence %d, config %+v, ops:\n%v\n%s", seq, cfg, history, fmt.Sprintf(format, args...))
			}
			mb.advance(o.advance)
			model.advance(o.advance)
			switch o.kind {
			case opTake:
				got, err := mb.take(name, o.req)
				want, werr := model.take(name, o.req)
				if !sameError(err, werr) || got != want {
					fail("Take(%+v) = %v, %v; model says %v, %v", o.req, takeString(got), err, takeString(want), werr)
				}
			case opPeek:
				got, err := mb.tokens(name, o.key)
				want, werr := model.tokens(name, o.key)
				if !sameError(err, werr) || got != want {
					fail("Get(key %q).Tokens = %v, %v; model says %v, %v", o.key, got, err, want, werr)
				}
			case opPut:
				got, gc := mb.put(t, name, o.cfg)
				want, wc := model.put(t, name, o.cfg)
				got.ConfigVersion = 0 // not the bucket's: versions_test.go tests it
				if got != want || gc != wc {
					fail("Put(%+v) = %+v, created %v; model says %+v, created %v", o.cfg, got, gc, want, wc)
				}
				cfg = o.cfg
			case opDelete:
				err, werr := mb.delete(name), model.delete(name)
				if !sameError(err, werr) {
					fail("Delete() = %v; model says %v", err, werr)
				}
			}
		}
	}
}

// TestModelMatchesRedis runs random sequences on a real redis-server, whose
// clock the test cannot set: the model is moved to the time each script
// reports, so every answer can still be checked exactly. Config changes
// here only make buckets fill faster; see put.lua for why a slower one
// can end a bucket early, which this comparison would see as a difference.
func TestModelMatchesRedis(t *testing.T) {
	r := storetest.StartRedis(t)
	svc := NewService(r.Open(t))
	ctx := context.Background()
	seed := randomSeed(t)
	rng := rand.New(rand.NewPCG(2, seed))
	caps := []int64{1, 3, 10, 50}
	rates := []float64{50, 500, 5000, 50000}
	model := newRefModel(start)
	for seq := range 100 {
		name := fmt.Sprintf("real-%d", seq)
		cfg := Config{Capacity: caps[rng.IntN(len(caps))], RefillPerSecond: rates[rng.IntN(len(rates))]}
		if _, _, err := svc.Put(ctx, name, cfg); err != nil {
			t.Fatalf("Put(%q) error: %v", name, err)
		}
		model.put(name, cfg)
		var history []string
		for range 10 + rng.IntN(20) {
			if rng.IntN(4) == 0 {
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
			}
			key := randKeys[rng.IntN(len(randKeys))]
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("sequence %d (seed %d), config %+v, ops:\n%v\n%s", seq, seed, cfg, history, fmt.Sprintf(format, args...))
			}
			switch n := rng.IntN(100); {
			case n < 80:
				req := TakeRequest{Tokens: 1 + rng.Int64N(cfg.Capacity), Key: key, Partial: rng.IntN(2) == 0}
				history = append(history, fmt.Sprintf("Take(%+v)", req))
				got, err := svc.Take(ctx, name, req)
				if err != nil {
					fail("Take(%+v) error: %v", req, err)
				}
				model.setNow(got.Time.UnixMilli())
				want, err := model.take(name, req)
				if err != nil || got != want {
					fail("Take(%+v) = %v; model says %v, %v", req, got, want, err)
				}
			case n < 92:
				history = append(history, fmt.Sprintf("Get(%q)", key))
				v, err := svc.store.Run(ctx, scriptGet, keys(name, key))
				arr, ok := v.([]any)
				if err != nil || !ok || len(arr) != 5 {
					fail("get script = %v, %v", v, err)
				}
				model.setNow(store.ReplyInt(arr[2]))
				want, _ := model.tokens(name, key)
				if got := float64(store.ReplyInt(arr[3])) / 1e6; got != want {
					fail("Get(key %q).Tokens = %v; model says %v", key, got, want)
				}
			case n < 97:
				// faster to fill: a lower capacity or a higher rate
				next := cfg
				if rng.IntN(2) == 0 {
					next.Capacity = 1 + rng.Int64N(cfg.Capacity)
				} else {
					next.RefillPerSecond *= 1 + float64(rng.IntN(4))
				}
				history = append(history, fmt.Sprintf("Put(%+v)", next))
				if _, _, err := svc.Put(ctx, name, next); err != nil {
					fail("Put error: %v", err)
				}
				model.put(name, next)
				cfg = next
			default:
				history = append(history, "Delete(); Put()")
				if err := svc.Delete(ctx, name); err != nil {
					fail("Delete error: %v", err)
				}
				if _, _, err := svc.Put(ctx, name, cfg); err != nil {
					fail("Put error: %v", err)
				}
				model.delete(name)
				model.put(name, cfg)
			}
		}
	}
}
