package client

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// t0 is on a whole second, so step times show which bucket a call falls in.
var t0 = time.Unix(1_800_000_000, 0)

type breakerOp int

const (
	opCall   breakerOp = iota // n × (allow, which must let a call through; record)
	opAllow                   // allow, keeping the permit for a later opReport
	opReport                  // record with the permit of step `permit`
)

func (op breakerOp) String() string {
	return [...]string{"call", "allow", "report"}[op]
}

// breakerStep is one step of a localBreaker scenario, and what it must give.
type breakerStep struct {
	at  time.Duration // since t0
	op  breakerOp
	n   int // opCall: calls, 0 meaning 1
	ok  bool
	dur time.Duration

	permit int // opReport: the index of the opAllow step

	allowed bool          // opAllow: a permit was granted
	probe   bool          // opAllow: it is a probe permit
	retry   time.Duration // opAllow: the Retry-After when refused
	applied bool          // opReport: record's result

	state  string    // the state after the step, unless empty
	reason string    // the reason of the last transition after the step, unless empty
	window *[3]int64 // calls, failures and slow calls in the window after the step, unless nil
}

func call(at time.Duration, n int, ok bool, dur time.Duration, state string) breakerStep {
	return breakerStep{at: at, op: opCall, n: n, ok: ok, dur: dur, state: state}
}

func allowStep(at time.Duration, allowed, probe bool, retry time.Duration, state string) breakerStep {
	return breakerStep{at: at, op: opAllow, allowed: allowed, probe: probe, retry: retry, state: state}
}

func report(at time.Duration, permit int, ok bool, dur time.Duration, applied bool, state string) breakerStep {
	return breakerStep{at: at, op: opReport, permit: permit, ok: ok, dur: dur, applied: applied, state: state}
}

func withReason(s breakerStep, reason string) breakerStep {
	s.reason = reason
	return s
}

func withWindow(s breakerStep, calls, failures, slow int64) breakerStep {
	s.window = &[3]int64{calls, failures, slow}
	return s
}

const (
	sec = time.Second
	msd = time.Millisecond
)

func countWindow(size int64) breakerWindow { return breakerWindow{Type: "count", Size: size} }
func timeWindow(size int64) breakerWindow  { return breakerWindow{Type: "time", Size: size} }

