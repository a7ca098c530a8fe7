package storetest

import (
	"net"
	"testing"
)

// TestHoldPort: a held port refuses connections like a stopped server,
// and the kernel does not hand it to a server asking for a free port.
func TestHoldPort(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	HoldPort(t, addr)
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("a held port accepted a connection")
	}
	for range 2000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := l.Addr().String()
		l.Close()
		if got == addr {
			t.Fatalf("the kernel handed out the held port %s", addr)
		}
	}
}
