package breaker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// A scenario is a named list of steps with what each must answer. The same
// table runs against miniredis and a real redis-server. The reference model
// of the scripts is the SDK's local breaker, compared with them on random
// sequences in client/localbreaker_scripts_test.go.
type scenario struct {
	name  string
	cfg   Config
	steps []step
}

type step struct {
	do string // acquire, ok, fail, slow, probe-ok, probe-fail, wait, force-open, force-closed, unforce, reset, put
	n  int64  // count for ok/fail/slow
	d  time.Duration
	// cfg for put
	cfg *Config
	// want
	state   string
	allowed *bool
	permit  bool
}

var yes, no = ptr(true), ptr(false)

func ptr[T any](v T) *T { return &v }

// cfgWith returns the default config changed by f.
func cfgWith(f func(*Config)) Config {
	c := DefaultConfig()
	f(&c)
	return c
}

// Short durations so the same table can run on a real clock.
var fast = cfgWith(func(c *Config) {
	c.MinimumCalls = 4
	c.OpenDurationMS = 1000
	c.ProbeTimeoutMS = 1000
	c.SlowCallDurationMS = 100
})

var scenarios = []scenario{
	{name: "below minimum_calls never trips", cfg: fast, steps: []step{
		{do: "fail", n: 3, state: StateClosed, allowed: yes},
		{do: "acquire", state: StateClosed, allowed: yes},
	}},
	{name: "failure rate at the threshold trips", cfg: fast, steps: []step{
		{do: "ok", n: 2, state: StateClosed},
		{do: "fail", n: 2, state: StateOpen, allowed: no},
		{do: "acquire", state: StateOpen, allowed: no},
	}},
	{name: "failure rate below the threshold does not trip", cfg: fast, steps: []step{
		{do: "ok", n: 3, state: StateClosed},
		{do: "fail", n: 2, state: StateClosed, allowed: yes},
	}},
	{name: "slow call rate trips", cfg: cfgWith(func(c *Config) { *c = fast; c.SlowCallRateThreshold = 50 }), steps: []step{
		{do: "ok", n: 2, state: StateClosed},
		{do: "slow", n: 2, state: StateOpen, allowed: no},
	}},
	{name: "consecutive failures trip before minimum_calls", cfg: cfgWith(func(c *Config) { *c = fast; c.MinimumCalls = 100; c.ConsecutiveFailures = 3 }), steps: []step{
		{do: "fail", n: 2, state: StateClosed},
		{do: "ok", n: 1, state: StateClosed},
		{do: "fail", n: 2, state: StateClosed},
		{do: "fail", n: 1, state: StateOpen},
	}},
	{name: "count window forgets the oldest calls", cfg: cfgWith(func(c *Config) {
		*c = fast
		c.Window = Window{Type: WindowCount, Size: 4}
		c.FailureRateThreshold = 75
	}), steps: []step{
		{do: "fail", n: 2, state: StateClosed},
		{do: "ok", n: 4, state: StateClosed}, // the failures left the window
		{do: "fail", n: 2, state: StateClosed},
		{do: "fail", n: 1, state: StateOpen},
	}},
	{name: "time window forgets old seconds", cfg: cfgWith(func(c *Config) { *c = fast; c.Window = Window{Type: WindowTime, Size: 1} }), steps: []step{
		{do: "fail", n: 3, state: StateClosed},
		{do: "wait", d: 2100 * time.Millisecond},
		{do: "ok", n: 1, state: StateClosed},
		{do: "fail", n: 1, state: StateClosed}, // 1 of 2 in the window, under minimum_calls
	}},
	{name: "open, then one probe closes", cfg: fast, steps: []step{
		{do: "fail", n: 4, state: StateOpen},
		{do: "wait", d: 1100 * time.Millisecond},
		{do: "acquire", state: StateHalfOpen, allowed: yes, permit: true},
		{do: "acquire", state: StateHalfOpen, allowed: no},
		{do: "probe-ok", state: StateClosed, allowed: yes},
	}},
	{name: "a failed probe re-opens", cfg: fast, steps: []step{
		{do: "fail", n: 4, state: StateOpen},
		{do: "wait", d: 1100 * time.Millisecond},
		{do: "acquire", state: StateHalfOpen, permit: true},
		{do: "probe-fail", state: StateOpen, allowed: no},
		{do: "acquire", state: StateOpen, allowed: no},
	}},
	{name: "a slow probe re-opens", cfg: fast, steps: []step{
		{do: "fail", n: 4, state: StateOpen},
		{do: "wait", d: 1100 * time.Millisecond},
		{do: "acquire", state: StateHalfOpen, permit: true},
		{do: "probe-slow", state: StateOpen},
	}},
	{name: "an unreported probe is given back", cfg: fast, steps: []step{
		{do: "fail", n: 4, state: StateOpen},
		{do: "wait", d: 1100 * time.Millisecond},
		{do: "acquire", state: StateHalfOpen, permit: true},
		{do: "acquire", state: StateHalfOpen, allowed: no},
		{do: "wait", d: 1100 * time.Millisecond},
		{do: "acquire", state: StateHalfOpen, allowed: yes, permit: true},
	}},
	{name: "all probes must succeed", cfg: cfgWith(func(c *Config) { *c = fast; c.HalfOpenMaxCalls = 2 }), steps: []step{
		{do: "fail", n: 4, state: StateOpen},
		{do: "wait", d: 1100 * time.Millisecond},
		{do: "acquire", permit: true},
		{do: "acquire", permit: true},
		{do: "acquire", allowed: no},
		{do: "probe-ok", state: StateHalfOpen},
		{do: "probe-ok", state: StateClosed},
	}},
	{name: "outcomes without a permit are ignored in half-open", cfg: fast, steps: []step{
		{do: "fail", n: 4, state: StateOpen},
		{do: "wait", d: 1100 * time.Millisecond},
		{do: "acquire", state: StateHalfOpen, permit: true},
		{do: "fail", n: 10, state: StateHalfOpen},
		{do: "probe-ok", state: StateClosed},
	}},
	{name: "forced open denies and counts, nothing trips", cfg: fast, steps: []step{
		{do: "force-open", state: StateForcedOpen, allowed: no},
		{do: "acquire", state: StateForcedOpen, allowed: no},
		{do: "fail", n: 10, state: StateForcedOpen},
		{do: "unforce", state: StateClosed, allowed: yes},
		{do: "fail", n: 3, state: StateClosed}, // the window was emptied
	}},
	{name: "forced closed allows through failures", cfg: fast, steps: []step{
		{do: "fail", n: 4, state: StateOpen},
		{do: "force-closed", state: StateForcedClosed, allowed: yes},
		{do: "fail", n: 20, state: StateForcedClosed, allowed: yes},
		{do: "acquire", state: StateForcedClosed, allowed: yes},
	}},
	{name: "an override expires", cfg: fast, steps: []step{
		{do: "force-open-ttl", d: 1000 * time.Millisecond, state: StateForcedOpen},
		{do: "wait", d: 1100 * time.Millisecond},
		{do: "acquire", state: StateClosed, allowed: yes},
	}},
	{name: "reset closes an open breaker and ends an override", cfg: fast, steps: []step{
		{do: "fail", n: 4, state: StateOpen},
		{do: "reset", state: StateClosed, allowed: yes},
		{do: "force-open", state: StateForcedOpen},
		{do: "reset", state: StateClosed, allowed: yes},
	}},
	{name: "a config change keeps the state", cfg: fast, steps: []step{
		{do: "fail", n: 4, state: StateOpen},
		{do: "put", cfg: ptr(cfgWith(func(c *Config) { *c = fast; c.MinimumCalls = 50 })), state: StateOpen},
	}},
}