func TestLocalBreaker(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(c *breakerConfig)
		steps []breakerStep
	}{
		{
			name: "failure rate at the threshold opens",
			cfg: func(c *breakerConfig) {
				c.Window, c.MinimumCalls, c.FailureRateThreshold = countWindow(10), 4, 50
			},
			steps: []breakerStep{
				call(0, 2, true, 0, "closed"),
				call(0, 1, false, 0, "closed"), // 3 calls: below minimum
				withReason(call(0, 1, false, 0, "open"), "failure_rate"),
				allowStep(0, false, false, 30*sec, "open"),
			},
		},
		{
			name: "below the minimum calls stays closed",
			cfg:  func(c *breakerConfig) {},
			steps: []breakerStep{
				call(0, 19, false, 0, "closed"),
				call(0, 1, false, 0, "open"),
			},
		},
		{
			name: "below the failure rate stays closed",
			cfg: func(c *breakerConfig) {
				c.Window, c.MinimumCalls, c.FailureRateThreshold = countWindow(10), 4, 50
			},
			steps: []breakerStep{
				call(0, 6, true, 0, "closed"),
				call(0, 4, false, 0, "closed"), // 40%
				call(0, 1, false, 0, "open"),   // window of 10: 5 failures
			},
		},
		{
			name: "count window forgets the oldest calls",
			cfg: func(c *breakerConfig) {
				c.Window, c.MinimumCalls, c.FailureRateThreshold = countWindow(4), 4, 75
			},
			steps: []breakerStep{
				call(0, 2, false, 0, "closed"),
				call(0, 2, true, 0, "closed"),  // F F O O: 50%
				call(0, 1, true, 0, "closed"),  // F O O O: 25%
				call(0, 2, false, 0, "closed"), // O O F F: 50%
				call(0, 1, false, 0, "open"),   // O F F F: 75%
			},
		},
		{
			name: "count window counts what it forgets",
			cfg: func(c *breakerConfig) {
				c.Window, c.MinimumCalls, c.SlowCallDurationMS = countWindow(2), 100, 100
			},
			steps: []breakerStep{
				withWindow(call(0, 1, false, sec, "closed"), 1, 1, 1),
				withWindow(call(0, 1, true, sec, "closed"), 2, 1, 2),
				withWindow(call(0, 1, true, 0, "closed"), 2, 0, 1),
				withWindow(call(0, 1, false, 0, "closed"), 2, 1, 0),
			},
		},
		{
			name: "time window keeps the last size seconds",
			cfg: func(c *breakerConfig) {
				c.Window, c.MinimumCalls, c.FailureRateThreshold = timeWindow(10), 4, 50
			},
			steps: []breakerStep{
				call(0, 3, false, 0, "closed"),
				call(9999*msd, 1, true, 0, "open"), // second 9: second 0 still in
			},
		},
		{
			name: "time window drops a second once it is size seconds old",
			cfg: func(c *breakerConfig) {
				c.Window, c.MinimumCalls, c.FailureRateThreshold = timeWindow(10), 4, 50
			},
			steps: []breakerStep{
				call(999*msd, 3, false, 0, "closed"),
				call(10*sec, 1, true, 0, "closed"), // second 0 is out: 1 call, no failure
				call(10*sec, 3, false, 0, "open"),  // 4 calls, 3 failed
			},
		},
		{
			name: "time window drops seconds one by one as time passes",
			cfg: func(c *breakerConfig) {
				c.Window, c.MinimumCalls, c.FailureRateThreshold, c.SlowCallDurationMS = timeWindow(10), 6, 50, 100
			},
			steps: []breakerStep{
				withWindow(call(0, 3, false, 0, "closed"), 3, 3, 0),
				withWindow(call(5*sec, 1, true, sec, "closed"), 4, 3, 1),
				withWindow(call(9*sec, 1, true, 0, "closed"), 5, 3, 1),
				withWindow(call(10*sec, 1, true, 0, "closed"), 3, 0, 1), // second 0 is out
				withWindow(call(14*sec, 1, false, 0, "closed"), 4, 1, 1),
				withWindow(call(15*sec, 1, true, 0, "closed"), 4, 1, 0), // second 5 is out
				withWindow(call(15*sec, 2, false, 0, "open"), 0, 0, 0),  // 6 calls, 3 failed; opening empties it
			},
		},
		{
			name: "slow call rate opens",
			cfg: func(c *breakerConfig) {
				c.Window, c.MinimumCalls, c.SlowCallDurationMS, c.SlowCallRateThreshold = countWindow(10), 2, 100, 50
			},
			steps: []breakerStep{
				call(0, 1, true, 99*msd, "closed"),
				withReason(call(0, 1, true, 100*msd, "open"), "slow_call_rate"), // at the duration is slow
			},
		},
		{
			name: "a slow failure counts as both; failure rate is checked first",
			cfg: func(c *breakerConfig) {
				c.Window, c.MinimumCalls, c.SlowCallDurationMS, c.SlowCallRateThreshold = countWindow(10), 2, 100, 100
			},
			steps: []breakerStep{
				call(0, 1, false, sec, "closed"),
				withReason(call(0, 1, false, sec, "open"), "failure_rate"),
			},
		},
		{
			name: "consecutive failures open whatever the window says",
			cfg:  func(c *breakerConfig) { c.ConsecutiveFailures = 3 },
			steps: []breakerStep{
				call(0, 2, false, 0, "closed"),
				call(0, 1, true, 0, "closed"), // a success breaks the run
				call(0, 2, false, 0, "closed"),
				withReason(call(0, 1, false, 0, "open"), "consecutive_failures"),
			},
		},
		{
			name: "a slow success breaks a run of failures",
			cfg: func(c *breakerConfig) {
				c.ConsecutiveFailures, c.SlowCallDurationMS = 2, 10
			},
			steps: []breakerStep{
				call(0, 1, false, 0, "closed"),
				call(0, 1, true, sec, "closed"),
				call(0, 1, false, 0, "closed"),
				call(0, 1, false, 0, "open"),
			},
		},
		{
			name: "open refuses until open duration, then lets one probe through",
			cfg:  func(c *breakerConfig) { c.ConsecutiveFailures, c.OpenDurationMS = 1, 1000 },
			steps: []breakerStep{
				call(0, 1, false, 0, "open"),
				allowStep(999*msd, false, false, msd, "open"),
				withReason(allowStep(sec, true, true, 0, "half_open"), "open_duration elapsed"), // 1
				allowStep(sec, false, false, 10*sec, "half_open"),                               // probe timeout
				withReason(report(1500*msd, 2, true, 0, true, "closed"), "probes succeeded"),
				call(1500*msd, 1, true, 0, "closed"),
			},
		},
		{
			name: "a failed probe opens again",
			cfg:  func(c *breakerConfig) { c.ConsecutiveFailures, c.OpenDurationMS = 1, 1000 },
			steps: []breakerStep{
				call(0, 1, false, 0, "open"),
				allowStep(sec, true, true, 0, "half_open"), // 1
				withReason(report(1500*msd, 1, false, 0, true, "open"), "probe failed"),
				allowStep(2499*msd, false, false, msd, "open"),
				allowStep(2500*msd, true, true, 0, "half_open"),
			},
		},
		{
			name: "a slow probe opens again",
			cfg: func(c *breakerConfig) {
				c.ConsecutiveFailures, c.OpenDurationMS, c.SlowCallDurationMS = 1, 1000, 100
			},
			steps: []breakerStep{
				call(0, 1, false, 0, "open"),
				allowStep(sec, true, true, 0, "half_open"), // 1
				withReason(report(sec, 1, true, 100*msd, true, "open"), "probe slow"),
			},
		},
		{
			name: "all half_open_max_calls probes must succeed",
			cfg: func(c *breakerConfig) {
				c.ConsecutiveFailures, c.OpenDurationMS, c.HalfOpenMaxCalls = 1, 1000, 3
			},
			steps: []breakerStep{
				call(0, 1, false, 0, "open"),
				allowStep(sec, true, true, 0, "half_open"),     // 1
				allowStep(sec, true, true, 0, "half_open"),     // 2
				allowStep(sec+msd, true, true, 0, "half_open"), // 3
				allowStep(sec+msd, false, false, 10*sec-msd, "half_open"),
				report(sec, 1, true, 0, true, "half_open"),
				report(sec, 3, true, 0, true, "half_open"),
				report(sec, 3, true, 0, false, "half_open"), // reported twice
				report(sec, 2, true, 0, true, "closed"),
			},
		},
		{
			name: "a freed probe slot does not count as a success",
			cfg: func(c *breakerConfig) {
				c.ConsecutiveFailures, c.OpenDurationMS, c.HalfOpenMaxCalls = 1, 1000, 2
			},
			steps: []breakerStep{
				call(0, 1, false, 0, "open"),
				allowStep(sec, true, true, 0, "half_open"), // 1
				allowStep(sec, true, true, 0, "half_open"), // 2
				report(sec, 1, true, 0, true, "half_open"),
				allowStep(sec, true, true, 0, "half_open"), // 4: the slot 1 freed
				report(sec, 4, true, 0, true, "closed"),    // 2 successes
				report(sec, 2, true, 0, false, "closed"),   // too late: another generation
			},
		},
		{
			name: "a probe not reported in time is given back",
			cfg: func(c *breakerConfig) {
				c.ConsecutiveFailures, c.OpenDurationMS, c.ProbeTimeoutMS = 1, 1000, 500
			},
			steps: []breakerStep{
				call(0, 1, false, 0, "open"),
				allowStep(sec, true, true, 0, "half_open"), // 1
				allowStep(1499*msd, false, false, msd, "half_open"),
				allowStep(1500*msd, true, true, 0, "half_open"),   // 3
				report(1500*msd, 1, false, 0, false, "half_open"), // expired: settles nothing
				report(1600*msd, 3, true, 0, true, "closed"),
			},
		},
		{
			name: "a probe reported after it expired settles nothing",
			cfg: func(c *breakerConfig) {
				c.ConsecutiveFailures, c.OpenDurationMS, c.ProbeTimeoutMS = 1, 1000, 500
			},
			steps: []breakerStep{
				call(0, 1, false, 0, "open"),
				allowStep(sec, true, true, 0, "half_open"), // 1
				report(1500*msd, 1, true, 0, false, "half_open"),
			},
		},
		{
			name: "an outcome from before a trip is ignored",
			cfg:  func(c *breakerConfig) { c.ConsecutiveFailures = 2 },
			steps: []breakerStep{
				allowStep(0, true, false, 0, "closed"), // 0
				call(0, 2, false, 0, "open"),
				report(0, 0, false, 0, false, "open"),
			},
		},
		{
			name: "an outcome from before a close is ignored",
			cfg:  func(c *breakerConfig) { c.ConsecutiveFailures, c.OpenDurationMS = 1, 1000 },
			steps: []breakerStep{
				allowStep(0, true, false, 0, "closed"), // 0
				call(0, 1, false, 0, "open"),
				allowStep(sec, true, true, 0, "half_open"), // 2
				report(sec, 2, true, 0, true, "closed"),
				report(sec, 0, false, 0, false, "closed"), // would open it if applied
			},
		},
		{
			name: "the zero permit is ignored",
			cfg:  func(c *breakerConfig) { c.ConsecutiveFailures = 1 },
			steps: []breakerStep{
				allowStep(0, true, false, 0, "closed"), // 0
				{op: opReport, permit: -1, ok: false, applied: false, state: "closed"},
			},
		},
		{
			name: "opening and closing empty the window",
			cfg: func(c *breakerConfig) {
				c.Window, c.MinimumCalls, c.FailureRateThreshold, c.OpenDurationMS = countWindow(10), 2, 50, 1000
			},
			steps: []breakerStep{
				call(0, 1, true, 0, "closed"),
				call(0, 1, false, 0, "open"),
				allowStep(sec, true, true, 0, "half_open"), // 2
				report(sec, 2, true, 0, true, "closed"),
				call(sec, 1, false, 0, "closed"), // alone in the window: below the minimum
				call(sec, 1, false, 0, "open"),
			},
		},
		{
			name: "a time before the latest one seen counts as the latest",
			cfg: func(c *breakerConfig) {
				c.Window, c.MinimumCalls, c.FailureRateThreshold = timeWindow(10), 4, 75
			},
			steps: []breakerStep{
				call(9*sec, 2, false, 0, "closed"),
				call(5*sec, 1, false, 0, "closed"), // counted in second 9, not 5
				call(18*sec, 1, true, 0, "open"),   // second 9 is still in the window
			},
		},
		{
			name: "open measures its wait from the latest time seen",
			cfg:  func(c *breakerConfig) { c.ConsecutiveFailures, c.OpenDurationMS = 1, 1000 },
			steps: []breakerStep{
				call(2*sec, 1, false, 0, "open"),
				allowStep(sec, false, false, sec, "open"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultBreakerConfig()
			tt.cfg(&cfg)
			runBreakerSteps(t, newLocalBreaker(cfg, t0), tt.steps)
		})
	}
}

