package breaker

import (
	"fmt"
	"sort"
	"time"
)

// model is the breaker state machine in plain Go: the specification the
// Lua scripts are checked against, step by step. It keeps the same fields
// the scripts keep, and every method takes the store's time in ms.
type model struct {
	name   string
	exists bool
	cfg    Config

	st                  string
	since, until, gen   int64
	consec              int64
	calls, fails, slows int64
	hoOK, seq           int64
	ov, ovReason, ovBy  string
	ovAt, ovExp         int64

	window []seg            // oldest first
	probes map[string]int64 // permit -> expiry ms
	tr     map[[2]string]int64
}

// count records a state change, as publish() does in the scripts.
func (m *model) count(from, to string) {
	if m.tr == nil {
		m.tr = map[[2]string]int64{}
	}
	m.tr[[2]string{from, to}]++
}

// seg is a window segment: a second's bucket (time window) or a run of like
// calls (count window: kind = 2*failed + slow).
type seg struct{ key, n, f, s int64 }

func newModel(name string) *model { return &model{name: name} }

func (m *model) effective() string {
	if m.ov != "" {
		return m.ov
	}
	return m.st
}

func (m *model) clearWindow() {
	m.window = nil
	m.calls, m.fails, m.slows, m.consec = 0, 0, 0, 0
}

func (m *model) transition(now int64, to string) {
	m.count(m.effective(), to)
	m.st, m.since, m.gen = to, now, m.gen+1
	m.probes = nil
	m.hoOK = 0
	if to == StateOpen {
		m.until = now + m.cfg.OpenDurationMS
		m.clearWindow()
	} else {
		m.until = 0
		if to == StateClosed {
			m.clearWindow()
		}
	}
}

func (m *model) endOverride(now int64) {
	m.count(m.ov, StateClosed)
	m.ov, m.ovReason, m.ovBy, m.ovAt, m.ovExp = "", "", "", 0, 0
	m.st, m.since, m.until, m.gen, m.hoOK = StateClosed, now, 0, m.gen+1, 0
	m.probes = nil
	m.clearWindow()
}

func (m *model) evict(now int64) {
	if m.cfg.Window.Type == WindowTime {
		oldest := floorDiv(now, 1000) - m.cfg.Window.Size
		for m.calls > 0 && len(m.window) > 0 && m.window[0].key <= oldest {
			h := m.window[0]
			m.window = m.window[1:]
			m.calls, m.fails, m.slows = m.calls-h.n, m.fails-h.f, m.slows-h.s
		}
		return
	}
	for m.calls > m.cfg.Window.Size && len(m.window) > 0 {
		h := &m.window[0]
		excess := m.calls - m.cfg.Window.Size
		drop := h.n
		if h.n > excess {
			drop = excess
			h.n -= drop
		} else {
			m.window = m.window[1:]
		}
		m.calls -= drop
		if h.key >= 2 {
			m.fails -= drop
		}
		if h.key%2 == 1 {
			m.slows -= drop
		}
	}
}

func (m *model) tick(now int64) {
	if m.ov != "" && m.ovExp > 0 && now >= m.ovExp {
		m.endOverride(now)
	}
	m.evict(now)
}

func (m *model) record(now, n int64, failed, slow bool) {
	var f, s int64
	if failed {
		f = n
	}
	if slow {
		s = n
	}
	if m.cfg.Window.Type == WindowTime {
		sec := floorDiv(now, 1000)
		if l := len(m.window); l > 0 && m.window[l-1].key >= sec {
			m.window[l-1].n += n
			m.window[l-1].f += f
			m.window[l-1].s += s
		} else {
			m.window = append(m.window, seg{sec, n, f, s})
		}
	} else {
		var kind int64
		if failed {
			kind += 2
		}
		if slow {
			kind++
		}
		if l := len(m.window); l > 0 && m.window[l-1].key == kind {
			m.window[l-1].n += n
		} else {
			m.window = append(m.window, seg{key: kind, n: n})
		}
	}
	m.calls, m.fails, m.slows = m.calls+n, m.fails+f, m.slows+s
	if failed {
		m.consec += n
	} else {
		m.consec = 0
	}
	if m.cfg.Window.Type == WindowCount {
		m.evict(now)
	}
}

func (m *model) maybeTrip(now int64) {
	if m.ov != "" || m.st != StateClosed {
		return
	}
	c := m.cfg
	switch {
	case c.ConsecutiveFailures > 0 && m.consec >= c.ConsecutiveFailures,
		m.calls >= c.MinimumCalls && m.fails*100 >= c.FailureRateThreshold*m.calls,
		m.calls >= c.MinimumCalls && m.slows*100 >= c.SlowCallRateThreshold*m.calls:
		m.transition(now, StateOpen)
	}
}

func (m *model) decision(allowed bool, permit string, retry, ttl, ignored int64) Decision {
	return Decision{Allowed: allowed, State: m.effective(), Permit: permit, RetryAfterMS: retry, CacheTTLMS: ttl, Generation: m.gen, Ignored: ignored}
}

func (m *model) answer(now, ignored int64) Decision {
	ttl := m.cfg.CacheTTLMS
	switch m.effective() {
	case StateForcedOpen:
		retry := ttl
		if m.ovExp > 0 {
			retry = m.ovExp - now
		}
		return m.decision(false, "", retry, retry, ignored)
	case StateForcedClosed:
		if m.ovExp > 0 && m.ovExp-now < ttl {
			ttl = m.ovExp - now
		}
		return m.decision(true, "", 0, ttl, ignored)
	case StateClosed:
		return m.decision(true, "", 0, ttl, ignored)
	case StateOpen:
		retry := max(m.until-now, 0)
		return m.decision(false, "", retry, retry, ignored)
	}
	retry := ttl
	first := int64(-1)
	for p, exp := range m.probes {
		if exp <= now {
			delete(m.probes, p)
		} else if first < 0 || exp < first {
			first = exp
		}
	}
	if first >= 0 {
		retry = first - now
	}
	return m.decision(false, "", retry, min(retry, ttl), ignored)
}

