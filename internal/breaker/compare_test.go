package breaker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// clock is the store's time as a sequence sees it: a miniredis clock that
// the sequence moves, or a real Redis whose time it cannot move.
type clock interface {
	Now() time.Time
	Advance(time.Duration)
}

// randomConfig draws a config small enough that trips, probes and
// overrides all happen within a short sequence.
func randomConfig(r *rand.Rand, timeless bool) Config {
	c := DefaultConfig()
	if r.IntN(2) == 0 {
		c.Window = Window{Type: WindowTime, Size: 1 + r.Int64N(5)}
	} else {
		c.Window = Window{Type: WindowCount, Size: 1 + r.Int64N(20)}
	}
	c.MinimumCalls = 1 + r.Int64N(10)
	if c.Window.Type == WindowCount {
		c.MinimumCalls = min(c.MinimumCalls, c.Window.Size) // Validate refuses more
	}
	c.FailureRateThreshold = 1 + r.Int64N(100)
	c.SlowCallDurationMS = 1 + r.Int64N(500)
	c.SlowCallRateThreshold = 1 + r.Int64N(100)
	c.ConsecutiveFailures = r.Int64N(6)
	c.OpenDurationMS = 100 + r.Int64N(3000)
	c.HalfOpenMaxCalls = 1 + r.Int64N(3)
	c.ProbeTimeoutMS = 100 + r.Int64N(3000)
	c.CacheTTLMS = 1 + r.Int64N(1000)
	if timeless {
		// Real Redis: its clock runs on its own, so nothing may depend on
		// when within the run a step lands.
		if c.Window.Type == WindowTime {
			c.Window.Size = MaxTimeWindow
		}
		c.OpenDurationMS = maxDurationMS
		c.ProbeTimeoutMS = maxDurationMS
	}
	return c
}

