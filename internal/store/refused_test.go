package store_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestAnswersAsSoonAsRedisDoes: while Redis is stopped every call fails at
// once with ErrUnavailable, however many there are, and the first call
// after Redis answers again succeeds. go-redis stops dialing for calls
// after as many refused dials in a row as its pool has connections, and
// dials again only once a second on its own: the store would answer up to
// a second late (see refusalFailsTheCall).
func TestAnswersAsSoonAsRedisDoes(t *testing.T) {
	ctx := context.Background()
	r := storetest.StartRedis(t)
	st := storetest.OpenURL(t, r.URL(), time.Second)
	storetest.WaitReady(t, st, 10*time.Second)

	r.Stop()
	// Ten times go-redis's default pool size on this machine.
	calls := 100 * runtime.GOMAXPROCS(0)
	for i := range calls {
		_, err := st.Run(ctx, oneScript, nil)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("call %d of %d with Redis stopped: %v, want ErrUnavailable", i+1, calls, err)
		}
	}
	r.Start()
	for i := range 3 {
		if _, err := st.Run(ctx, oneScript, nil); err != nil {
			t.Fatalf("call %d after Redis answers again: %v, want none", i+1, err)
		}
	}
}
