package ratelimit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/store"
)

// The wire types of rate limits, named here for this package's callers.
type (
	// Limit is a rate limit as an operator sees it.
	Limit = contract.RateLimit
	// TakeRequest asks a bucket for tokens. Decode a request over
	// TakeRequest{Tokens: 1} so that a missing tokens field means one token.
	TakeRequest = contract.TakeRequest
	// TakeResult is the answer to a take.
	TakeResult = contract.TakeResult
)

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
		if err := contract.ValidateKey(*key); err != nil {
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
	l := Limit{Name: name, Config: fromStore(store.ReplyInt(arr[0]), store.ReplyInt(arr[1])), ConfigVersion: store.ReplyInt(arr[4])}
	if key != nil {
		k := *key
		tokens := float64(store.ReplyInt(arr[3])) / 1e6
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
	if store.ReplyInt(v) == 0 {
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
	if err := req.Validate(); err != nil {
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
	if ok && len(arr) == 2 && store.ReplyInt(arr[0]) == -1 {
		return TakeResult{}, tokensError(req.Tokens, store.ReplyInt(arr[1]))
	}
	if !ok || len(arr) != 7 {
		return TakeResult{}, fmt.Errorf("take %q: unexpected reply %v", name, v)
	}
	return TakeResult{
		Allowed:      store.ReplyInt(arr[0]) == 1,
		Granted:      store.ReplyInt(arr[1]),
		Remaining:    store.ReplyInt(arr[2]),
		RetryAfterMS: store.ReplyInt(arr[3]),
		ResetMS:      store.ReplyInt(arr[4]),
		Limit:        store.ReplyInt(arr[5]),
		Time:         time.UnixMilli(store.ReplyInt(arr[6])).UTC(),
	}, nil
}

func tokensError(n, capacity int64) error {
	return &ValidationError{Field: "tokens", Reason: fmt.Sprintf("must be between 1 and the capacity %d, got %d", capacity, n)}
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
	return store.ReplyInt(v), nil
}
