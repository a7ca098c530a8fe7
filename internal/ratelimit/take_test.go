package ratelimit

import (
	"testing"
	"time"
)

// A step of a scenario: move the clock, then do one thing and check it.
type step struct {
	advance time.Duration
	// One of these: a take (req), a config change (put), a delete (del),
	// or a look at a key's tokens (peek).
	req  *TakeRequest
	put  *Config
	del  bool
	peek *string

	want       TakeResult // for a take; Time is not compared
	wantTokens float64    // for a peek
	wantErr    error      // ErrNotFound, or a *ValidationError naming the field
}

func take(n int64, key string, partial bool) *TakeRequest {
	return &TakeRequest{Tokens: n, Key: key, Partial: partial}
}

func allowed(granted, remaining, resetMS, limit int64) TakeResult {
	return TakeResult{Allowed: true, Granted: granted, Remaining: remaining, ResetMS: resetMS, Limit: limit}
}

func denied(remaining, retryMS, resetMS, limit int64) TakeResult {
	return TakeResult{Remaining: remaining, RetryAfterMS: retryMS, ResetMS: resetMS, Limit: limit}
}

func ptr[T any](v T) *T { return &v }

var scenarios = []struct {
	name  string
	cfg   Config
	steps []step
}{
	{
		name: "all or nothing",
		cfg:  Config{Capacity: 10, RefillPerSecond: 1},
		steps: []step{
			{req: take(4, "", false), want: allowed(4, 6, 4000, 10)},
			{req: take(7, "", false), want: denied(6, 1000, 4000, 10)},
			{advance: 999 * time.Millisecond, req: take(7, "", false), want: denied(6, 1, 3001, 10)},
			{advance: time.Millisecond, req: take(7, "", false), want: allowed(7, 0, 10000, 10)},
			{req: take(1, "", false), want: denied(0, 1000, 10000, 10)},
			{advance: 10 * time.Second, req: take(10, "", false), want: allowed(10, 0, 10000, 10)},
		},
	},
	{
		name: "partial",
		cfg:  Config{Capacity: 5, RefillPerSecond: 2},
		steps: []step{
			{req: take(3, "", true), want: allowed(3, 2, 1500, 5)},
			{req: take(5, "", true), want: allowed(2, 0, 2500, 5)},
			// retry_after is for all the tokens asked, even when partial
			{req: take(1, "", true), want: denied(0, 500, 2500, 5)},
			{req: take(3, "", true), want: denied(0, 1500, 2500, 5)},
			{advance: 1250 * time.Millisecond, peek: ptr(""), wantTokens: 2.5},
			{req: take(5, "", true), want: allowed(2, 0, 2250, 5)},
			{req: take(3, "", false), want: denied(0, 1250, 2250, 5)},
		},
	},
	{
		name: "fractional rate",
		cfg:  Config{Capacity: 1, RefillPerSecond: 0.3},
		steps: []step{
			{req: take(1, "", false), want: allowed(1, 0, 3334, 1)},
			{advance: 3333 * time.Millisecond, req: take(1, "", false), want: denied(0, 1, 1, 1)},
			{peek: ptr(""), wantTokens: 0.9999},
			{advance: time.Millisecond, req: take(1, "", false), want: allowed(1, 0, 3334, 1)},
		},
	},
	{
		name: "largest capacity, fastest rate",
		cfg:  Config{Capacity: MaxCapacity, RefillPerSecond: MaxRefillPerSecond},
		steps: []step{
			{req: take(MaxCapacity, "", false), want: allowed(MaxCapacity, 0, 1000, MaxCapacity)},
			{advance: time.Millisecond, req: take(MaxCapacity, "", true), want: allowed(1_000_000, 0, 1000, MaxCapacity)},
			{req: take(1, "", false), want: denied(0, 1, 1000, MaxCapacity)},
		},
	},
	{
		name: "largest capacity, slowest rate",
		cfg:  Config{Capacity: MaxCapacity, RefillPerSecond: MinRefillPerSecond},
		steps: []step{
			{req: take(1, "", false), want: allowed(1, MaxCapacity-1, 1_000_000, MaxCapacity)},
			{req: take(MaxCapacity, "", false), want: denied(MaxCapacity-1, 1_000_000, 1_000_000, MaxCapacity)},
			{advance: 999_999 * time.Millisecond, req: take(MaxCapacity, "", false), want: denied(MaxCapacity-1, 1, 1, MaxCapacity)},
			{peek: ptr(""), wantTokens: 999_999_999.999999},
			{advance: time.Millisecond, req: take(MaxCapacity, "", false), want: allowed(MaxCapacity, 0, 1e15, MaxCapacity)},
		},
	},
	{
		name: "clock steps back",
		cfg:  Config{Capacity: 10, RefillPerSecond: 10},
		steps: []step{
			{req: take(10, "", false), want: allowed(10, 0, 1000, 10)},
			// 5 s back: nothing is minted, and the wait includes the gap
			{advance: -5 * time.Second, req: take(1, "", false), want: denied(0, 5100, 6000, 10)},
			{advance: 3 * time.Second, req: take(1, "", false), want: denied(0, 2100, 3000, 10)},
			{advance: 2 * time.Second, req: take(1, "", false), want: denied(0, 100, 1000, 10)},
			{advance: 100 * time.Millisecond, req: take(1, "", false), want: allowed(1, 0, 1000, 10)},
			// a grant while the clock is behind is booked at the bucket's time
			{advance: -time.Second, req: take(1, "", true), want: denied(0, 1100, 2000, 10)},
			{advance: 1200 * time.Millisecond, req: take(2, "", false), want: allowed(2, 0, 1000, 10)},
		},
	},
	{
		name: "keys are separate buckets",
		cfg:  Config{Capacity: 2, RefillPerSecond: 1},
		steps: []step{
			{req: take(2, "", false), want: allowed(2, 0, 2000, 2)},
			{req: take(2, "tenant-1", false), want: allowed(2, 0, 2000, 2)},
			{req: take(2, "{tenant-1}", false), want: allowed(2, 0, 2000, 2)},
			{req: take(2, "tenant:1\n🙂", false), want: allowed(2, 0, 2000, 2)},
			{req: take(1, "tenant-1", false), want: denied(0, 1000, 2000, 2)},
			{peek: ptr("tenant-2"), wantTokens: 2},
		},
	},
	{
		name: "config change applies without a refill",
		cfg:  Config{Capacity: 10, RefillPerSecond: 1},
		steps: []step{
			{req: take(8, "", false), want: allowed(8, 2, 8000, 10)},
			{put: &Config{Capacity: 5, RefillPerSecond: 1}},
			{peek: ptr(""), wantTokens: 2},
			{advance: time.Second, peek: ptr(""), wantTokens: 3},
			{put: &Config{Capacity: 2, RefillPerSecond: 1}},
			{peek: ptr(""), wantTokens: 2}, // a lower capacity caps the bucket
			{req: take(3, "", false), wantErr: &ValidationError{Field: "tokens"}},
			{req: take(2, "", false), want: allowed(2, 0, 2000, 2)},
			{put: &Config{Capacity: 20, RefillPerSecond: 2}},
			{advance: 500 * time.Millisecond, peek: ptr(""), wantTokens: 1},
			{req: take(2, "", false), want: denied(1, 500, 9500, 20)},
			{peek: ptr("fresh"), wantTokens: 20},
		},
	},
	{
		name: "delete and create again",
		cfg:  Config{Capacity: 3, RefillPerSecond: 1},
		steps: []step{
			{req: take(3, "", false), want: allowed(3, 0, 3000, 3)},
			{del: true},
			{req: take(1, "", false), wantErr: ErrNotFound},
			{peek: ptr(""), wantErr: ErrNotFound},
			{del: true, wantErr: ErrNotFound},
			// the old bucket has not expired, but a new limit starts full
			{advance: time.Second, put: &Config{Capacity: 3, RefillPerSecond: 1}},
			{req: take(3, "", false), want: allowed(3, 0, 3000, 3)},
		},
	},
}

