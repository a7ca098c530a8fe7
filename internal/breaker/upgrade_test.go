package breaker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// rawStore is a store a test writes to with raw HSET and RPUSH, as an
// earlier version of the scripts would have left it.
type rawStore struct {
	name string
	st   *store.Store
	now  time.Time
	do   func(args ...string)
}

// rawStores are a miniredis and a real redis-server.
func rawStores(t *testing.T) []rawStore {
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	m := storetest.NewMini(t, start)
	r := storetest.StartRedis(t)
	return []rawStore{
		{"miniredis", m.Store, start, func(args ...string) {
			switch args[0] {
			case "HSET":
				for i := 2; i+1 < len(args); i += 2 {
					m.M.HSet(args[1], args[i], args[i+1])
				}
			case "RPUSH":
				m.M.Push(args[1], args[2:]...)
			}
		}},
		{"redis", r.Open(t), time.Now(), func(args ...string) { r.Do(args...) }},
	}
}

// earlierConfig is the config the breakers stored by earlier versions in
// these tests were written with.
var earlierConfig = Config{Window: Window{Type: WindowTime, Size: 60}, MinimumCalls: 5, FailureRateThreshold: 50,
	SlowCallDurationMS: 60000, SlowCallRateThreshold: 100, OpenDurationMS: 30000, HalfOpenMaxCalls: 1,
	ProbeTimeoutMS: 10000, CacheTTLMS: 1000}

// TestStoredByEarlierVersion: a breaker stored by a version that kept every
// config and window field apart (c_wt .. c_ttl, calls, fails, slows, consec
// in the hash, every segment in W) keeps its config and window when this
// version reads it, and its next report counts on from there.
func TestStoredByEarlierVersion(t *testing.T) {
	for _, c := range rawStores(t) {
		t.Run(c.name, func(t *testing.T) {
			ks := keys("old")
			sec := c.now.Unix()
			at := fmt.Sprint(c.now.UnixMilli())
			c.do("HSET", ks[0], "st", "closed", "since", at, "until", "0", "gen", "3", "seq", "0", "ho_ok", "0",
				"ov", "", "ov_reason", "", "ov_by", "", "ov_at", "0", "ov_exp", "0", "created", at, "tr:closed:open", "1",
				"c_wt", "time", "c_ws", "60", "c_min", "5", "c_frt", "50", "c_slow", "60000", "c_srt", "100",
				"c_cf", "0", "c_open", "30000", "c_hom", "1", "c_pto", "10000", "c_ttl", "1000",
				"calls", "3", "fails", "2", "slows", "0", "consec", "2")
			c.do("RPUSH", ks[1], fmt.Sprintf("%d 2 1 0", sec-1), fmt.Sprintf("%d 1 1 0", sec))
			s := NewService(c.st)
			ctx := context.Background()

			b, err := s.Get(ctx, "old")
			if err != nil {
				t.Fatalf("Get(old) = %v", err)
			}
			if diff := cmp.Diff(earlierConfig, b.Config); diff != "" {
				t.Errorf("Get(old).Config (-want +got):\n%s", diff)
			}
			if b.Stats.Calls != 3 || b.Stats.Failures != 2 || b.Generation != 3 {
				t.Errorf("Get(old) = %d calls, %d failures, generation %d; want 3, 2, 3", b.Stats.Calls, b.Stats.Failures, b.Generation)
			}
			// One failure: 4 calls, under minimum_calls. A second: 5 calls,
			// 4 failed, and the breaker opens.
			d, err := s.Report(ctx, "old", []Outcome{{Success: false, Count: 1, Generation: -1}})
			if err != nil || d.State != StateClosed {
				t.Fatalf("Report(old, failure) = %+v, %v; want closed", d, err)
			}
			d, err = s.Report(ctx, "old", []Outcome{{Success: false, Count: 1, Generation: -1}})
			if err != nil || d.State != StateOpen {
				t.Fatalf("Report(old, second failure) = %+v, %v; want open: the window kept its 3 calls", d, err)
			}
		})
	}
}

