package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command whose name holds a space and a parenthesis: fields count
	// from after the last one.
	const line = "4242 (bench (x) y) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 31 0 0 20 0 9 0 1000 0 0"
	got, ok := parseStat(line)
	if want := 2810 * time.Millisecond; !ok || got != want {
		t.Errorf("parseStat(%q) = %v, %v; want %v, true", line, got, ok, want)
	}
	for _, bad := range []string{"", "4242 bench S 1", "4242 (bench) S 1 2 3"} {
		if got, ok := parseStat(bad); ok {
			t.Errorf("parseStat(%q) = %v, true; want false", bad, got)
		}
	}
}

func TestCPUTimeOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	before, ok := cpuTime(os.Getpid())
	if !ok {
		t.Fatal("cpuTime(own pid) = false, want the process's time")
	}
	// Burn processor time until the count moves (it moves in ticks).
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
		if after, _ := cpuTime(os.Getpid()); after > before {
			return
		}
	}
	t.Errorf("cpuTime did not grow while the process ran for 10s (%d)", x)
}
