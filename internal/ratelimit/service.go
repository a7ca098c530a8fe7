package ratelimit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/breakwater-dev/breakwater/internal/store"
)

// Limit is a rate limit as an operator sees it.
type Limit struct {
	Name string `json:"name"`
	// Config is the config in force (the rate as the store keeps it).
	Config Config `json:"config"`
	// ConfigVersion is 1 when the limit is first created and moves by one
	// at every write that changes its config; it never goes back, not even
	// across delete and re-create.
	ConfigVersion int64 `json:"config_version"`
	// Key is the key asked about, set only when Get was given one.
	Key *string `json:"key,omitempty"`
	// Tokens is the key's bucket now, set only when Get was given a key.
	// It is fractional, to a millionth of a token, since the bucket
	// refills continuously; a take can get the whole part of it.
	Tokens *float64 `json:"tokens,omitempty"`
}

// TakeRequest asks a bucket for tokens. Decode a request over
// TakeRequest{Tokens: 1} so that a missing tokens field means one token;
// the zero TakeRequest asks for none and fails validation.
type TakeRequest struct {
	// Tokens is how many tokens to take, 1..the limit's capacity.
	Tokens int64 `json:"tokens"`
	// Key picks the bucket: any valid UTF-8 of up to MaxKeyLen bytes. The
	// empty key is the default bucket, a bucket of its own.
	Key string `json:"key"`
	// Partial grants as many tokens as there are, up to Tokens, instead of
	// all of them or none: how a client leases a batch to spend locally.
	Partial bool `json:"partial"`
}

// TakeResult is the answer to a take. Its JSON form is the body of the
// API's take answer; the fields without a JSON name feed the RateLimit-*
// headers.
type TakeResult struct {
	// Allowed says whether any tokens were granted.
	Allowed bool `json:"allowed"`
	// Granted is how many tokens were taken: all asked or none, or with
	// Partial anything from none to all asked.
	Granted int64 `json:"granted"`
	// Remaining is the whole tokens left in the bucket after the take.
	Remaining int64 `json:"remaining"`
	// RetryAfterMS is 0 when tokens were granted; otherwise the least
	// number of milliseconds after which all the tokens asked would be in
	// the bucket, if no one else took any.
	RetryAfterMS int64 `json:"retry_after_ms"`
	// ResetMS is how many milliseconds until the bucket is full again
	// (RateLimit-Reset).
	ResetMS int64 `json:"-"`
	// Limit is the limit's capacity (RateLimit-Limit).
	Limit int64 `json:"-"`
	// Time is the store's clock when the take was decided, to the
	// millisecond.
	Time time.Time `json:"-"`
}

// Service runs the rate-limit scripts in a store. It holds no state of its
// own, so any number of Services, in any number of processes, over one
// store act as one limiter. It is safe for concurrent use.
//
// # Where the keys live, and why
//
// A take must read the limit's config and update the key's bucket in one
// script run: one round trip, and exact however the config changes
// meanwhile. On a Redis Cluster all keys a script touches must be in one
// slot, so the config and every bucket of a limit share the limit's hash
// tag (see keys.go). The alternative, a hash tag per bucket, spreads one
// hot limit's keys over the nodes, but then no script can see both config
// and bucket: the Service would pass the config in ARGV, read either with a
// second round trip per take or from an in-process cache. A cache means a
// config change or a delete reaches each control-plane replica only when
// its entry expires: for that long replicas disagree, and a deleted limit
// keeps granting. We chose exactness and one round trip (docs/design.md,
// "Every key of an object shares one hash tag").
//
// So the Service caches nothing and there is no staleness to bound: every
// take sees the config as it is when the script runs, on whichever replica.
// The price is that all buckets of one limit live on one node: a single
// limit is served at the speed of one Redis node. The take script costs
// some microseconds of Redis time (BenchmarkTakeScript's script-us/call;
// docs/performance.md has measured figures), so that is tens of thousands
// of takes a second or more, and clients lease tokens in batches. A limit that needs more can be split
// by name (api-0 .. api-7, with keys hashed across them); different limits
// spread over the Cluster's nodes as usual.
type Service struct {
	store *store.Store
	sp    space
}

