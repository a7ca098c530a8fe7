package breaker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestReportsInOneRun: reports applied together in one outcomes run are
// answered each as if it had run alone, one after the other: its own
// state after it and its own count of ignored calls; a repeated key
// replays its first answer and applies nothing, also within the run; a
// key reused with other outcomes fails that report alone. On miniredis
// and on a real redis-server.
func TestReportsInOneRun(t *testing.T) {
	stores := map[string]*store.Store{
		"miniredis":    storetest.NewMini(t, time.Now()).Store,
		"redis-server": storetest.StartRedis(t).Open(t),
	}
	fail := func(n int64, gen int64) []Outcome {
		return []Outcome{{Success: false, DurationMS: 5, Count: n, Generation: gen}}
	}
	ok := func(n int64) []Outcome {
		return []Outcome{{Success: true, DurationMS: 5, Count: n, Generation: -1}}
	}
	type answer struct {
		state    string
		gen      int64
		ignored  int64
		replayed bool
		err      error
	}
	for name, st := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := NewService(st)
			cfg := DefaultConfig()
			cfg.ConsecutiveFailures = 3
			cfg.MinimumCalls = 1000
			b, _, err := s.Put(ctx, "one-run", cfg)
			if err != nil {
				t.Fatal(err)
			}
			g := b.Generation
			reports := []RunReport{
				{"k1", fail(2, -1)}, // 2 failures in a row
				{"", ok(1)},         // a success: none in a row
				{"k1", fail(2, -1)}, // a repeat: applies nothing (else 2 in a row)
				{"k2", fail(2, g)},  // 2 in a row: still closed (4 if k1 had applied twice)
				{"k1", fail(5, -1)}, // k1 with other outcomes: refused, applies nothing
				{"k3", fail(1, -1)}, // 3 in a row: open
				{"", ok(4)},         // open, no permit: ignored
				{"k4", fail(1, g)},  // reported against the closed generation: ignored
				{"k3", fail(1, -1)}, // a repeat of the report that tripped
			}
			want := []answer{
				{state: StateClosed, gen: g},
				{state: StateClosed, gen: g},
				{state: StateClosed, gen: g, replayed: true},
				{state: StateClosed, gen: g},
				{err: store.ErrKeyReused},
				{state: StateOpen, gen: g + 1},
				{state: StateOpen, gen: g + 1, ignored: 4},
				{state: StateOpen, gen: g + 1, ignored: 1},
				{state: StateOpen, gen: g + 1, replayed: true},
			}
			got, err := ReportRun(ctx, st, "one-run", reports)
			if err != nil {
				t.Fatal(err)
			}
			for i, a := range got {
				g := answer{state: a.Decision.State, gen: a.Decision.Generation, ignored: a.Decision.Ignored, replayed: a.Replayed, err: a.Err}
				if !errors.Is(g.err, want[i].err) || (g.err == nil && g != want[i]) {
					t.Errorf("report %d of one run (%+v) = %+v, want %+v", i, reports[i], g, want[i])
				}
			}
			// The trip is counted once, and the reports that were let
			// through later replay from their records.
			b, err = s.Get(ctx, "one-run")
			if err != nil {
				t.Fatal(err)
			}
			if n := transitions(b, StateClosed, StateOpen); n != 1 {
				t.Errorf("closed -> open transitions = %d, want 1", n)
			}
			d, replayed, err := s.ReportOnce(ctx, "one-run", "k2", fail(2, g))
			if err != nil || !replayed || d.State != StateClosed {
				t.Errorf("ReportOnce(k2) after the run = %+v, %v, %v; want the first answer (closed), replayed", d, replayed, err)
			}
		})
	}
}

func transitions(b Breaker, from, to string) int64 {
	for _, tr := range b.Transitions {
		if tr.From == from && tr.To == to {
			return tr.Count
		}
	}
	return 0
}