// runBreakerSteps runs steps against b, failing t at the first step that
// does not give what it should.
func runBreakerSteps(t *testing.T, b *localBreaker, steps []breakerStep) {
	t.Helper()
	permits := make(map[int]localPermit)
	for i, s := range steps {
		now := t0.Add(s.at)
		where := fmt.Sprintf("step %d (%v at %v)", i, s.op, s.at)
		switch s.op {
		case opCall:
			for k := range max(s.n, 1) {
				p, err := b.allow(now)
				if err != nil || p.isProbe() {
					t.Fatalf("%s: call %d: allow() = %+v, %v; want a closed permit", where, k, p, err)
				}
				if !b.record(now, p, s.ok, s.dur) {
					t.Fatalf("%s: call %d: record(%v, %v) = false, want true", where, k, s.ok, s.dur)
				}
			}
		case opAllow:
			p, err := b.allow(now)
			permits[i] = p
			if got := err == nil; got != s.allowed {
				t.Fatalf("%s: allow() = %+v, %v; want allowed %v", where, p, err, s.allowed)
			}
			if err != nil {
				if !errors.Is(err, ErrOpen) || retryAfter(err) != s.retry {
					t.Fatalf("%s: allow() = %v, want %v with Retry-After %v", where, err, ErrOpen, s.retry)
				}
			} else if p.isProbe() != s.probe {
				t.Fatalf("%s: allow() = %+v, want probe %v", where, p, s.probe)
			}
		case opReport:
			if got := b.record(now, permits[s.permit], s.ok, s.dur); got != s.applied {
				t.Fatalf("%s: record(permit of step %d, %v, %v) = %v, want %v", where, s.permit, s.ok, s.dur, got, s.applied)
			}
		}
		st := b.status(now)
		if s.state != "" && st.state.String() != s.state {
			t.Fatalf("%s: state = %v, want %v", where, st.state, s.state)
		}
		if s.reason != "" && st.reason != s.reason {
			t.Fatalf("%s: reason = %q, want %q", where, st.reason, s.reason)
		}
		if s.window != nil {
			if got := [3]int64{st.calls, st.failures, st.slowCalls}; got != *s.window {
				t.Fatalf("%s: window (calls, failures, slow) = %v, want %v", where, got, *s.window)
			}
		}
	}
}