// NewService returns a Service over st, for the limits the API serves.
func NewService(st *store.Store) *Service { return &Service{store: st, sp: publicSpace} }

// NewSystemService returns a Service over st for Breakwater's own limits.
// They live in a key space of their own (see keys.go): no limit name or
// key given to a NewService Service, so none sent to the API, reaches
// them, and they are not listed with the public limits.
func NewSystemService(st *store.Store) *Service { return &Service{store: st, sp: systemSpace} }

// System returns the system-space Service over s's store (see
// NewSystemService).
func (s *Service) System() *Service { return NewSystemService(s.store) }

// Put creates or updates a rate limit and reports whether it was created.
// It is PutWith with no precondition and no author.
func (s *Service) Put(ctx context.Context, name string, cfg Config) (Limit, bool, error) {
	return s.PutWith(ctx, name, cfg, PutOptions{})
}

// Get returns a rate limit and, when key is not nil, that key's bucket now.
// It changes nothing.
func (s *Service) Get(ctx context.Context, name string, key *string) (Limit, error) {
	if err := ValidateName(name); err != nil {
		return Limit{}, err
	}
	ks := s.sp.configKeys(name)
	if key != nil {
		if err := validateKey(*key); err != nil {
			return Limit{}, err
		}
		ks = s.sp.keys(name, *key)
	}
	v, err := s.store.Run(ctx, scriptGet, ks)
	if err != nil {
		return Limit{}, err
	}
	if v == nil {
		return Limit{}, ErrNotFound
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != 5 {
		return Limit{}, fmt.Errorf("get %q: unexpected reply %v", name, v)
	}
	l := Limit{Name: name, Config: fromStore(asInt(arr[0]), asInt(arr[1])), ConfigVersion: asInt(arr[4])}
	if key != nil {
		k := *key
		tokens := float64(asInt(arr[3])) / 1e6
		l.Key, l.Tokens = &k, &tokens
	}
	return l, nil
}

// List returns every rate limit, sorted by name.
func (s *Service) List(ctx context.Context) ([]Limit, error) {
	return store.ListIndex(ctx, s.store, s.sp.indexKey(), ErrNotFound, func(ctx context.Context, name string) (Limit, error) {
		return s.Get(ctx, name, nil)
	})
}

// Delete removes a rate limit. Takes find no limit from then on; its
// buckets expire by themselves (see lua/delete.lua).
func (s *Service) Delete(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	v, err := s.store.Run(ctx, scriptDelete, s.sp.versionKeys(name), name, HistoryKeptAfterDelete.Milliseconds())
	if err != nil {
		return err
	}
	if err := s.store.IndexAfterDelete(ctx, s.sp.indexKey(), name, s.sp.configKeys(name)[0]); err != nil {
		return err
	}
	if asInt(v) == 0 {
		return ErrNotFound
	}
	return nil
}

// Take takes tokens from the bucket of req.Key in one store round trip.
// A denial is not an error: it is a TakeResult with Allowed false. Errors
// are *ValidationError for bad input (tokens over the capacity included),
// ErrNotFound, or a store error (errors.Is(err, store.ErrUnavailable) when
// the store cannot be reached).
func (s *Service) Take(ctx context.Context, name string, req TakeRequest) (TakeResult, error) {
	res, _, err := s.TakeOnce(ctx, name, "", req)
	return res, err
}

// TakeOnce is Take applied at most once per idempotency key, scoped to the
// limit and req.Key: a repeat of key (within store.IdempotencyTTL, through
// any control plane) takes nothing and returns the first result with
// replayed true; a repeat with another request is store.ErrKeyReused. An
// empty idempotency key makes it Take.
func (s *Service) TakeOnce(ctx context.Context, name, idemKey string, req TakeRequest) (res TakeResult, replayed bool, err error) {
	if err := ValidateName(name); err != nil {
		return TakeResult{}, false, err
	}
	if req.Tokens < 1 || req.Tokens > MaxCapacity {
		return TakeResult{}, false, &ValidationError{Field: "tokens", Reason: fmt.Sprintf("must be between 1 and the limit's capacity, got %d", req.Tokens)}
	}
	if err := validateKey(req.Key); err != nil {
		return TakeResult{}, false, err
	}
	partial := "0"
	if req.Partial {
		partial = "1"
	}
	var v any
	if idemKey == "" {
		v, err = s.store.Run(ctx, scriptTake, s.sp.keys(name, req.Key), req.Tokens, partial)
	} else {
		v, replayed, err = s.store.RunOnce(ctx, scriptTake, s.sp.keys(name, req.Key), s.once(name, req, idemKey), req.Tokens, partial)
	}
	if err != nil {
		return TakeResult{}, false, err
	}
	res, err = parseTake(name, req, v)
	return res, replayed, err
}

// onceKey is the record of one keyed take: scoped to the limit and the
// bucket's key, hashed over the whole request.
func (s *Service) once(name string, req TakeRequest, idemKey string) store.Once {
	js, _ := json.Marshal(req) // plain fields: cannot fail
	return store.Once{Key: s.sp.onceKey(name, req.Key, idemKey),
		Hash: store.RequestHash([]byte("take"), js)}
}

func parseTake(name string, req TakeRequest, v any) (TakeResult, error) {
	if v == nil {
		return TakeResult{}, ErrNotFound
	}
	arr, ok := v.([]any)
	if ok && len(arr) == 2 && asInt(arr[0]) == -1 {
		return TakeResult{}, tokensError(req.Tokens, asInt(arr[1]))
	}
	if !ok || len(arr) != 7 {
		return TakeResult{}, fmt.Errorf("take %q: unexpected reply %v", name, v)
	}
	return TakeResult{
		Allowed:      asInt(arr[0]) == 1,
		Granted:      asInt(arr[1]),
		Remaining:    asInt(arr[2]),
		RetryAfterMS: asInt(arr[3]),
		ResetMS:      asInt(arr[4]),
		Limit:        asInt(arr[5]),
		Time:         time.UnixMilli(asInt(arr[6])).UTC(),
	}, nil
}

func tokensError(n, capacity int64) error {
	return &ValidationError{Field: "tokens", Reason: fmt.Sprintf("must be between 1 and the capacity %d, got %d", capacity, n)}
}

func validateKey(key string) error {
	if len(key) > MaxKeyLen {
		return &ValidationError{Field: "key", Reason: fmt.Sprintf("must be at most %d bytes, got %d", MaxKeyLen, len(key))}
	}
	if !utf8.ValidString(key) {
		return &ValidationError{Field: "key", Reason: "must be valid UTF-8"}
	}
	return nil
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// ClientsWindow is how long a client that stopped taking from a limit
// still counts as one of its takers.
const ClientsWindow = 30 * time.Second

// NoteClients records that the given clients took from the limit, and
// returns how many distinct clients took from it within ClientsWindow,
// fleet-wide. Clients use the count to hold a fair share of the limit
// while they cannot reach the control plane.
func (s *Service) NoteClients(ctx context.Context, name string, ids []string) (int64, error) {
	if err := ValidateName(name); err != nil {
		return 0, err
	}
	args := make([]any, 0, 1+len(ids))
	args = append(args, ClientsWindow.Milliseconds())
	for _, id := range ids {
		args = append(args, id)
	}
	v, err := s.store.Run(ctx, scriptNote, s.sp.clientsKey(name), args...)
	if err != nil {
		return 0, err
	}
	return asInt(v), nil
}
