package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

func TestPutGetListDelete(t *testing.T) {
	b := newMiniBackend(t)
	s, ctx := b.svc, context.Background()

	cfg := Config{Capacity: 100, RefillPerSecond: 10}
	for i, wantCreated := range []bool{true, false} {
		l, created, err := s.Put(ctx, "payments", cfg)
		if want := (Limit{Name: "payments", Config: cfg, ConfigVersion: 1}); err != nil || created != wantCreated || l != want {
			t.Errorf("Put #%d = %+v, %v, %v; want %+v, %v, nil", i+1, l, created, err, want, wantCreated)
		}
	}
	if _, _, err := s.Put(ctx, "email", Config{Capacity: 1, RefillPerSecond: 0.5}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "payments", nil)
	if err != nil || got != (Limit{Name: "payments", Config: cfg, ConfigVersion: 1}) {
		t.Errorf("Get(%q) = %+v, %v; want %+v", "payments", got, err, cfg)
	}
	// a name in the index without a limit (a Put that failed after the
	// index was written) is skipped
	if err := b.mini.Store.AddToSet(ctx, indexKey, "ghost"); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	var names []string
	for _, l := range list {
		names = append(names, l.Name)
	}
	if err != nil || !slices.Equal(names, []string{"email", "payments"}) {
		t.Errorf("List() = %v, %v; want [email payments]", names, err)
	}
	if err := s.Delete(ctx, "payments"); err != nil {
		t.Errorf("Delete(%q) = %v", "payments", err)
	}
	if err := s.Delete(ctx, "payments"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(%q) again = %v, want ErrNotFound", "payments", err)
	}
	if _, err := s.Get(ctx, "payments", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(%q) after Delete = %v, want ErrNotFound", "payments", err)
	}
	list, err = s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "email" {
		t.Errorf("List() after Delete = %+v, %v; want [email]", list, err)
	}
}

func TestPutRoundsRate(t *testing.T) {
	b := newMiniBackend(t)
	tests := []struct {
		rate, want float64
	}{
		{1, 1},
		{0.001, 0.001},
		{0.0015, 0.002},
		{1.0 / 3, 0.333},
		{2.0 / 3, 0.667},
		{123456.7894, 123456.789},
		{1e9, 1e9},
	}
	for _, tt := range tests {
		l, _, err := b.svc.Put(context.Background(), "r", Config{Capacity: 1, RefillPerSecond: tt.rate})
		if err != nil || l.Config.RefillPerSecond != tt.want {
			t.Errorf("Put(rate %v).RefillPerSecond = %v, %v; want %v", tt.rate, l.Config.RefillPerSecond, err, tt.want)
		}
		g, err := b.svc.Get(context.Background(), "r", nil)
		if err != nil || g.Config.RefillPerSecond != tt.want {
			t.Errorf("Get after Put(rate %v).RefillPerSecond = %v, %v; want %v", tt.rate, g.Config.RefillPerSecond, err, tt.want)
		}
	}
}