// put mirrors put.lua.
func (m *model) put(now int64, cfg Config) bool {
	created := !m.exists
	if created {
		*m = model{name: m.name, exists: true, st: StateClosed, since: now, gen: 1}
	} else {
		m.tick(now)
	}
	oldType := m.cfg.Window.Type
	m.cfg = cfg
	if !created {
		if oldType != cfg.Window.Type {
			m.clearWindow()
		}
		m.evict(now)
		m.maybeTrip(now)
	}
	return created
}

func (m *model) acquire(now int64) (Decision, error) {
	if !m.exists {
		return Decision{}, ErrNotFound
	}
	m.tick(now)
	if m.ov == "" && m.st == StateOpen && now >= m.until {
		m.transition(now, StateHalfOpen)
	}
	if m.ov == "" && m.st == StateHalfOpen {
		for p, exp := range m.probes {
			if exp <= now {
				delete(m.probes, p)
			}
		}
		if int64(len(m.probes)) < m.cfg.HalfOpenMaxCalls {
			m.seq++
			permit := fmt.Sprintf("%d.%d", m.gen, m.seq)
			if m.probes == nil {
				m.probes = map[string]int64{}
			}
			m.probes[permit] = now + m.cfg.ProbeTimeoutMS
			return m.decision(true, permit, 0, 0, 0), nil
		}
	}
	return m.answer(now, 0), nil
}

func (m *model) report(now int64, outs []Outcome) (Decision, error) {
	if !m.exists {
		return Decision{}, ErrNotFound
	}
	m.tick(now)
	var ignored int64
	for _, o := range outs {
		slow := o.DurationMS >= m.cfg.SlowCallDurationMS
		switch {
		case o.Permit != "":
			exp, ok := m.probes[o.Permit]
			if m.ov == "" && m.st == StateHalfOpen && ok && exp > now {
				delete(m.probes, o.Permit)
				if !o.Success || slow {
					m.transition(now, StateOpen)
				} else {
					m.hoOK++
					if m.hoOK >= m.cfg.HalfOpenMaxCalls {
						m.transition(now, StateClosed)
					}
				}
			} else {
				ignored++
			}
		case o.Generation >= 0 && o.Generation != m.gen:
			ignored += o.Count
		case m.ov != "" || m.st == StateClosed:
			m.record(now, o.Count, !o.Success, slow)
			m.maybeTrip(now)
		default:
			ignored += o.Count
		}
	}
	return m.answer(now, ignored), nil
}

func (m *model) force(now int64, r ForceRequest) error {
	if !m.exists {
		return ErrNotFound
	}
	m.tick(now)
	from := m.effective()
	m.ovReason, m.ovBy, m.ovAt = r.Reason, r.By, now
	m.ovExp = 0
	if r.TTLMS > 0 {
		m.ovExp = now + r.TTLMS
	}
	if from != r.State {
		m.count(from, r.State)
		m.ov, m.st, m.since, m.until, m.hoOK, m.gen = r.State, StateClosed, now, 0, 0, m.gen+1
		m.probes = nil
	}
	return nil
}

func (m *model) unforce(now int64) error {
	if !m.exists {
		return ErrNotFound
	}
	m.tick(now)
	if m.ov != "" {
		m.endOverride(now)
	}
	return nil
}

func (m *model) reset(now int64) error {
	if !m.exists {
		return ErrNotFound
	}
	m.tick(now)
	if from := m.effective(); from != StateClosed {
		m.count(from, StateClosed)
	}
	m.ov, m.ovReason, m.ovBy, m.ovAt, m.ovExp = "", "", "", 0, 0
	m.st, m.since, m.until, m.hoOK, m.gen = StateClosed, now, 0, 0, m.gen+1
	m.probes = nil
	m.clearWindow()
	return nil
}

// view is the breaker as Get shows it, after ticking to now.
func (m *model) view(now int64) (Breaker, error) {
	if !m.exists {
		return Breaker{}, ErrNotFound
	}
	m.tick(now)
	b := Breaker{
		Name: m.name, Config: m.cfg, State: m.st, Since: msTime(m.since), Generation: m.gen,
		Stats: Stats{Calls: m.calls, Failures: m.fails, SlowCalls: m.slows},
	}
	for k, n := range m.tr {
		b.Transitions = append(b.Transitions, Transition{From: k[0], To: k[1], Count: n})
	}
	sort.Slice(b.Transitions, func(i, j int) bool {
		return b.Transitions[i].From+":"+b.Transitions[i].To < b.Transitions[j].From+":"+b.Transitions[j].To
	})
	if m.calls > 0 {
		b.Stats.FailureRate = percent(m.fails, m.calls)
		b.Stats.SlowCallRate = percent(m.slows, m.calls)
	}
	if m.st == StateOpen {
		t := msTime(m.until)
		b.OpenUntil = &t
	}
	if m.ov != "" {
		b.State = m.ov
		b.Override = &Override{State: m.ov, Reason: m.ovReason, By: m.ovBy, At: msTime(m.ovAt)}
		if m.ovExp > 0 {
			t := msTime(m.ovExp)
			b.Override.ExpiresAt = &t
		}
	}
	return b, nil
}

// permits lists the outstanding permits, for tests that want a real one.
func (m *model) permits() []string {
	var ps []string
	for p := range m.probes {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ms(t time.Time) int64 { return t.UnixMilli() }
