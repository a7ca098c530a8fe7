package httpapi

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// ClientHeader names the SDK client (one per process) that sends a take;
// ClientsHeader answers with how many clients took from that limit lately,
// fleet-wide. A client uses it to hold a fair share of the limit while no
// control plane answers.
const (
	ClientHeader  = contract.ClientHeader
	ClientsHeader = contract.ClientsHeader
)

// clientCounter records which clients took from a limit and counts them
// fleet-wide; *ratelimit.Service is one.
type clientCounter interface {
	NoteClients(ctx context.Context, name string, ids []string) (int64, error)
}

// clientTracker gathers the client ids this replica sees per limit, and
// every flush interval writes them to the store and reads back the fleet's
// count: one store call per limit and interval, not per take.
type clientTracker struct {
	limits clientCounter
	every  time.Duration

	mu     sync.Mutex
	seen   map[string]map[string]struct{} // limit -> ids since the last flush
	counts map[string]int64               // limit -> fleet-wide count at the last flush
	stop   chan struct{}
	done   chan struct{}
}

// maxTracked bounds the ids one limit gathers between flushes.
const maxTracked = 10_000

func newClientTracker(limits clientCounter, every time.Duration) *clientTracker {
	ct := &clientTracker{limits: limits, every: every, seen: map[string]map[string]struct{}{},
		counts: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go ct.run()
	return ct
}

// note records a take by client id on limit and returns the count to
// answer with: the fleet's at the last flush, or at least this client.
func (ct *clientTracker) note(limit, id string) int64 {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ids := ct.seen[limit]
	if ids == nil {
		ids = map[string]struct{}{}
		ct.seen[limit] = ids
	}
	if len(ids) < maxTracked {
		ids[id] = struct{}{}
	}
	return max(ct.counts[limit], int64(len(ids)))
}

func (ct *clientTracker) run() {
	defer close(ct.done)
	t := time.NewTicker(ct.every)
	defer t.Stop()
	for {
		select {
		case <-ct.stop:
			return
		case <-t.C:
			ct.flush()
		}
	}
}

func (ct *clientTracker) flush() {
	ct.mu.Lock()
	seen := ct.seen
	ct.seen = map[string]map[string]struct{}{}
	ct.mu.Unlock()
	for limit, set := range seen {
		ids := make([]string, 0, len(set))
		for id := range set {
			ids = append(ids, id)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n, err := ct.limits.NoteClients(ctx, limit, ids)
		cancel()
		if err != nil {
			continue // the count stays as it was; the next flush tries again
		}
		ct.mu.Lock()
		ct.counts[limit] = n
		ct.mu.Unlock()
	}
}

func (ct *clientTracker) close() {
	close(ct.stop)
	<-ct.done
}

func formatCount(n int64) string { return strconv.FormatInt(n, 10) }
