package fault

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store"
)

// Key layout (see internal/store/keys.go):
//
//	bw:{f:=NAME}:s   an active fault (hash, expires with the fault)
//	bw:idx:f         names of faults set lately (set, its own slot); a
//	                 name whose fault ended is dropped by the next List

//go:embed lua/*.lua
var luaFS embed.FS

var luaDir, _ = fs.Sub(luaFS, "lua")

var (
	scriptPut    = store.LoadScript(luaDir, "fault", "put")
	scriptGet    = store.LoadScript(luaDir, "fault", "get")
	scriptDelete = store.LoadScript(luaDir, "fault", "delete")
)

func keys(name string) []string { return store.ObjectKeys("f", []string{name}, "s") }

var indexKey = store.IndexKey("f")

// Service keeps faults in a store. It holds no state of its own; it is safe
// for concurrent use.
type Service struct {
	store *store.Store
}

// NewService returns a Service over st.
func NewService(st *store.Store) *Service { return &Service{store: st} }

// Put sets the fault of dependency name, replacing any, on behalf of by.
// It fills in s's defaults and validates it first.
func (s *Service) Put(ctx context.Context, name string, spec Spec, by string) (Fault, error) {
	if err := ValidateName(name); err != nil {
		return Fault{}, err
	}
	if err := spec.Normalize(); err != nil {
		return Fault{}, err
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return Fault{}, err
	}
	v, err := s.store.Run(ctx, scriptPut, keys(name), name, js, by, spec.TTLMS)
	if err != nil {
		return Fault{}, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != 2 {
		return Fault{}, fmt.Errorf("put fault %q: unexpected reply %v", name, v)
	}
	// After the script: see store.IndexAfterPut for why this order.
	if err := s.store.IndexAfterPut(ctx, indexKey, name); err != nil {
		return Fault{}, err
	}
	return Fault{Name: name, FaultSpec: spec, By: by, At: msTime(store.ReplyInt(arr[0])), ExpiresAt: msTime(store.ReplyInt(arr[1]))}, nil
}

// Get returns the active fault of name, or ErrNotFound.
func (s *Service) Get(ctx context.Context, name string) (Fault, error) {
	if err := ValidateName(name); err != nil {
		return Fault{}, err
	}
	v, err := s.store.Run(ctx, scriptGet, keys(name))
	if err != nil {
		return Fault{}, err
	}
	if v == nil {
		return Fault{}, ErrNotFound
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != 4 {
		return Fault{}, fmt.Errorf("get fault %q: unexpected reply %v", name, v)
	}
	f := Fault{Name: name, By: store.ReplyString(arr[1]), At: msTime(store.ReplyInt(arr[2])), ExpiresAt: msTime(store.ReplyInt(arr[3]))}
	if err := json.Unmarshal([]byte(store.ReplyString(arr[0])), &f.FaultSpec); err != nil {
		return Fault{}, fmt.Errorf("get fault %q: %w", name, err)
	}
	return f, nil
}

// List returns every active fault, sorted by name. Names of faults that
// ended are dropped from the index on the way.
func (s *Service) List(ctx context.Context) ([]Fault, error) {
	var mu sync.Mutex
	var gone []string
	fs, err := store.ListIndex(ctx, s.store, indexKey, ErrNotFound, func(ctx context.Context, name string) (Fault, error) {
		f, err := s.Get(ctx, name)
		if errors.Is(err, ErrNotFound) {
			mu.Lock()
			gone = append(gone, name)
			mu.Unlock()
		}
		return f, err
	})
	if err != nil {
		return nil, err
	}
	for _, name := range gone {
		// Checks again after removing, so a fault set meanwhile stays listed.
		if err := s.store.IndexAfterDelete(ctx, indexKey, name, keys(name)[0]); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

// Delete ends the fault of name early; ErrNotFound when none is active.
func (s *Service) Delete(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	v, err := s.store.Run(ctx, scriptDelete, keys(name), name)
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

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
