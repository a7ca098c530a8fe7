package breaker

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/store"
)

// States as the API names them.
const (
	StateClosed       = contract.StateClosed
	StateOpen         = contract.StateOpen
	StateHalfOpen     = contract.StateHalfOpen
	StateForcedOpen   = contract.StateForcedOpen
	StateForcedClosed = contract.StateForcedClosed
)

// The wire types of breakers, named here for this package's callers.
type (
	// Breaker is a breaker as an operator sees it.
	Breaker = contract.Breaker
	// Transition is how many times a breaker went From -> To.
	Transition = contract.Transition
	// Override is an operator's forced state.
	Override = contract.Override
	// Stats are the calls in the breaker's window now.
	Stats = contract.Stats
	// Decision answers acquire and outcomes.
	Decision = contract.Decision
	// Outcome is what happened to one call, or to Count like calls.
	Outcome = contract.Outcome
	// ForceRequest asks for an operator override.
	ForceRequest = contract.ForceRequest
)

// Service runs the breaker scripts in a store. It is safe for concurrent use.
type Service struct {
	store *store.Store
}

// NewService returns a Service over st.
func NewService(st *store.Store) *Service { return &Service{store: st} }

// Put creates or updates a breaker. It reports whether it was created.
// It is PutWith with no precondition and no author.
func (s *Service) Put(ctx context.Context, name string, cfg Config) (Breaker, bool, error) {
	return s.PutWith(ctx, name, cfg, PutOptions{})
}

// Get returns one breaker.
func (s *Service) Get(ctx context.Context, name string) (Breaker, error) {
	return s.runView(ctx, scriptGet, name)
}

// List returns every breaker, sorted by name.
func (s *Service) List(ctx context.Context) ([]Breaker, error) {
	return store.ListIndex(ctx, s.store, indexKey, ErrNotFound, s.Get)
}

// Delete removes a breaker.
func (s *Service) Delete(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	v, err := s.store.Run(ctx, scriptDelete, keysWithHistory(name), name, HistoryKeptAfterDelete.Milliseconds())
	if err != nil {
		return err
	}
	if err := s.store.IndexAfterDelete(ctx, indexKey, name, keys(name)[0]); err != nil {
		return err
	}
	if store.ReplyInt(v) == 0 {
		return ErrNotFound
	}
	return nil
}

// Acquire asks whether a call may go out now.
func (s *Service) Acquire(ctx context.Context, name string) (Decision, error) {
	d, _, err := s.AcquireOnce(ctx, name, "")
	return d, err
}

// AcquireOnce is Acquire applied at most once per idempotency key: a
// repeat of key (within store.IdempotencyTTL, through any control plane)
// applies nothing and returns the first decision with replayed true. An
// empty key makes it Acquire.
func (s *Service) AcquireOnce(ctx context.Context, name, key string) (d Decision, replayed bool, err error) {
	if err := ValidateName(name); err != nil {
		return Decision{}, false, err
	}
	var v any
	if key == "" {
		v, err = s.store.Run(ctx, scriptAcquire, keys(name), name)
	} else {
		v, replayed, err = s.store.RunOnce(ctx, scriptAcquire, keys(name), once(name, "acquire", key, nil), name)
	}
	if err != nil {
		return Decision{}, false, err
	}
	d, err = parseDecision(v)
	return d, replayed, err
}

// once is the record of one keyed request to one breaker's endpoint.
func once(name, endpoint, key string, request []byte) store.Once {
	return store.Once{
		Key:  store.ObjectKeys("b", []string{name}, store.Suffix("i."+endpoint+".", key))[0],
		Hash: store.RequestHash([]byte(endpoint), request),
	}
}

// validateOutcomes is contract.ValidateOutcomes, and permits of the
// "generation.sequence" shape the scripts issue.
func validateOutcomes(outs []Outcome) error {
	if err := contract.ValidateOutcomes(outs); err != nil {
		return err
	}
	for i, o := range outs {
		if o.Permit != "" && !validPermit(o.Permit) {
			return &ValidationError{Field: fmt.Sprintf("outcomes[%d].permit", i), Reason: "is not a permit this server issued"}
		}
	}
	return nil
}

// validPermit checks the "generation.sequence" shape of permits.
func validPermit(p string) bool {
	g, q, ok := strings.Cut(p, ".")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(g, 10, 63)
	_, err2 := strconv.ParseUint(q, 10, 63)
	return err1 == nil && err2 == nil
}

