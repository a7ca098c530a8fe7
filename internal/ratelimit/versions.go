package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
	"github.com/breakwater-dev/breakwater/internal/store"
)

// Limits of the config history (see contract.HistoryKept).
const (
	HistoryKept            = contract.HistoryKept
	HistoryKeptAfterDelete = contract.HistoryKeptAfterDelete
	DefaultHistoryLimit    = contract.DefaultHistoryLimit
)

// PutOptions qualify a PutWith.
type PutOptions = contract.PutOptions

// Version is one config version of a limit, as its history lists it.
type Version = contract.RateLimitVersion

// PutWith creates or updates a rate limit under o and reports whether it
// was created. Existing buckets keep their tokens: a new config is not a
// refill. The returned Limit holds the config in force, its rate rounded
// to RefillPrecision. The config version moves by one (and a Version is
// recorded) only when the config in force changes; a new limit starts one
// above the highest version any limit of this name had.
func (s *Service) PutWith(ctx context.Context, name string, cfg Config, o PutOptions) (Limit, bool, error) {
	if err := ValidateName(name); err != nil {
		return Limit{}, false, err
	}
	if err := cfg.Validate(); err != nil {
		return Limit{}, false, err
	}
	// The history records the config in force: the rate as stored.
	js, err := json.Marshal(fromStore(cfg.Capacity, milliRate(cfg)))
	if err != nil {
		return Limit{}, false, err
	}
	// A fresh incarnation, used only if this creates the limit: buckets
	// left by an earlier limit of this name are then never read.
	inc := strconv.FormatUint(rand.Uint64(), 36)
	v, err := s.store.Run(ctx, scriptPut, s.sp.versionKeys(name), name, cfg.Capacity, milliRate(cfg), inc,
		o.By, store.PreconditionArg(o.If), js, HistoryKept)
	if err != nil {
		return Limit{}, false, err
	}
	arr, ok := v.([]any)
	if ok && len(arr) == 3 && store.ReplyInt(arr[0]) == -1 {
		return Limit{}, false, &contract.VersionConflict{Exists: store.ReplyInt(arr[1]) == 1, Current: store.ReplyInt(arr[2])}
	}
	if !ok || len(arr) != 4 {
		return Limit{}, false, fmt.Errorf("put %q: unexpected reply %v", name, v)
	}
	// After the script: see store.IndexAfterPut for why this order.
	if err := s.store.IndexAfterPut(ctx, s.sp.indexKey(), name); err != nil {
		return Limit{}, false, err
	}
	return Limit{Name: name, Config: fromStore(store.ReplyInt(arr[1]), store.ReplyInt(arr[2])), ConfigVersion: store.ReplyInt(arr[3])}, store.ReplyInt(arr[0]) == 1, nil
}

// History returns up to limit (1..HistoryKept) of a rate limit's config
// versions, newest first.
func (s *Service) History(ctx context.Context, name string, limit int) ([]Version, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if limit < 1 || limit > HistoryKept {
		return nil, &ValidationError{Field: "limit", Reason: fmt.Sprintf("must be between 1 and %d, got %d", HistoryKept, limit)}
	}
	v, err := s.store.Run(ctx, scriptHistory, s.sp.versionKeys(name), limit)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, ErrNotFound
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("history %q: unexpected reply %v", name, v)
	}
	out := make([]Version, 0, len(arr))
	var errs []error
	for _, raw := range arr {
		s, _ := raw.(string)
		var e struct {
			ConfigVersion int64  `json:"config_version"`
			AtMS          int64  `json:"at_ms"`
			By            string `json:"by"`
			Config        Config `json:"config"`
		}
		if err := json.Unmarshal([]byte(s), &e); err != nil {
			errs = append(errs, fmt.Errorf("history %q: entry %q: %w", name, s, err))
			continue
		}
		out = append(out, Version{ConfigVersion: e.ConfigVersion, Config: e.Config, By: e.By, At: time.UnixMilli(e.AtMS).UTC()})
	}
	return out, errors.Join(errs...)
}
