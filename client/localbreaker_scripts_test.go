package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// The local breaker is the reference model of the control plane's Lua
// scripts: these tests run both on the same random sequences of acquires,
// reports, time steps, overrides, resets and config changes, and compare
// every decision and the breaker as GET shows it after every step. The
// scripts run on miniredis, whose clock the sequence moves, and on a real
// redis-server. See docs/local-breaker.md.

// seqClock is the store's time as a sequence sees it: a miniredis clock
// that the sequence moves, or a real Redis whose time it cannot move.
type seqClock interface {
	Now() time.Time
	Advance(time.Duration)
}

// randomBreakerConfig draws a config small enough that trips, probes and
// overrides all happen within a short sequence.
func randomBreakerConfig(r *rand.Rand, timeless bool) breaker.Config {
	c := breaker.DefaultConfig()
	if r.IntN(2) == 0 {
		c.Window = breaker.Window{Type: breaker.WindowTime, Size: 1 + r.Int64N(5)}
	} else {
		c.Window = breaker.Window{Type: breaker.WindowCount, Size: 1 + r.Int64N(20)}
	}
	c.MinimumCalls = 1 + r.Int64N(10)
	if c.Window.Type == breaker.WindowCount {
		// A count window smaller than minimum_calls could never trip on a
		// rate: the control plane refuses it.
		c.MinimumCalls = min(c.MinimumCalls, c.Window.Size)
	}
	c.FailureRateThreshold = 1 + r.Int64N(100)
	c.SlowCallDurationMS = 1 + r.Int64N(500)
	c.SlowCallRateThreshold = 1 + r.Int64N(100)
	c.ConsecutiveFailures = r.Int64N(6)
	c.OpenDurationMS = 100 + r.Int64N(3000)
	c.HalfOpenMaxCalls = 1 + r.Int64N(3)
	c.ProbeTimeoutMS = 100 + r.Int64N(3000)
	c.CacheTTLMS = 1 + r.Int64N(1000)
	if r.IntN(2) == 0 {
		// Long enough ramps, from small enough starts, to be seen.
		c.SlowStartMS = 1 + r.Int64N(20000)
		c.HalfOpenMaxCalls = 1
	}
	switch r.IntN(4) {
	case 0:
		c.RetryBudgetPercent = r.Int64N(101)
	case 1:
		c.RetryBudgetMinPerSecond = float64(r.Int64N(5000)) / 1000
	case 2:
		c.RetryBudgetPercent = r.Int64N(101)
		c.RetryBudgetMinPerSecond = float64(r.Int64N(5000)) / 1000
	}
	if timeless {
		// Real Redis: its clock runs on its own, so nothing may depend on
		// when within the run a step lands.
		const day = 24 * 60 * 60 * 1000
		if c.Window.Type == breaker.WindowTime {
			c.Window.Size = breaker.MaxTimeWindow
		}
		c.OpenDurationMS = day
		c.ProbeTimeoutMS = day
		c.CacheTTLMS = breaker.MaxCacheTTLMS // retry loans live one to two of it
		c.SlowStartMS = 0                    // a ramp moves with the clock
	}
	return c
}

// localConfig is the SDK's view of a breaker's config: the same type,
// every field carried over.
func localConfig(c breaker.Config) breakerConfig { return c }

// modelBreaker drives a local breaker as the control plane would: with
// the store's time in ms, string permits, generations as the store counts
// them, and answers with retry_after_ms and cache_ttl_ms.
type modelBreaker struct {
	lb   *localBreaker
	cfg  breaker.Config
	base int64 // the store's generation at creation, which is the local breaker's 1
}

func newModelBreaker(now int64, cfg breaker.Config, base int64) *modelBreaker {
	return &modelBreaker{lb: newLocalBreaker(localConfig(cfg), time.UnixMilli(now)), cfg: cfg, base: base}
}

func (m *modelBreaker) gen(local uint64) int64 { return int64(local) + m.base - 1 }

// localGen maps a store generation to the local breaker's; 0 matches none.
func (m *modelBreaker) localGen(g int64) uint64 {
	if l := g - m.base + 1; l >= 1 {
		return uint64(l)
	}
	return 0
}

// permits lists the unexpired probe permits, as the scripts name them.
func (m *modelBreaker) permits() []string {
	m.lb.mu.Lock()
	defer m.lb.mu.Unlock()
	var ps []string
	for _, p := range m.lb.probes {
		if p.expires.After(m.lb.latest) {
			ps = append(ps, fmt.Sprintf("%d.%d", m.gen(m.lb.gen), p.id))
		}
	}
	sort.Strings(ps)
	return ps
}

