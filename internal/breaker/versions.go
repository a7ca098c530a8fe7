package breaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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

// Version is one config version of a breaker, as its history lists it.
type Version = contract.BreakerVersion

// PutWith creates or updates a breaker under o. It reports whether it was
// created. The config version moves by one (and a Version is recorded) only
// when the config changes; a new breaker starts one above the highest
// version any breaker of this name had.
func (s *Service) PutWith(ctx context.Context, name string, cfg Config, o PutOptions) (Breaker, bool, error) {
	if err := ValidateName(name); err != nil {
		return Breaker{}, false, err
	}
	if err := cfg.Validate(); err != nil {
		return Breaker{}, false, err
	}
	// The store keeps the minimum rate of retries to a thousandth.
	cfg.RetryBudgetMinPerSecond = float64(cfg.RetryMinMilli()) / 1000
	js, err := json.Marshal(cfg)
	if err != nil {
		return Breaker{}, false, err
	}
	v, err := s.store.Run(ctx, scriptPut, keysWithHistory(name), name, cfg.Window.Type, cfg.Window.Size,
		cfg.MinimumCalls, cfg.FailureRateThreshold, cfg.SlowCallDurationMS, cfg.SlowCallRateThreshold,
		cfg.ConsecutiveFailures, cfg.OpenDurationMS, cfg.HalfOpenMaxCalls, cfg.ProbeTimeoutMS, cfg.CacheTTLMS,
		o.By, store.PreconditionArg(o.If), js, HistoryKept, cfg.SlowStartMS, cfg.RetryBudgetPercent, cfg.RetryMinMilli())
	if err != nil {
		return Breaker{}, false, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) < 2 {
		return Breaker{}, false, fmt.Errorf("put %q: unexpected reply %v", name, v)
	}
	if store.ReplyInt(arr[0]) == -1 && len(arr) == 3 {
		return Breaker{}, false, &contract.VersionConflict{Exists: store.ReplyInt(arr[1]) == 1, Current: store.ReplyInt(arr[2])}
	}
	b, err := parseView(name, arr[1:])
	if err != nil {
		return Breaker{}, false, err
	}
	// After the script: see store.IndexAfterPut for why this order.
	if err := s.store.IndexAfterPut(ctx, indexKey, name); err != nil {
		return Breaker{}, false, err
	}
	return b, store.ReplyInt(arr[0]) == 1, nil
}

// History returns up to limit (1..HistoryKept) of a breaker's config
// versions, newest first.
func (s *Service) History(ctx context.Context, name string, limit int) ([]Version, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if limit < 1 || limit > HistoryKept {
		return nil, &ValidationError{Field: "limit", Reason: fmt.Sprintf("must be between 1 and %d, got %d", HistoryKept, limit)}
	}
	v, err := s.store.Run(ctx, scriptHistory, keysWithHistory(name), name, limit)
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
		var e struct {
			ConfigVersion int64  `json:"config_version"`
			AtMS          int64  `json:"at_ms"`
			By            string `json:"by"`
			Config        Config `json:"config"`
		}
		if err := json.Unmarshal([]byte(store.ReplyString(raw)), &e); err != nil {
			errs = append(errs, fmt.Errorf("history %q: entry %q: %w", name, store.ReplyString(raw), err))
			continue
		}
		out = append(out, Version{ConfigVersion: e.ConfigVersion, Config: e.Config, By: e.By, At: msTime(e.AtMS)})
	}
	return out, errors.Join(errs...)
}