func TestLocalBreakerStatus(t *testing.T) {
	cfg := defaultBreakerConfig()
	cfg.Window, cfg.MinimumCalls, cfg.SlowCallDurationMS = countWindow(10), 5, 100
	b := newLocalBreaker(cfg, t0)
	gen := b.status(t0).gen
	for _, c := range []struct {
		ok  bool
		dur time.Duration
	}{{true, 0}, {false, 0}, {true, sec}, {false, sec}} {
		p, _ := b.allow(t0)
		b.record(t0, p, c.ok, c.dur)
	}
	got := b.status(t0)
	want := localBreakerStatus{state: StateClosed, gen: gen, since: t0, calls: 4, failures: 2, slowCalls: 2, admitPercent: 100}
	if !cmp.Equal(got, want, cmp.AllowUnexported(localBreakerStatus{})) {
		t.Errorf("status() = %+v, want %+v", got, want)
	}

	b.trip(t0.Add(sec), t0.Add(20*sec), "last known: open")
	got = b.status(t0.Add(sec))
	want = localBreakerStatus{state: StateOpen, gen: gen + 1, since: t0.Add(sec), openUntil: t0.Add(20 * sec), reason: "last known: open", admitPercent: 100,
		transitions: map[[2]State]int64{{StateClosed, StateOpen}: 1}}
	if !cmp.Equal(got, want, cmp.AllowUnexported(localBreakerStatus{})) {
		t.Errorf("status() after trip = %+v, want %+v", got, want)
	}
	if _, err := b.allow(t0.Add(19 * sec)); retryAfter(err) != sec {
		t.Errorf("allow() = %v, want Retry-After %v", err, sec)
	}

	b.trip(t0.Add(25*sec), time.Time{}, "no end known")
	if got := b.status(t0.Add(25 * sec)).openUntil; !got.Equal(t0.Add(55 * sec)) {
		t.Errorf("openUntil after trip with no end = %v, want open_duration later, %v", got, t0.Add(55*sec))
	}
}