// answer is the decision the control plane gives in the breaker's state
// at now, with ignored outcomes of the request.
func (m *modelBreaker) answer(now, ignored int64) breaker.Decision {
	st := m.lb.status(time.UnixMilli(now))
	d := breaker.Decision{State: st.state.String(), Generation: m.gen(st.gen), Ignored: ignored, AdmitPercent: st.admitPercent}
	ttl := m.cfg.CacheTTLMS
	left := func(t time.Time) int64 { return t.UnixMilli() - now }
	switch st.state {
	case StateForcedOpen:
		d.RetryAfterMS = ttl
		if !st.ovUntil.IsZero() {
			d.RetryAfterMS = left(st.ovUntil)
		}
		d.CacheTTLMS = d.RetryAfterMS
	case StateForcedClosed:
		d.Allowed, d.CacheTTLMS = true, ttl
		if !st.ovUntil.IsZero() && left(st.ovUntil) < ttl {
			d.CacheTTLMS = left(st.ovUntil)
		}
	case StateClosed:
		d.Allowed, d.CacheTTLMS = true, ttl
	case StateOpen:
		d.RetryAfterMS = max(left(st.openUntil), 0)
		d.CacheTTLMS = d.RetryAfterMS
	case StateHalfOpen:
		d.RetryAfterMS = ttl
		if !st.firstProbe.IsZero() {
			d.RetryAfterMS = left(st.firstProbe)
		}
		d.CacheTTLMS = min(d.RetryAfterMS, ttl)
	}
	return d
}

func (m *modelBreaker) acquire(now int64) breaker.Decision {
	p, err := m.lb.allow(time.UnixMilli(now))
	if err == nil && p.isProbe() {
		return breaker.Decision{Allowed: true, State: breaker.StateHalfOpen, Permit: fmt.Sprintf("%d.%d", m.gen(p.gen), p.probe), Generation: m.gen(p.gen), AdmitPercent: 100}
	}
	return m.answer(now, 0)
}

func (m *modelBreaker) report(now int64, outs []breaker.Outcome) breaker.Decision {
	t := time.UnixMilli(now)
	var ignored, recorded, spent int64
	for _, o := range outs {
		spent += o.Retries
		dur := ms(o.DurationMS)
		if o.Permit != "" {
			var p localPermit
			g, s, _ := strings.Cut(o.Permit, ".")
			if gn, err := strconv.ParseInt(g, 10, 64); err == nil {
				p.gen = m.localGen(gn)
			}
			p.probe, _ = strconv.ParseUint(s, 10, 64)
			if p.probe == 0 || !m.lb.record(t, p, o.Success, dur) {
				ignored++
			}
			continue
		}
		p := localPermit{gen: m.lb.status(t).gen} // no generation: the current one
		if o.Generation >= 0 {
			p.gen = m.localGen(o.Generation)
		}
		if m.lb.recordRetries(t, p, o.Success, dur, o.Count, o.Retries) {
			recorded += o.Count
		} else {
			ignored += o.Count
		}
	}
	allowance := m.lb.lend(t, recorded, spent)
	d := m.answer(now, ignored)
	if allowance >= 0 {
		d.RetryAllowance = &allowance
	}
	return d
}

func (m *modelBreaker) force(now int64, r breaker.ForceRequest) {
	st := StateForcedOpen
	if r.State == breaker.StateForcedClosed {
		st = StateForcedClosed
	}
	var until time.Time
	if r.TTLMS > 0 {
		until = time.UnixMilli(now + r.TTLMS)
	}
	m.lb.force(time.UnixMilli(now), st, until)
}

func (m *modelBreaker) put(now int64, cfg breaker.Config) {
	m.cfg = cfg
	m.lb.reconfigure(time.UnixMilli(now), localConfig(cfg))
}

// shownBreaker is what both sides are compared on, of a breaker as GET
// shows it: everything the state machine decides.
type shownBreaker struct {
	State           string
	Since           int64
	OpenUntil       int64 // 0 unless open
	Override        string
	OverrideExpires int64 // 0 when never or none
	Calls           int64
	Failures        int64
	SlowCalls       int64
	Retries         int64
	AdmitPercent    int64
	SlowStartUntil  int64 // 0 when no slow start runs
	Generation      int64
	Transitions     map[string]int64 // "from>to"
}

