package store

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestClusterClientSendsOnce: the Cluster client is built so that go-redis
// sends no command twice. With MaxRedirects above zero a ClusterClient
// re-sends a command after a lost connection or a read timeout, when the
// script may have run (see newClient).
func TestClusterClientSendsOnce(t *testing.T) {
	rdb, _, err := newClient("redis+cluster://127.0.0.1:1", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	opt := rdb.(*redis.ClusterClient).Options()
	if opt.MaxRedirects != 0 || opt.MaxRetries != -1 {
		t.Errorf("cluster options MaxRedirects = %d, MaxRetries = %d; want 0 (no re-send) and -1", opt.MaxRedirects, opt.MaxRetries)
	}
}

// TestClientsDialOnce: every client the store builds dials a refused
// address once, so a stopped Redis is a 503 at once rather than after
// go-redis's dial retries (see dialOnce).
func TestClientsDialOnce(t *testing.T) {
	for _, url := range []string{"redis://127.0.0.1:1", "redis+sentinel://127.0.0.1:1?master_name=m", "redis+cluster://127.0.0.1:1"} {
		rdb, _, err := newClient(url, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		switch c := rdb.(type) {
		case *redis.Client:
			n = c.Options().DialerRetries
		case *redis.ClusterClient:
			n = c.Options().DialerRetries
		default:
			t.Fatalf("newClient(%q) built a %T", url, rdb)
		}
		rdb.Close()
		if n != 1 {
			t.Errorf("newClient(%q): DialerRetries = %d, want 1", url, n)
		}
	}
}