func TestEvents(t *testing.T) {
	b := newMiniBackend(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := b.mini.Store.Subscribe(ctx, store.EventsChannel)
	next := func(within time.Duration) (event, bool) {
		select {
		case msg := <-events:
			var ev event
			if err := json.Unmarshal([]byte(msg), &ev); err != nil {
				t.Fatalf("event %q: %v", msg, err)
			}
			return ev, true
		case <-time.After(within):
			return event{}, false
		}
	}
	// Put until the subscription, which starts in the background, sees it.
	var got event
	for i := 0; ; i++ {
		if _, _, err := b.svc.Put(ctx, "pay", Config{Capacity: 1, RefillPerSecond: 1}); err != nil {
			t.Fatal(err)
		}
		var ok bool
		if got, ok = next(100 * time.Millisecond); ok {
			break
		}
		if i == 50 {
			t.Fatal("no event after 50 Puts")
		}
	}
	if want := (event{"ratelimit.config", "pay", start.UnixMilli()}); got != want {
		t.Errorf("event after Put = %+v, want %+v", got, want)
	}
	for { // drain the events of the Puts before the subscription was seen
		if _, ok := next(50 * time.Millisecond); !ok {
			break
		}
	}
	if err := b.svc.Delete(ctx, "pay"); err != nil {
		t.Fatal(err)
	}
	got, _ = next(2 * time.Second)
	if want := (event{"ratelimit.deleted", "pay", start.UnixMilli()}); got != want {
		t.Errorf("event after Delete = %+v, want %+v", got, want)
	}
}

type event struct {
	Type string `json:"type"`
	Name string `json:"name"`
	AtMS int64  `json:"at_ms"`
}

// TestGetWritesNothing checks that looking at a bucket neither creates it
// nor changes it.
func TestGetWritesNothing(t *testing.T) {
	b := newMiniBackend(t)
	ctx := context.Background()
	b.put(t, "lim", Config{Capacity: 10, RefillPerSecond: 1})
	bucket := keys("lim", "k")[1]
	if _, err := b.svc.Get(ctx, "lim", ptr("k")); err != nil {
		t.Fatal(err)
	}
	if b.mini.M.Exists(bucket) {
		t.Fatalf("Get created bucket %q", bucket)
	}
	if _, err := b.take("lim", TakeRequest{Tokens: 3, Key: "k"}); err != nil {
		t.Fatal(err)
	}
	b.advance(1500 * time.Millisecond)
	before := b.mini.M.Dump()
	ttl := b.mini.M.TTL(bucket)
	l, err := b.svc.Get(ctx, "lim", ptr("k"))
	if err != nil || l.Key == nil || *l.Key != "k" || l.Tokens == nil || *l.Tokens != 8.5 {
		t.Fatalf("Get(key k) = %+v, %v; want key k, tokens 8.5", l, err)
	}
	if after := b.mini.M.Dump(); after != before || b.mini.M.TTL(bucket) != ttl {
		t.Errorf("Get changed the store:\n%s\nwant\n%s", after, before)
	}
}

// TestExpiry checks that a bucket is dropped when it is full again.
func TestExpiry(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		b := newMiniBackend(t)
		b.put(t, "lim", Config{Capacity: 10, RefillPerSecond: 1})
		res, err := b.take("lim", TakeRequest{Tokens: 4, Key: "k"})
		if err != nil {
			t.Fatal(err)
		}
		bucket := keys("lim", "k")[1]
		if got := b.mini.M.TTL(bucket); got != 4*time.Second || res.ResetMS != 4000 {
			t.Errorf("after Take(4): TTL = %v, ResetMS = %d; want 4s, 4000", got, res.ResetMS)
		}
		b.advance(3999 * time.Millisecond)
		if !b.mini.M.Exists(bucket) {
			t.Errorf("bucket gone 1ms before it is full")
		}
		b.advance(time.Millisecond)
		if b.mini.M.Exists(bucket) {
			t.Errorf("bucket still there when full")
		}
	})
	t.Run("redis", func(t *testing.T) {
		r := storetest.StartRedis(t)
		s := NewService(r.Open(t))
		ctx := context.Background()
		tests := []struct {
			cfg    Config
			tokens int64
		}{
			{Config{Capacity: 10, RefillPerSecond: 1}, 4},
			{Config{Capacity: MaxCapacity, RefillPerSecond: MinRefillPerSecond}, MaxCapacity}, // 31,710 years
		}
		for i, tt := range tests {
			name := fmt.Sprint("lim", i)
			if _, _, err := s.Put(ctx, name, tt.cfg); err != nil {
				t.Fatal(err)
			}
			res, err := s.Take(ctx, name, TakeRequest{Tokens: tt.tokens, Key: "k"})
			if err != nil || !res.Allowed {
				t.Fatalf("Take(%d) = %v, %v; want allowed", tt.tokens, res, err)
			}
			at := r.Do("PEXPIRETIME", keys(name, "k")[1])
			if want := ":" + strconv.FormatInt(res.Time.UnixMilli()+res.ResetMS, 10); at != want {
				t.Errorf("%+v: PEXPIRETIME after Take(%d) = %s, want %s", tt.cfg, tt.tokens, at, want)
			}
		}
	})
}

// TestKeys checks that every key, whatever bytes it holds, has a bucket of
// its own in the limit's hash tag.
func TestKeys(t *testing.T) {
	b := newMiniBackend(t)
	keyList := []string{
		"", "a", "A", "a:b", "a:b:", "{a}", "}{", "{", "a\nb", "a\r\n", "🙂", "=", "~", "~61", "=a", "k=a",
		"bw:{r:=other}:c", " ", "\x00", strings.Repeat("x", MaxKeyLen), strings.Repeat("é", MaxKeyLen/2),
	}
	b.put(t, "lim", Config{Capacity: 1, RefillPerSecond: MinRefillPerSecond})
	b.put(t, "other", Config{Capacity: 1, RefillPerSecond: MinRefillPerSecond})
	for _, key := range keyList {
		for _, name := range []string{"lim", "other"} {
			if got, err := b.take(name, TakeRequest{Tokens: 1, Key: key}); err != nil || !got.Allowed {
				t.Errorf("first Take(%q, key %q) = %v, %v; want allowed", name, key, got, err)
			}
		}
	}
	for _, key := range keyList {
		if got, err := b.take("lim", TakeRequest{Tokens: 1, Key: key}); err != nil || got.Allowed {
			t.Errorf("second Take(key %q) = %v, %v; want denied", key, got, err)
		}
	}
	tag := hashTag(configKeys("lim")[0])
	var buckets int
	for _, k := range b.mini.M.Keys() {
		if strings.HasPrefix(k, "bw:{r:=lim}:k") {
			buckets++
			if got := hashTag(k); got != tag {
				t.Errorf("bucket %q has hash tag %q, want %q", k, got, tag)
			}
		}
	}
	if buckets != len(keyList) {
		t.Errorf("%d buckets of lim in the store, want %d", buckets, len(keyList))
	}
}

// hashTag is the part of a key Redis Cluster hashes: the text between the
// first '{' and the next '}' when it is not empty, else the whole key.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