// subject is what a scenario runs against.
type subject interface {
	acquire() (Decision, error)
	report(outs ...Outcome) (Decision, error)
	put(Config) error
	force(state string, ttl time.Duration) error
	unforce() error
	reset() error
	wait(time.Duration)
	state() string
}

func runScenario(t *testing.T, sc scenario, s subject) {
	t.Helper()
	if err := s.put(sc.cfg); err != nil {
		t.Fatalf("put: %v", err)
	}
	var permits []string
	for i, st := range sc.steps {
		var d Decision
		var err error
		haveDecision := true
		switch st.do {
		case "acquire":
			d, err = s.acquire()
			if d.Permit != "" {
				permits = append(permits, d.Permit)
			}
		case "ok", "fail", "slow":
			o := Outcome{Success: st.do != "fail", DurationMS: 5, Count: st.n, Generation: -1}
			if st.do == "slow" {
				o.DurationMS = sc.cfg.SlowCallDurationMS
			}
			d, err = s.report(o)
		case "probe-ok", "probe-fail", "probe-slow":
			if len(permits) == 0 {
				t.Fatalf("step %d: %s with no permit", i, st.do)
			}
			o := Outcome{Success: st.do != "probe-fail", DurationMS: 5, Count: 1, Permit: permits[0], Generation: -1}
			if st.do == "probe-slow" {
				o.DurationMS = sc.cfg.SlowCallDurationMS
			}
			permits = permits[1:]
			d, err = s.report(o)
		default:
			haveDecision = false
			switch st.do {
			case "wait":
				s.wait(st.d)
			case "force-open":
				err = s.force(StateForcedOpen, 0)
			case "force-open-ttl":
				err = s.force(StateForcedOpen, st.d)
			case "force-closed":
				err = s.force(StateForcedClosed, 0)
			case "unforce":
				err = s.unforce()
			case "reset":
				err = s.reset()
			case "put":
				err = s.put(*st.cfg)
			default:
				t.Fatalf("step %d: unknown step %q", i, st.do)
			}
		}
		if err != nil {
			t.Fatalf("step %d %s: %v", i, st.do, err)
		}
		if st.state != "" {
			if got := s.state(); got != st.state {
				t.Fatalf("step %d %s: state = %q, want %q", i, st.do, got, st.state)
			}
		}
		if st.allowed != nil {
			if !haveDecision {
				d, err = s.report(Outcome{Success: true, Count: 1, Generation: 1 << 40}) // ignored: answers without changing anything
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			if d.Allowed != *st.allowed {
				t.Fatalf("step %d %s: allowed = %v, want %v (%+v)", i, st.do, d.Allowed, *st.allowed, d)
			}
			if !d.Allowed && d.State != StateHalfOpen && d.RetryAfterMS <= 0 {
				t.Errorf("step %d %s: denied with retry_after_ms %d, want > 0", i, st.do, d.RetryAfterMS)
			}
		}
		if st.permit && (st.do != "acquire" || d.Permit == "") {
			t.Fatalf("step %d %s: no permit, want one (%+v)", i, st.do, d)
		}
		if !st.permit && d.Permit != "" {
			t.Fatalf("step %d %s: permit %q, want none", i, st.do, d.Permit)
		}
	}
}

// serviceSubject runs a scenario through the Service.
type serviceSubject struct {
	t     *testing.T
	s     *Service
	name  string
	waitf func(time.Duration)
}

func (x *serviceSubject) acquire() (Decision, error) {
	return x.s.Acquire(context.Background(), x.name)
}
func (x *serviceSubject) report(outs ...Outcome) (Decision, error) {
	return x.s.Report(context.Background(), x.name, outs)
}
func (x *serviceSubject) put(c Config) error {
	_, _, err := x.s.Put(context.Background(), x.name, c)
	return err
}
func (x *serviceSubject) force(state string, ttl time.Duration) error {
	_, err := x.s.Force(context.Background(), x.name, ForceRequest{State: state, Reason: "scenario", By: "test", TTLMS: ttl.Milliseconds()})
	return err
}
func (x *serviceSubject) unforce() error {
	_, err := x.s.Unforce(context.Background(), x.name)
	return err
}
func (x *serviceSubject) reset() error {
	_, err := x.s.Reset(context.Background(), x.name)
	return err
}
func (x *serviceSubject) wait(d time.Duration) { x.waitf(d) }
func (x *serviceSubject) state() string {
	b, err := x.s.Get(context.Background(), x.name)
	if err != nil {
		x.t.Fatalf("Get(%q): %v", x.name, err)
	}
	return b.State
}

func TestScenariosMiniredis(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			m := storetest.NewMini(t, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
			runScenario(t, sc, &serviceSubject{t: t, s: NewService(m.Store), name: "svc", waitf: m.Advance})
		})
	}
}