// Report records outcomes, oldest first, and returns the state after them.
func (s *Service) Report(ctx context.Context, name string, outs []Outcome) (Decision, error) {
	d, _, err := s.ReportOnce(ctx, name, "", outs)
	return d, err
}

// ReportOnce is Report applied at most once per idempotency key, as
// AcquireOnce. A repeat of key with other outcomes is store.ErrKeyReused.
func (s *Service) ReportOnce(ctx context.Context, name, key string, outs []Outcome) (d Decision, replayed bool, err error) {
	return s.reportOnce(ctx, name, "outcomes", key, outs)
}

// reportOnce is ReportOnce with the key's record scoped to endpoint.
func (s *Service) reportOnce(ctx context.Context, name, endpoint, key string, outs []Outcome) (d Decision, replayed bool, err error) {
	p, err := s.submitReport(ctx, name, endpoint, key, outs)
	if err != nil {
		return Decision{}, false, err
	}
	return waitReport(ctx, p)
}

// submitReport queues one report for the breaker's next outcomes run:
// reports to one breaker that arrive close together are applied in one
// script run, each with its own answer and its own key's record (see
// docs/design.md, "Coalesced reports"). Bad input is refused here, before
// it can share a run with anything.
func (s *Service) submitReport(ctx context.Context, name, endpoint, key string, outs []Outcome) (*store.Pending, error) {
	req, err := reportRequest(name, endpoint, key, outs)
	if err != nil {
		return nil, err
	}
	return s.store.Submit(ctx, scriptOutcomes, keys(name), []any{name}, req), nil
}

// reportRequest validates a report and makes it a request of an outcomes
// run.
func reportRequest(name, endpoint, key string, outs []Outcome) (store.Request, error) {
	if err := ValidateName(name); err != nil {
		return store.Request{}, err
	}
	if err := validateOutcomes(outs); err != nil {
		return store.Request{}, err
	}
	args := make([]any, 0, 6*len(outs))
	for _, o := range outs {
		ok := "0"
		if o.Success {
			ok = "1"
		}
		args = append(args, ok, o.DurationMS, o.Count, o.Permit, o.Generation, o.Retries)
	}
	req := store.Request{Args: args}
	if key != "" {
		// The request is what the script is given: the outcomes as
		// validated, defaults filled in.
		body, _ := json.Marshal(args) // strings and integers: cannot fail
		req.Once = once(name, endpoint, key, body)
	}
	return req, nil
}

// waitReport waits for a report's answer.
func waitReport(ctx context.Context, p *store.Pending) (d Decision, replayed bool, err error) {
	v, replayed, err := p.Wait(ctx)
	if err != nil {
		return Decision{}, false, err
	}
	d, err = parseDecision(v)
	return d, replayed, err
}

// OutcomeRuns counts the outcomes script runs made through this service's
// store since it opened, and the reports they carried: reports per run is
// how much coalescing saves the store.
func (s *Service) OutcomeRuns() (runs, reports int64) {
	st := s.store.Coalesced(scriptOutcomes)
	return st.Runs, st.Requests
}

// Force sets an operator override.
func (s *Service) Force(ctx context.Context, name string, r ForceRequest) (Breaker, error) {
	if err := ValidateName(name); err != nil {
		return Breaker{}, err
	}
	if err := r.Validate(); err != nil {
		return Breaker{}, err
	}
	return s.runView(ctx, scriptOverride, name, r.State, r.Reason, r.By, r.TTLMS)
}

// Unforce ends an operator override: the breaker is closed with an empty
// window. Without an override it changes nothing.
func (s *Service) Unforce(ctx context.Context, name string) (Breaker, error) {
	return s.runView(ctx, scriptRelease, name)
}

// Reset closes a breaker, ends any override and empties its window.
func (s *Service) Reset(ctx context.Context, name string) (Breaker, error) {
	return s.runView(ctx, scriptReset, name)
}

func (s *Service) runView(ctx context.Context, sc *store.Script, name string, args ...any) (Breaker, error) {
	if err := ValidateName(name); err != nil {
		return Breaker{}, err
	}
	v, err := s.store.Run(ctx, sc, keys(name), append([]any{name}, args...)...)
	if err != nil {
		return Breaker{}, err
	}
	if v == nil {
		return Breaker{}, ErrNotFound
	}
	arr, ok := v.([]any)
	if !ok {
		return Breaker{}, fmt.Errorf("%s %q: unexpected reply %v", sc.Name(), name, v)
	}
	return parseView(name, arr)
}

