package breaker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestStoredByEarlierVersion: a breaker stored by a version that kept every
// config and window field apart (c_wt .. c_ttl, calls, fails, slows, consec
// in the hash, every segment in W) keeps its config and window when this
// version reads it, and its next report counts on from there.
func TestStoredByEarlierVersion(t *testing.T) {
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	m := storetest.NewMini(t, start)
	r := storetest.StartRedis(t)
	for _, c := range []struct {
		name string
		st   *store.Store
		now  time.Time
		do   func(args ...string)
	}{
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
	} {
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
			want := Config{Window: Window{Type: WindowTime, Size: 60}, MinimumCalls: 5, FailureRateThreshold: 50,
				SlowCallDurationMS: 60000, SlowCallRateThreshold: 100, OpenDurationMS: 30000, HalfOpenMaxCalls: 1,
				ProbeTimeoutMS: 10000, CacheTTLMS: 1000}
			if diff := cmp.Diff(want, b.Config); diff != "" {
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