func TestBreakerConfigWithDefaults(t *testing.T) {
	def := defaultBreakerConfig()
	tests := []struct {
		name string
		in   breakerConfig
		want breakerConfig
	}{
		{name: "zero is the defaults", in: breakerConfig{}, want: def},
		{name: "defaults are kept", in: def, want: def},
		{
			name: "out of range is cut",
			in: breakerConfig{
				Window:               breakerWindow{Type: "count", Size: 1e9},
				FailureRateThreshold: 150, SlowCallRateThreshold: 101,
				HalfOpenMaxCalls: 1e6, CacheTTLMS: 1e9, ConsecutiveFailures: -1,
			},
			want: func() breakerConfig {
				c := def
				c.Window = breakerWindow{Type: "count", Size: 10000}
				c.FailureRateThreshold, c.SlowCallRateThreshold = 100, 100
				c.HalfOpenMaxCalls, c.CacheTTLMS = 1000, 60000
				return c
			}(),
		},
		{
			name: "unknown window type is time",
			in:   breakerConfig{Window: breakerWindow{Type: "sliding", Size: 1e6}},
			want: func() breakerConfig {
				c := def
				c.Window = breakerWindow{Type: "time", Size: 3600}
				return c
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := withDefaults(tt.in); got != tt.want {
				t.Errorf("withDefaults(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

// TestLocalBreakerConcurrent checks, under -race, that half-open never has
// more than half_open_max_calls probes out however many goroutines ask.
func TestLocalBreakerConcurrent(t *testing.T) {
	cfg := defaultBreakerConfig()
	cfg.Window, cfg.MinimumCalls, cfg.OpenDurationMS, cfg.HalfOpenMaxCalls = countWindow(100), 10, 1, 3
	b := newLocalBreaker(cfg, t0)
	var mu sync.Mutex
	out := make(map[localPermit]bool) // probes out now
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				now := t0.Add(time.Duration(i) * time.Millisecond)
				p, err := b.allow(now)
				if err != nil {
					continue
				}
				if p.isProbe() {
					mu.Lock()
					out[p] = true
					n := len(out)
					mu.Unlock()
					if n > 3 {
						t.Errorf("%d probes out, want at most 3", n)
					}
				}
				ok := (i+g)%3 != 0
				mu.Lock()
				delete(out, p)
				mu.Unlock()
				b.record(now, p, ok, 0)
			}
		})
	}
	wg.Wait()
}

func BenchmarkLocalBreaker(b *testing.B) {
	lb := newLocalBreaker(defaultBreakerConfig(), t0)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		now := t0
		for b.Loop() {
			now = now.Add(time.Microsecond)
			p, err := lb.allow(now)
			if err == nil {
				lb.record(now, p, true, time.Millisecond)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			now := t0
			for pb.Next() {
				now = now.Add(time.Microsecond)
				p, err := lb.allow(now)
				if err == nil {
					lb.record(now, p, true, time.Millisecond)
				}
			}
		})
	})
}
