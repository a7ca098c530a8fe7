package contract

import (
	"math"
	"strconv"
	"time"
)

// RateLimitConfig is a rate limit's policy: a token bucket that starts
// full, holds at most Capacity tokens and refills continuously at
// RefillPerSecond. Each distinct key of a take has its own bucket with
// this config.
//
// Neither field has a default: a limit for an unknown dependency has no
// sensible capacity, so both must be given, and the zero RateLimitConfig
// fails Validate.
type RateLimitConfig struct {
	// Capacity is the most tokens a bucket holds (1..MaxCapacity), and so
	// the largest burst and the most one take may ask for.
	Capacity int64 `json:"capacity"`
	// RefillPerSecond is how many tokens a bucket gains per second
	// (MinRefillPerSecond..MaxRefillPerSecond). The control plane keeps it
	// to RefillPrecision, rounding to the nearest, and answers with the
	// rate in force.
	RefillPerSecond float64 `json:"refill_per_second"`
}

// Validate checks a config and returns a *FieldError naming the first
// field out of range, by its JSON name.
func (c RateLimitConfig) Validate() error {
	if err := inRange("capacity", c.Capacity, 1, MaxCapacity); err != nil {
		return err
	}
	r := c.RefillPerSecond
	if math.IsNaN(r) || r < MinRefillPerSecond || r > MaxRefillPerSecond {
		return &FieldError{Field: "refill_per_second", Reason: "must be between " + strconv.FormatFloat(MinRefillPerSecond, 'g', -1, 64) +
			" and " + strconv.FormatFloat(MaxRefillPerSecond, 'g', -1, 64) + ", got " + strconv.FormatFloat(r, 'g', -1, 64)}
	}
	return nil
}

// RateLimitConfigRequest is the body of PUT /v1/ratelimits/{name}: both
// fields required.
type RateLimitConfigRequest struct {
	Capacity        *int64   `json:"capacity"`
	RefillPerSecond *float64 `json:"refill_per_second"`
}

// Config reads the request into a config and validates it.
func (r RateLimitConfigRequest) Config() (RateLimitConfig, error) {
	if r.Capacity == nil {
		return RateLimitConfig{}, &FieldError{Field: "capacity", Reason: "required"}
	}
	if r.RefillPerSecond == nil {
		return RateLimitConfig{}, &FieldError{Field: "refill_per_second", Reason: "required"}
	}
	c := RateLimitConfig{Capacity: *r.Capacity, RefillPerSecond: *r.RefillPerSecond}
	return c, c.Validate()
}

// RateLimit is a rate limit as GET /v1/ratelimits/{name} shows it.
type RateLimit struct {
	Name string `json:"name"`
	// Config is the config in force (the rate as the store keeps it).
	Config RateLimitConfig `json:"config"`
	// ConfigVersion is 1 when the limit is first created and moves by one
	// at every write that changes its config; it never goes back, not even
	// across delete and re-create. GET and PUT send it as the ETag.
	ConfigVersion int64 `json:"config_version"`
	// Key is the key asked about, set only when one was.
	Key *string `json:"key,omitempty"`
	// Tokens is the key's bucket now, set only when a key was asked
	// about. It is fractional, to a millionth of a token, since the bucket
	// refills continuously; a take can get the whole part of it.
	Tokens *float64 `json:"tokens,omitempty"`
}

// TakeRequest asks a bucket for tokens, the body of
// POST /v1/ratelimits/{name}/take. Decode a request over
// TakeRequest{Tokens: 1} so that a missing tokens field means one token;
// the zero TakeRequest asks for none and fails Validate.
type TakeRequest struct {
	// Tokens is how many tokens to take, 1..the limit's capacity.
	Tokens int64 `json:"tokens"`
	// Key picks the bucket: any valid UTF-8 of up to MaxKeyBytes bytes.
	// The empty key is the default bucket, a bucket of its own.
	Key string `json:"key"`
	// Partial grants as many tokens as there are, up to Tokens, instead of
	// all of them or none: how a client leases a batch to spend locally.
	Partial bool `json:"partial"`
}

// Validate checks what can be checked without the limit: the tokens
// against MaxCapacity (the control plane checks them against the limit's
// capacity too) and the key.
func (r TakeRequest) Validate() error {
	if r.Tokens < 1 || r.Tokens > MaxCapacity {
		return &FieldError{Field: "tokens", Reason: "must be between 1 and the limit's capacity, got " + itoa(r.Tokens)}
	}
	return ValidateKey(r.Key)
}

// TakeResult is the answer to a take. Its JSON form is the body of the
// API's answer; the fields without a JSON name feed the RateLimit-*
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
