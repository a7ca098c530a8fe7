package ratelimit

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestAccuracyAcrossReplicas has two Services, as two control-plane
// replicas would, over one real Redis, and 16 goroutines taking one token at
// a time for at least 3 seconds from a bucket of capacity 20 refilled at 100
// tokens a second. The test measures time by the store's clock as each
// take reports it (TakeResult.Time), not by when the test's goroutines run,
// so what it asserts does not depend on how the machine schedules them:
//
//   - what was granted never exceeds what the bucket can give between the
//     first take and the last: capacity + rate x elapsed;
//   - what was granted falls short of that by no more than the tokens the
//     bucket may have lost by overflowing while no taker asked (a full
//     bucket refills nothing; a starved machine leaves gaps between takes)
//     and the tokens left at the end, within 1%.
func TestAccuracyAcrossReplicas(t *testing.T) {
	const (
		capacity = 20
		rate     = 100 // tokens a second
		takers   = 16
		run      = 3 * time.Second
		// The bucket must have been found empty this often for the run
		// to show anything; a starved machine runs longer to get there.
		minDenied = 50
		giveUp    = 60 * time.Second
	)
	r := storetest.StartRedis(t)
	replicas := []*Service{NewService(r.Open(t)), NewService(r.Open(t))}
	ctx := context.Background()
	if _, _, err := replicas[0].Put(ctx, "acc", Config{Capacity: capacity, RefillPerSecond: rate}); err != nil {
		t.Fatal(err)
	}

	type take struct {
		at        int64 // the store's clock, Unix ms
		granted   int64
		remaining int64
	}
	var denied atomic.Int64
	results := make([][]take, takers)
	var wg sync.WaitGroup
	start := time.Now()
	more := func() bool {
		since := time.Since(start)
		return since < run || (denied.Load() < minDenied && since < giveUp)
	}
	for i := range takers {
		svc := replicas[i%len(replicas)]
		wg.Go(func() {
			for more() {
				res, err := svc.Take(ctx, "acc", TakeRequest{Tokens: 1})
				if err != nil {
					t.Errorf("Take: %v", err)
					return
				}
				results[i] = append(results[i], take{res.Time.UnixMilli(), res.Granted, res.Remaining})
				if !res.Allowed {
					denied.Add(1)
				}
			}
		})
	}
	wg.Wait()
	var all []take
	for _, rs := range results {
		all = append(all, rs...)
	}
	if denied.Load() < minDenied {
		t.Fatalf("%d of %d takes denied in %v: the bucket was hardly ever empty, so the test shows nothing", denied.Load(), len(all), giveUp)
	}
	slices.SortStableFunc(all, func(a, b take) int { return cmp.Compare(a.at, b.at) })

	// Takes are stamped to the millisecond: a take stamped T ran in
	// [T, T+1ms), and Remaining is the whole tokens left, so the bucket held
	// less than Remaining+1 after it. Every estimate below errs towards
	// asking for fewer tokens, never more.
	const perMS = rate / 1000.0
	var granted int64
	lost := 0.0
	// The most the bucket may have held after the last take of each
	// millisecond: the most any take of it left, plus one for the whole
	// tokens, plus a millisecond's refill.
	heldAfter := 0.0
	for i, tk := range all {
		granted += tk.granted
		if i > 0 && tk.at > all[i-1].at {
			gapMS := float64(tk.at-all[i-1].at) + 1
			lost += max(0, heldAfter+perMS*gapMS-capacity)
			heldAfter = 0
		}
		heldAfter = max(heldAfter, float64(tk.remaining)+1+perMS)
	}
	first, last := all[0].at, all[len(all)-1].at
	elapsedMS := float64(last - first)
	upper := capacity + perMS*(elapsedMS+1)
	expect := capacity + perMS*(elapsedMS-1) - lost - (float64(all[len(all)-1].remaining) + 1)
	got := float64(granted)
	t.Logf("%d takes over %.3fs by Redis's clock: %d granted, %d denied; bound %.1f; at most %.1f lost to overflow while no taker asked; granted %.2f%% of the %.1f that were there to take",
		len(all), elapsedMS/1000, granted, denied.Load(), upper, lost, 100*got/expect, expect)
	if got > upper {
		t.Errorf("granted %v tokens in %.3fs, more than capacity + rate x elapsed = %.1f", got, elapsedMS/1000, upper)
	}
	if got < 0.99*expect {
		t.Errorf("granted %v tokens in %.3fs, less than 99%% of the %.1f there were to take (capacity + rate x elapsed - %.1f lost to overflow - what was left)", got, elapsedMS/1000, expect, lost)
	}
}
