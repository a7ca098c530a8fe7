package main

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
)

// TestPProf: profiles are off unless --pprof names a loopback address, and
// then served there only, never on the API's address.
func TestPProf(t *testing.T) {
	off := start(t, []string{"--listen", "127.0.0.1:0"}, nil)
	if off.logged("serving profiles") {
		t.Error("profiles served without --pprof")
	}
	if code, _ := request(t, "GET", off.URL+"/debug/pprof/", "", ""); code != 404 {
		t.Errorf("GET /debug/pprof/ on the API without --pprof = %d, want 404", code)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	on := start(t, []string{"--listen", "127.0.0.1:0", "--pprof", addr}, nil)
	if code, body := request(t, "GET", "http://"+addr+"/debug/pprof/", "", ""); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/ on --pprof %s = %d, want 200 with the profiles listed", addr, code)
	}
	if code, _ := request(t, "GET", on.URL+"/debug/pprof/", "", ""); code != 404 {
		t.Errorf("GET /debug/pprof/ on the API with --pprof = %d, want 404: profiles are apart from the API", code)
	}

	err = run(context.Background(), []string{"--pprof", "0.0.0.0:6060"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("run(--pprof 0.0.0.0:6060) = %v, want an error saying loopback only", err)
	}
}