func TestScenariosRealRedis(t *testing.T) {
	r := storetest.StartRedis(t)
	s := NewService(r.Open(t))
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel() // real sleeps: let them overlap
			runScenario(t, sc, &serviceSubject{t: t, s: s, name: "real-" + itoa(i), waitf: time.Sleep})
		})
	}
}

func TestNotFound(t *testing.T) {
	m := storetest.NewMini(t, time.Now())
	s := NewService(m.Store)
	ctx := context.Background()
	checks := map[string]error{}
	_, checks["Acquire"] = s.Acquire(ctx, "nope")
	_, checks["Report"] = s.Report(ctx, "nope", []Outcome{{Success: true, Count: 1, Generation: -1}})
	_, checks["Get"] = s.Get(ctx, "nope")
	_, checks["Force"] = s.Force(ctx, "nope", ForceRequest{State: StateForcedOpen, Reason: "r"})
	_, checks["Unforce"] = s.Unforce(ctx, "nope")
	_, checks["Reset"] = s.Reset(ctx, "nope")
	checks["Delete"] = s.Delete(ctx, "nope")
	for op, err := range checks {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s(nope) = %v, want ErrNotFound", op, err)
		}
	}
}

func itoa(i int) string { return string(rune('a'+i/26)) + string(rune('a'+i%26)) }
