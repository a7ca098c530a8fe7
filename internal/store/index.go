package store

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// listConcurrency is how many objects ListIndex reads at once; the
// pipeliner sends concurrent reads to Redis together.
const listConcurrency = 16

// ListIndex reads every object named in the index set at key with get,
// several at once, and returns them in name order. get answers skip for
// an object that is gone (an index may name an object deleted since).
func ListIndex[T any](ctx context.Context, s *Store, key string, skip error, get func(context.Context, string) (T, error)) ([]T, error) {
	names, err := s.SetMembers(ctx, key)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	got := make([]T, len(names))
	found := make([]bool, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, listConcurrency)
	var wg sync.WaitGroup
	for i, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			v, err := get(ctx, name)
			switch {
			case errors.Is(err, skip):
			case err != nil:
				errs[i] = err
			default:
				got[i], found[i] = v, true
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make([]T, 0, len(names))
	for i := range got {
		if found[i] {
			out = append(out, got[i])
		}
	}
	return out, nil
}