// TestStoredBeforeSlowStart: a breaker stored in the packed layout by a
// version before slow start and the retry budget (a cfg of eleven
// words, a win of five numbers, no ss and no lent fields, window segments of
// four numbers) reads as slow start off and retry budget off, keeps its
// window, and takes retries and a new config from there.
func TestStoredBeforeSlowStart(t *testing.T) {
	for _, c := range rawStores(t) {
		t.Run(c.name, func(t *testing.T) {
			ks := keys("packed")
			sec := c.now.Unix()
			at := fmt.Sprint(c.now.UnixMilli())
			c.do("HSET", ks[0], "st", "closed", "since", at, "until", "0", "gen", "3", "seq", "0", "ho_ok", "0",
				"ov", "", "ov_reason", "", "ov_by", "", "ov_at", "0", "ov_exp", "0", "created", at, "cv", "2",
				"cfg", "time 60 5 50 60000 100 0 30000 1 10000 1000",
				"win", fmt.Sprintf("3 2 0 2 %d", sec-1),
				"tail", fmt.Sprintf("%d 1 1 0", sec))
			c.do("RPUSH", ks[1], fmt.Sprintf("%d 2 1 0", sec-1))
			s := NewService(c.st)
			ctx := context.Background()

			b, err := s.Get(ctx, "packed")
			if err != nil {
				t.Fatalf("Get(packed) = %v", err)
			}
			if diff := cmp.Diff(earlierConfig, b.Config); diff != "" {
				t.Errorf("Get(packed).Config (-want +got):\n%s", diff)
			}
			if b.Stats.Calls != 3 || b.Stats.Retries != 0 || b.AdmitPercent != 100 || b.SlowStartUntil != nil {
				t.Errorf("Get(packed) = %d calls, %d retries, admit_percent %d, slow_start_until %v; want 3, 0, 100, none",
					b.Stats.Calls, b.Stats.Retries, b.AdmitPercent, b.SlowStartUntil)
			}
			d, err := s.Acquire(ctx, "packed")
			if err != nil || !d.Allowed || d.AdmitPercent != 100 || d.RetryAllowance != nil {
				t.Errorf("Acquire(packed) = %+v, %v; want allowed, admit_percent 100, no retry allowance", d, err)
			}
			d, err = s.Report(ctx, "packed", []Outcome{{Success: true, Count: 1, Retries: 1, Generation: -1}})
			if err != nil || d.State != StateClosed || d.RetryAllowance != nil {
				t.Fatalf("Report(packed, a retry) = %+v, %v; want closed, no retry allowance (no budget)", d, err)
			}
			if b, _ = s.Get(ctx, "packed"); b.Stats.Calls != 4 || b.Stats.Retries != 1 {
				t.Errorf("Get(packed) after a retry = %d calls, %d retries; want 4, 1", b.Stats.Calls, b.Stats.Retries)
			}
			// A new config with a budget lends from the window kept:
			// 50% of 4 calls.
			budget := earlierConfig
			budget.RetryBudgetPercent = 50
			if b, _, err = s.Put(ctx, "packed", budget); err != nil || b.ConfigVersion != 3 || b.Stats.Calls != 4 {
				t.Fatalf("Put(packed, budget) = %+v, %v; want version 3 and the 4 calls kept", b, err)
			}
			d, err = s.Report(ctx, "packed", []Outcome{{Success: true, Count: 1, Generation: -1}})
			if err != nil || d.RetryAllowance == nil || *d.RetryAllowance != 1 {
				t.Errorf("Report(packed) with a budget = %+v, %v; want a retry allowance of 1 (50%% of 5, less the retry in the window, shared by 1 of 5 calls)", d, err)
			}
		})
	}
}

// TestWrittenInEarlierLayout: a breaker that uses neither slow start nor
// the retry budget is written in the packed layout of the version before
// them (a cfg of eleven words, a win of five numbers), which that version's
// scripts can still read during a rolling upgrade; setting either field,
// or reporting retries, writes the longer form.
func TestWrittenInEarlierLayout(t *testing.T) {
	m := storetest.NewMini(t, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	s := NewService(m.Store)
	ctx := context.Background()
	ks := keys("plain")
	numbers := func(f string) int {
		t.Helper()
		return len(strings.Fields(m.M.HGet(ks[0], f)))
	}
	cfg := DefaultConfig()
	if _, _, err := s.Put(ctx, "plain", cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Report(ctx, "plain", []Outcome{{Success: false, Count: 3, Generation: -1}}); err != nil {
		t.Fatal(err)
	}
	if c, w := numbers("cfg"), numbers("win"); c != 11 || w != 5 {
		t.Errorf("cfg of %d words, win of %d numbers; want 11 (the window type and ten numbers) and 5", c, w)
	}
	if _, err := s.Report(ctx, "plain", []Outcome{{Success: false, Count: 3, Retries: 1, Generation: -1}}); err != nil {
		t.Fatal(err)
	}
	if w := numbers("win"); w != 6 {
		t.Errorf("win after a retry: %d numbers, want 6", w)
	}
	cfg.SlowStartMS = 1000
	if _, _, err := s.Put(ctx, "plain", cfg); err != nil {
		t.Fatal(err)
	}
	if c := numbers("cfg"); c != 14 {
		t.Errorf("cfg with a slow start: %d words, want 14", c)
	}
}