// runSequence drives the scripts and the model with the same random
// operations and fails at the first step where they differ. It returns how
// many transitions it saw, so the caller can check the sequences reach the
// interesting states.
func runSequence(t *testing.T, s *Service, clk clock, name string, seed uint64, steps int, timeless bool) (transitions int) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	m := newModel(name)
	failP := r.Float64() // how often calls fail in this sequence
	slowP := r.Float64() / 2
	now := func() int64 { return ms(clk.Now()) }
	lastGen := int64(0)
	var log []string

	fail := func(step int, what string, got, want any) {
		t.Helper()
		t.Fatalf("seed %d step %d: %s\n(-script +model):\n%s\nmodel: %+v\nsteps so far:\n%v", seed, step, what, cmp.Diff(got, want), m, log)
	}

	cfg := randomConfig(r, timeless)
	if _, created, err := s.Put(ctx, name, cfg); err != nil || !created {
		t.Fatalf("seed %d: Put = created %v, %v", seed, created, err)
	}
	m.put(now(), cfg)

	for step := range steps {
		var op string
		var gotD, wantD Decision
		var gotErr, wantErr error
		isDecision := false
		switch k := r.IntN(100); {
		case k < 25:
			op = "acquire"
			gotD, gotErr = s.Acquire(ctx, name)
			wantD, wantErr = m.acquire(now())
			isDecision = true
		case k < 60:
			n := 1 + r.IntN(3)
			outs := make([]Outcome, n)
			for i := range outs {
				o := Outcome{Success: r.Float64() >= failP, DurationMS: r.Int64N(400), Count: 1, Generation: -1}
				if r.Float64() < slowP {
					o.DurationMS = cfg.SlowCallDurationMS + r.Int64N(100)
				}
				switch p := r.IntN(10); {
				case p < 3 && len(m.permits()) > 0:
					ps := m.permits()
					o.Permit = ps[r.IntN(len(ps))]
				case p < 4:
					o.Permit = fmt.Sprintf("%d.%d", lastGen, 1+r.IntN(3)) // maybe stale, maybe never issued
				case p < 6:
					o.Count = 1 + r.Int64N(8)
				}
				if o.Permit == "" && r.IntN(5) == 0 {
					o.Generation = max(m.gen-r.Int64N(2), 0) // this generation or the one before
				}
				outs[i] = o
			}
			op = fmt.Sprintf("report %+v", outs)
			gotD, gotErr = s.Report(ctx, name, outs)
			wantD, wantErr = m.report(now(), outs)
			isDecision = true
		case k < 80:
			if timeless {
				op = "get"
				break
			}
			d := time.Duration(r.Int64N(1500)) * time.Millisecond
			if r.IntN(10) == 0 {
				d = time.Duration(cfg.OpenDurationMS+r.Int64N(500)) * time.Millisecond
			}
			op = "advance " + d.String()
			clk.Advance(d)
		case k < 85:
			req := ForceRequest{State: StateForcedOpen, Reason: "seq", By: "tester"}
			if r.IntN(2) == 0 {
				req.State = StateForcedClosed
			}
			if r.IntN(2) == 0 && !timeless {
				req.TTLMS = 1 + r.Int64N(3000)
			}
			op = fmt.Sprintf("force %+v", req)
			_, gotErr = s.Force(ctx, name, req)
			wantErr = m.force(now(), req)
		case k < 89:
			op = "unforce"
			_, gotErr = s.Unforce(ctx, name)
			wantErr = m.unforce(now())
		case k < 92:
			op = "reset"
			_, gotErr = s.Reset(ctx, name)
			wantErr = m.reset(now())
		case k < 95:
			cfg = randomConfig(r, timeless)
			op = fmt.Sprintf("put %+v", cfg)
			_, gotCreated, err := s.Put(ctx, name, cfg)
			gotErr = err
			if wantCreated := m.put(now(), cfg); gotCreated != wantCreated {
				fail(step, "put created", gotCreated, wantCreated)
			}
		default:
			op = "get"
		}
		log = append(log, op)
		if !errors.Is(gotErr, wantErr) || (gotErr == nil) != (wantErr == nil) {
			fail(step, op+" error", fmt.Sprint(gotErr), fmt.Sprint(wantErr))
		}
		if timeless && gotD.State == StateOpen && wantD.State == StateOpen {
			// until - now, each side reading its own clock
			gotD.RetryAfterMS, gotD.CacheTTLMS, wantD.RetryAfterMS, wantD.CacheTTLMS = 0, 0, 0, 0
		}
		if isDecision && gotD != wantD {
			fail(step, op, gotD, wantD)
		}
		got, err := s.Get(ctx, name)
		if err != nil {
			t.Fatalf("seed %d step %d: Get: %v", seed, step, err)
		}
		want, _ := m.view(now())
		if timeless {
			// The real clock moves: compare everything but the times.
			got.Since, want.Since = time.Time{}, time.Time{}
			got.OpenUntil, want.OpenUntil = nil, nil
			if got.Override != nil && want.Override != nil {
				got.Override.At, want.Override.At = time.Time{}, time.Time{}
			}
		}
		if diff := cmp.Diff(got, want); diff != "" {
			fail(step, op+": Get", got, want)
		}
		if want.Generation != lastGen {
			transitions++
			lastGen = want.Generation
		}
	}
	return transitions
}

// TestScriptsMatchModel runs the scripts and the Go model side by side on
// random sequences of acquires, reports, time steps, overrides, resets and
// config changes, on miniredis with the clock under the test's control.
func TestScriptsMatchModel(t *testing.T) {
	sequences, steps := 1000, 40
	if testing.Short() || raceEnabled {
		sequences = 100
	}
	total := 0
	for seed := range uint64(sequences) {
		m := storetest.NewMini(t, time.Date(2026, 11, 27, 10, 0, 0, int(seed)*1_000_003, time.UTC))
		total += runSequence(t, NewService(m.Store), m, fmt.Sprintf("seq-%d", seed), seed, steps, false)
		m.M.Close()
	}
	// The sequences must reach the states worth checking, or they prove little.
	if total < sequences*2 {
		t.Errorf("%d sequences made only %d transitions; the generator is too tame", sequences, total)
	}
}

// realClock is a real Redis's clock: it cannot be moved.
type realClock struct{}

func (realClock) Now() time.Time        { return time.Now() }
func (realClock) Advance(time.Duration) {}

// TestScriptsMatchModelRealRedis is a smaller run against a real
// redis-server. Its clock cannot be set, so these sequences use configs
// where no step depends on when it lands (hour-long windows and open
// durations) and take no time steps; the time-driven paths are covered on
// real Redis by the scenario tests.
func TestScriptsMatchModelRealRedis(t *testing.T) {
	r := storetest.StartRedis(t)
	s := NewService(r.Open(t))
	sequences := 100
	if os.Getenv("BREAKWATER_LONG") != "" {
		sequences = 1000
	}
	for seed := range uint64(sequences) {
		runSequence(t, s, realClock{}, fmt.Sprintf("real-%d", seed), seed, 40, true)
	}
}