func TestBadInput(t *testing.T) {
	b := newMiniBackend(t)
	ctx := context.Background()
	b.put(t, "lim", Config{Capacity: 10, RefillPerSecond: 1})

	configs := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"zero capacity", Config{Capacity: 0, RefillPerSecond: 1}, "capacity"},
		{"negative capacity", Config{Capacity: -1, RefillPerSecond: 1}, "capacity"},
		{"capacity over 1e9", Config{Capacity: MaxCapacity + 1, RefillPerSecond: 1}, "capacity"},
		{"zero rate", Config{Capacity: 1, RefillPerSecond: 0}, "refill_per_second"},
		{"negative rate", Config{Capacity: 1, RefillPerSecond: -1}, "refill_per_second"},
		{"rate below the precision", Config{Capacity: 1, RefillPerSecond: 0.0004}, "refill_per_second"},
		{"rate over 1e9", Config{Capacity: 1, RefillPerSecond: 1e9 + 1}, "refill_per_second"},
		{"NaN rate", Config{Capacity: 1, RefillPerSecond: math.NaN()}, "refill_per_second"},
		{"infinite rate", Config{Capacity: 1, RefillPerSecond: math.Inf(1)}, "refill_per_second"},
		{"zero config", Config{}, "capacity"},
	}
	for _, tt := range configs {
		_, _, err := b.svc.Put(ctx, "new", tt.cfg)
		wantField(t, "Put("+tt.name+")", err, tt.field)
	}
	if _, err := b.svc.Get(ctx, "new", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after bad Puts = %v, want ErrNotFound", err)
	}

	takes := []struct {
		name  string
		limit string
		req   TakeRequest
		field string
	}{
		{"zero tokens", "lim", TakeRequest{Tokens: 0}, "tokens"},
		{"negative tokens", "lim", TakeRequest{Tokens: -5}, "tokens"},
		{"tokens over capacity", "lim", TakeRequest{Tokens: 11, Key: "k"}, "tokens"},
		{"tokens over the largest capacity", "lim", TakeRequest{Tokens: MaxCapacity + 1}, "tokens"},
		{"key over 256 bytes", "lim", TakeRequest{Tokens: 1, Key: strings.Repeat("x", MaxKeyLen+1)}, "key"},
		{"key of 2-byte runes over 256 bytes", "lim", TakeRequest{Tokens: 1, Key: strings.Repeat("é", MaxKeyLen/2) + "x"}, "key"},
		{"key not UTF-8", "lim", TakeRequest{Tokens: 1, Key: "a\xffb"}, "key"},
		{"bad name", "no spaces", TakeRequest{Tokens: 1}, "name"},
		{"empty name", "", TakeRequest{Tokens: 1}, "name"},
		{"name with a brace", "a{b}", TakeRequest{Tokens: 1}, "name"},
	}
	for _, tt := range takes {
		_, err := b.svc.Take(ctx, tt.limit, tt.req)
		wantField(t, "Take("+tt.name+")", err, tt.field)
	}
	if b.mini.M.Exists(keys("lim", "k")[1]) {
		t.Errorf("a take over capacity wrote its bucket")
	}
	_, err := b.svc.Get(ctx, "lim", ptr("a\xffb"))
	wantField(t, "Get(key not UTF-8)", err, "key")
	_, err = b.svc.Get(ctx, "bad name", nil)
	wantField(t, "Get(bad name)", err, "name")
	wantField(t, "Delete(bad name)", b.svc.Delete(ctx, "bad name"), "name")
	if _, err := b.svc.Take(ctx, "missing", TakeRequest{Tokens: 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Take(missing) = %v, want ErrNotFound", err)
	}
}

// TestOneRoundTrip checks that a take, whatever its answer, is one request
// to the store (once the store has the script: the first EVALSHA of a
// fresh store answers NOSCRIPT and is followed by an EVAL).
func TestOneRoundTrip(t *testing.T) {
	b := newMiniBackend(t)
	b.put(t, "lim", Config{Capacity: 2, RefillPerSecond: 1})
	b.take("warm-up", TakeRequest{Tokens: 1})
	tests := []struct {
		name string
		req  TakeRequest
	}{
		{"granted", TakeRequest{Tokens: 2}},
		{"denied", TakeRequest{Tokens: 2}},
		{"partial", TakeRequest{Tokens: 2, Partial: true}},
		{"over capacity", TakeRequest{Tokens: 3}},
		{"new key", TakeRequest{Tokens: 1, Key: "fresh"}},
	}
	for _, tt := range tests {
		before := b.mini.Store.RoundTrips()
		b.take("lim", tt.req)
		if got := b.mini.Store.RoundTrips() - before; got != 1 {
			t.Errorf("Take(%s) made %d round trips, want 1", tt.name, got)
		}
	}
	before := b.mini.Store.RoundTrips()
	b.take("missing", TakeRequest{Tokens: 1})
	if got := b.mini.Store.RoundTrips() - before; got != 1 {
		t.Errorf("Take(missing limit) made %d round trips, want 1", got)
	}
}
