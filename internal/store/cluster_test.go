package store_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

var incrScript = store.NewScript("test.incr", "return redis.call('INCR', KEYS[1])")

// TestClusterMovedSlot: a slot moved to another node after the client
// loaded the slot map is refused with MOVED, which runs nothing; the store
// sends the script again to the new owner, once.
func TestClusterMovedSlot(t *testing.T) {
	c := storetest.StartCluster(t, 3)
	st := storetest.OpenURL(t, c.URL(), 5*time.Second)
	ctx := context.Background()
	// Load the slot map.
	if _, err := st.Run(ctx, incrScript, []string{"bw:{warm}:n"}); err != nil {
		t.Fatal(err)
	}
	key := "bw:{moved}:n"
	slot, err := strconv.Atoi(strings.TrimPrefix(c.Nodes[0].Do("CLUSTER", "KEYSLOT", key), ":"))
	if err != nil {
		t.Fatalf("CLUSTER KEYSLOT: %v", err)
	}
	owner := min(slot/(16384/len(c.Nodes)), len(c.Nodes)-1) // as StartCluster splits the slots
	target := c.Nodes[(owner+1)%len(c.Nodes)]
	id := target.Bulk("CLUSTER", "MYID")
	for _, n := range []*storetest.Redis{target, c.Nodes[owner], c.Nodes[(owner+2)%len(c.Nodes)]} {
		if got := n.Do("CLUSTER", "SETSLOT", fmt.Sprint(slot), "NODE", id); got != "+OK" {
			t.Fatalf("CLUSTER SETSLOT %d NODE %s on %s = %q", slot, id, n.Addr, got)
		}
	}
	v, err := st.Run(ctx, incrScript, []string{key})
	if err != nil {
		t.Fatalf("Run after the slot moved = %v, want it sent again to the new owner", err)
	}
	if v != int64(1) {
		t.Errorf("Run after the slot moved = %v, want 1", v)
	}
	if got := target.Bulk("GET", key); got != "1" {
		t.Errorf("GET %s on the new owner = %q, want 1: the script ran once", key, got)
	}
}
