package store

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// An index set lives in a slot of its own on a Cluster, apart from the
// objects it names, so no script can write both. Writers keep it right
// with an order instead: a put runs its script and then adds the name
// (IndexAfterPut); a delete runs its script, removes the name and then
// checks whether the object exists again, adding the name back if a put
// re-created it meanwhile (IndexAfterDelete). Whatever the interleaving,
// an object that exists once the writes settle is in its index; the index
// may name an object that is gone, which readers skip. See docs/design.md
// ("The index under concurrent writes").

// IndexAfterPut adds name to the index at key, after the put script that
// created or updated the object ran.
func (s *Store) IndexAfterPut(ctx context.Context, key, name string) error {
	return s.AddToSet(ctx, key, name)
}

// IndexAfterDelete removes name from the index at key, after the delete
// script ran, then adds it back if objectKey exists again: a put that ran
// its script after the delete's may have added the name before this
// removal.
func (s *Store) IndexAfterDelete(ctx context.Context, key, name, objectKey string) error {
	if err := s.RemoveFromSet(ctx, key, name); err != nil {
		return err
	}
	ctx, cancel := s.withDeadline(ctx)
	defer cancel()
	n, err := s.rdb.Exists(ctx, objectKey).Result()
	if err != nil {
		return translate(err)
	}
	if n > 0 {
		return translate(s.rdb.SAdd(ctx, key, name).Err())
	}
	return nil
}

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