// TestScenarios runs each scenario against the reference model and
// against the scripts in miniredis.
func TestScenarios(t *testing.T) {
	backends := []struct {
		name string
		new  func(t *testing.T) backend
	}{
		{"model", func(t *testing.T) backend { return modelBackend{newRefModel(start)} }},
		{"miniredis", func(t *testing.T) backend { return newMiniBackend(t) }},
	}
	for _, be := range backends {
		for _, sc := range scenarios {
			t.Run(be.name+"/"+sc.name, func(t *testing.T) {
				b := be.new(t)
				const name = "lim"
				b.put(t, name, sc.cfg)
				for i, st := range sc.steps {
					b.advance(st.advance)
					var err error
					switch {
					case st.put != nil:
						b.put(t, name, *st.put)
					case st.del:
						err = b.delete(name)
					case st.peek != nil:
						var got float64
						got, err = b.tokens(name, *st.peek)
						if err == nil && got != st.wantTokens {
							t.Errorf("step %d: tokens(%q) = %v, want %v", i, *st.peek, got, st.wantTokens)
						}
					case st.req != nil:
						var got TakeResult
						got, err = b.take(name, *st.req)
						got.Time = time.Time{}
						if err == nil && got != st.want {
							t.Errorf("step %d: Take(%+v) = %v, want %v", i, *st.req, got, st.want)
						}
					}
					if !sameError(err, st.wantErr) {
						t.Errorf("step %d: error = %v, want %v", i, err, st.wantErr)
					}
				}
			})
		}
	}
}

// TestTakeTime checks that a take reports the store's clock.
func TestTakeTime(t *testing.T) {
	b := newMiniBackend(t)
	b.put(t, "lim", Config{Capacity: 1, RefillPerSecond: 1})
	b.advance(1234 * time.Millisecond)
	got, err := b.take("lim", TakeRequest{Tokens: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(1234 * time.Millisecond); !got.Time.Equal(want) {
		t.Errorf("Take().Time = %v, want %v", got.Time, want)
	}
}