func showScript(b breaker.Breaker) shownBreaker {
	s := shownBreaker{State: b.State, Since: b.Since.UnixMilli(), Calls: b.Stats.Calls, Failures: b.Stats.Failures,
		SlowCalls: b.Stats.SlowCalls, Retries: b.Stats.Retries, AdmitPercent: b.AdmitPercent,
		Generation: b.Generation, Transitions: map[string]int64{}}
	if b.SlowStartUntil != nil {
		s.SlowStartUntil = b.SlowStartUntil.UnixMilli()
	}
	if b.OpenUntil != nil {
		s.OpenUntil = b.OpenUntil.UnixMilli()
	}
	if o := b.Override; o != nil {
		s.Override = o.State
		if o.ExpiresAt != nil {
			s.OverrideExpires = o.ExpiresAt.UnixMilli()
		}
	}
	for _, tr := range b.Transitions {
		s.Transitions[tr.From+">"+tr.To] = tr.Count
	}
	return s
}

func (m *modelBreaker) show(now int64) shownBreaker {
	st := m.lb.status(time.UnixMilli(now))
	s := shownBreaker{State: st.state.String(), Since: st.since.UnixMilli(), Calls: st.calls, Failures: st.failures,
		SlowCalls: st.slowCalls, Retries: st.retries, AdmitPercent: st.admitPercent,
		Generation: m.gen(st.gen), Transitions: map[string]int64{}}
	if !st.slowStartUntil.IsZero() {
		s.SlowStartUntil = st.slowStartUntil.UnixMilli()
	}
	if !st.openUntil.IsZero() {
		s.OpenUntil = st.openUntil.UnixMilli()
	}
	if st.override != StateUnknown {
		s.Override = st.override.String()
		if !st.ovUntil.IsZero() {
			s.OverrideExpires = st.ovUntil.UnixMilli()
		}
	}
	for k, n := range st.transitions {
		s.Transitions[k[0].String()+">"+k[1].String()] = n
	}
	return s
}

// runBreakerSequence drives the scripts and the local breaker with the
// same random operations and fails at the first step where they differ.
// It returns how many transitions it saw, so the caller can check that
// the sequences reach the interesting states.
func runBreakerSequence(t *testing.T, s *breaker.Service, clk seqClock, name string, seed uint64, steps int, timeless bool, cov *sequenceCoverage) (transitions int) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	failP := r.Float64() // how often calls fail in this sequence
	slowP := r.Float64() / 2
	now := func() int64 { return clk.Now().UnixMilli() }
	var log []string
	var m *modelBreaker

	fail := func(step int, what string, got, want any) {
		t.Helper()
		t.Fatalf("seed %d step %d: %s\n(-script +local breaker):\n%s\nsteps so far:\n%v", seed, step, what, cmp.Diff(got, want), strings.Join(log, "\n"))
	}

	cfg := randomBreakerConfig(r, timeless)
	if _, created, err := s.Put(ctx, name, cfg); err != nil || !created {
		t.Fatalf("seed %d: Put = created %v, %v", seed, created, err)
	}
	first, err := s.Get(ctx, name)
	if err != nil {
		t.Fatalf("seed %d: Get: %v", seed, err)
	}
	m = newModelBreaker(first.Since.UnixMilli(), cfg, first.Generation)
	lastGen := first.Generation

	for step := range steps {
		var op string
		var gotD, wantD breaker.Decision
		var gotErr error
		isDecision := false
		switch k := r.IntN(100); {
		case k < 25:
			op = "acquire"
			gotD, gotErr = s.Acquire(ctx, name)
			wantD = m.acquire(now())
			isDecision = true
		case k < 60:
			n := 1 + r.IntN(3)
			outs := make([]breaker.Outcome, n)
			for i := range outs {
				o := breaker.Outcome{Success: r.Float64() >= failP, DurationMS: r.Int64N(400), Count: 1, Generation: -1}
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
				if o.Permit == "" && r.IntN(3) == 0 {
					o.Retries = r.Int64N(o.Count + 1)
				}
				if o.Permit == "" && r.IntN(5) == 0 {
					o.Generation = max(lastGen-r.Int64N(2), 0) // this generation or the one before
				}
				outs[i] = o
			}
			op = fmt.Sprintf("report %+v", outs)
			gotD, gotErr = s.Report(ctx, name, outs)
			wantD = m.report(now(), outs)
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
			req := breaker.ForceRequest{State: breaker.StateForcedOpen, Reason: "seq", By: "tester"}
			if r.IntN(2) == 0 {
				req.State = breaker.StateForcedClosed
			}
			if r.IntN(2) == 0 && !timeless {
				req.TTLMS = 1 + r.Int64N(3000)
			}
			op = fmt.Sprintf("force %+v", req)
			_, gotErr = s.Force(ctx, name, req)
			m.force(now(), req)
		case k < 89:
			op = "unforce"
			_, gotErr = s.Unforce(ctx, name)
			m.lb.unforce(time.UnixMilli(now()))
		case k < 92:
			op = "reset"
			_, gotErr = s.Reset(ctx, name)
			m.lb.reset(time.UnixMilli(now()))
		case k < 95:
			cfg = randomBreakerConfig(r, timeless)
			op = fmt.Sprintf("put %+v", cfg)
			_, created, err := s.Put(ctx, name, cfg)
			gotErr = err
			if created {
				fail(step, "put created", created, false)
			}
			m.put(now(), cfg)
		default:
			op = "get"
		}
		log = append(log, op)
		if gotErr != nil {
			fail(step, op+" error", gotErr.Error(), "")
		}
		if timeless && gotD.State == breaker.StateOpen && wantD.State == breaker.StateOpen {
			// until - now, each side reading its own clock
			gotD.RetryAfterMS, gotD.CacheTTLMS, wantD.RetryAfterMS, wantD.CacheTTLMS = 0, 0, 0, 0
		}
		if isDecision && !cmp.Equal(gotD, wantD) {
			fail(step, op, gotD, wantD)
		}
		if gotD.AdmitPercent > 0 && gotD.AdmitPercent < 100 {
			cov.ramping++
		}
		if a := gotD.RetryAllowance; a != nil && *a > 0 {
			cov.lent++
		}
		b, err := s.Get(ctx, name)
		if err != nil {
			t.Fatalf("seed %d step %d: Get: %v", seed, step, err)
		}
		got, want := showScript(b), m.show(now())
		if timeless {
			// The real clock moves: compare everything but the times.
			got.Since, want.Since, got.OpenUntil, want.OpenUntil = 0, 0, 0, 0
		}
		if diff := cmp.Diff(got, want); diff != "" {
			fail(step, op+": Get", got, want)
		}
		if got.Generation != lastGen {
			transitions++
			lastGen = got.Generation
		}
	}
	return transitions
}