func parseDecision(v any) (Decision, error) {
	if v == nil {
		return Decision{}, ErrNotFound
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != 9 {
		return Decision{}, fmt.Errorf("unexpected decision reply %v", v)
	}
	d := Decision{
		Allowed:      store.ReplyInt(arr[0]) == 1,
		State:        store.ReplyString(arr[1]),
		Permit:       store.ReplyString(arr[2]),
		RetryAfterMS: store.ReplyInt(arr[3]),
		CacheTTLMS:   store.ReplyInt(arr[4]),
		Generation:   store.ReplyInt(arr[5]),
		Ignored:      store.ReplyInt(arr[6]),
		AdmitPercent: store.ReplyInt(arr[7]),
	}
	if a := store.ReplyInt(arr[8]); a >= 0 {
		d.RetryAllowance = &a
	}
	return d, nil
}

// parseView reads {now, field, value, ...} as the scripts' view() returns it.
func parseView(name string, arr []any) (Breaker, error) {
	if len(arr) < 1 || len(arr)%2 != 1 {
		return Breaker{}, fmt.Errorf("unexpected view reply of %d elements", len(arr))
	}
	h := make(map[string]string, len(arr)/2)
	for i := 1; i+1 < len(arr); i += 2 {
		h[store.ReplyString(arr[i])] = store.ReplyString(arr[i+1])
	}
	n := func(f string) int64 { v, _ := strconv.ParseInt(h[f], 10, 64); return v }
	b := Breaker{
		Name: name,
		Config: Config{
			Window:                  Window{Type: h["c_wt"], Size: n("c_ws")},
			MinimumCalls:            n("c_min"),
			FailureRateThreshold:    n("c_frt"),
			SlowCallDurationMS:      n("c_slow"),
			SlowCallRateThreshold:   n("c_srt"),
			ConsecutiveFailures:     n("c_cf"),
			OpenDurationMS:          n("c_open"),
			HalfOpenMaxCalls:        n("c_hom"),
			ProbeTimeoutMS:          n("c_pto"),
			CacheTTLMS:              n("c_ttl"),
			SlowStartMS:             n("c_ss"),
			RetryBudgetPercent:      n("c_rbp"),
			RetryBudgetMinPerSecond: float64(n("c_rbm")) / 1000,
		},
		State:         h["st"],
		Since:         msTime(n("since")),
		Generation:    n("gen"),
		ConfigVersion: max(n("cv"), 1), // a breaker written before versions is at 1
		Stats: Stats{
			Calls:     n("calls"),
			Failures:  n("fails"),
			SlowCalls: n("slows"),
			Retries:   n("rets"),
		},
		AdmitPercent: 100,
	}
	// A slow start runs while the scripts' admit() is below 100; it ends
	// slow_start_ms after it began (see docs/semantics.md, "Slow start").
	if _, ok := h["admit"]; ok {
		b.AdmitPercent = n("admit")
		if b.AdmitPercent < 100 {
			t := msTime(n("ss_at") + b.Config.SlowStartMS)
			b.SlowStartUntil = &t
		}
	}
	for f, v := range h {
		if rest, ok := strings.CutPrefix(f, "tr:"); ok {
			from, to, _ := strings.Cut(rest, ":")
			n, _ := strconv.ParseInt(v, 10, 64)
			b.Transitions = append(b.Transitions, Transition{From: from, To: to, Count: n})
		}
	}
	slices.SortFunc(b.Transitions, func(x, y Transition) int {
		return strings.Compare(x.From+":"+x.To, y.From+":"+y.To)
	})
	if b.Stats.Calls > 0 {
		b.Stats.FailureRate = percent(b.Stats.Failures, b.Stats.Calls)
		b.Stats.SlowCallRate = percent(b.Stats.SlowCalls, b.Stats.Calls)
	}
	if b.State == StateOpen {
		t := msTime(n("until"))
		b.OpenUntil = &t
	}
	if ov := h["ov"]; ov != "" {
		b.State = ov
		b.Override = &Override{State: ov, Reason: h["ov_reason"], By: h["ov_by"], At: msTime(n("ov_at"))}
		if exp := n("ov_exp"); exp > 0 {
			t := msTime(exp)
			b.Override.ExpiresAt = &t
		}
	}
	return b, nil
}

func percent(part, whole int64) float64 {
	return math.Round(float64(part)*1000/float64(whole)) / 10
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
