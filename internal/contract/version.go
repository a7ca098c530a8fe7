package contract

import (
	"errors"
	"strconv"
	"time"
)

// Limits of the config history of breakers and rate limits.
const (
	// HistoryKept is how many config versions the store keeps per breaker
	// or rate limit.
	HistoryKept = 100
	// HistoryKeptAfterDelete is how long a deleted object's history is
	// kept, so that one created again within that time goes on with it.
	HistoryKeptAfterDelete = 30 * 24 * time.Hour
	// DefaultHistoryLimit is how many versions a history lists when asked
	// for none in particular.
	DefaultHistoryLimit = 20
)

// Precondition is a condition on an object's config version that a write
// checks in the same script run that writes, so no other write can come
// between the check and the write (If-Match, If-None-Match). The zero
// Precondition always holds.
type Precondition struct {
	// MustNotExist holds only when the object does not exist
	// (If-None-Match: *).
	MustNotExist bool
	// MustExist holds when the object exists, at any version (If-Match: *).
	MustExist bool
	// Versions, when Match is set, holds only when the object exists at
	// one of these versions (If-Match: "3", "4"). An empty list with Match
	// set never holds.
	Match    bool
	Versions []int64
}

// ErrPreconditionFailed is matched by a conditional write's error when its
// Precondition did not hold; nothing was written (412).
var ErrPreconditionFailed = errors.New("precondition failed")

// VersionConflict is the error of a write whose Precondition did not hold.
// It matches ErrPreconditionFailed.
type VersionConflict struct {
	// Exists says whether the object exists; Current is its config
	// version when it does.
	Exists  bool
	Current int64
}

func (e *VersionConflict) Error() string {
	if !e.Exists {
		return "precondition failed: the object does not exist"
	}
	return "precondition failed: the object is at config version " + strconv.FormatInt(e.Current, 10)
}

// Is makes errors.Is(err, ErrPreconditionFailed) true.
func (e *VersionConflict) Is(target error) bool { return target == ErrPreconditionFailed }

// BreakerVersion is one config version of a breaker, as its history lists
// it.
type BreakerVersion struct {
	ConfigVersion int64         `json:"config_version"`
	Config        BreakerConfig `json:"config"`
	By            string        `json:"by"`
	At            time.Time     `json:"at"`
}

// RateLimitVersion is one config version of a rate limit, as its history
// lists it.
type RateLimitVersion struct {
	ConfigVersion int64           `json:"config_version"`
	Config        RateLimitConfig `json:"config"`
	By            string          `json:"by"`
	At            time.Time       `json:"at"`
}

// PutOptions qualify a put of a breaker or rate limit.
type PutOptions struct {
	// By names who writes (a token name); the history records it.
	By string
	// If is checked against the object's config version in the same
	// script run that writes; when it does not hold, the put writes
	// nothing and returns a *VersionConflict.
	If Precondition
}