// sequenceCoverage counts decisions that exercised slow start and the
// retry budget, so a test can check that the sequences reach them.
type sequenceCoverage struct{ ramping, lent int }

// TestLocalBreakerMatchesScripts runs the scripts on miniredis, with the
// clock under the test's control, and the local breaker side by side.
func TestLocalBreakerMatchesScripts(t *testing.T) {
	sequences, steps := 1000, 40
	if testing.Short() || raceEnabled {
		sequences = 100
	}
	total := 0
	var cov sequenceCoverage
	for seed := range uint64(sequences) {
		m := storetest.NewMini(t, time.Date(2026, 11, 27, 10, 0, 0, int(seed)*1_000_003, time.UTC))
		total += runBreakerSequence(t, breaker.NewService(m.Store), m, fmt.Sprintf("seq-%d", seed), seed, steps, false, &cov)
		m.M.Close()
	}
	// The sequences must reach the states worth checking, or they prove little.
	if total < sequences*2 {
		t.Errorf("%d sequences made only %d transitions; the generator is too tame", sequences, total)
	}
	if cov.ramping < sequences/20 || cov.lent < sequences/20 {
		t.Errorf("%d sequences gave %d decisions during a slow start and %d retry loans; the generator is too tame", sequences, cov.ramping, cov.lent)
	}
}

// realRedisClock is a real Redis's clock: it cannot be moved.
type realRedisClock struct{}

func (realRedisClock) Now() time.Time        { return time.Now() }
func (realRedisClock) Advance(time.Duration) {}

// TestLocalBreakerMatchesScriptsRealRedis is a smaller run against a
// real redis-server. Its clock cannot be set, so these sequences use
// configs where no step depends on when it lands (hour-long windows and
// day-long open durations) and take no time steps; the time-driven paths
// are covered on real Redis by internal/breaker's scenario tests.
func TestLocalBreakerMatchesScriptsRealRedis(t *testing.T) {
	r := storetest.StartRedis(t)
	s := breaker.NewService(r.Open(t))
	sequences := 100
	if os.Getenv("BREAKWATER_LONG") != "" {
		sequences = 1000
	}
	for seed := range uint64(sequences) {
		runBreakerSequence(t, s, realRedisClock{}, fmt.Sprintf("real-%d", seed), seed, 40, true, &sequenceCoverage{})
	}
}
