package main

import (
	"strings"
	"testing"
	"time"
)

const wrkReport = `Running 5s test @ http://127.0.0.1:40123/v1/ratelimits/bench/take
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.21ms    4.02ms  61.31ms   91.20%
    Req/Sec     8.12k     1.01k   10.20k    70.00%
  Latency Distribution
     50%    2.50ms
     75%    3.10ms
     90%    5.00ms
     99%   20.42ms
  80843 requests in 5.00s, 15.12MB read
Requests/sec:  16168.60
Transfer/sec:      3.02MB
`

func TestParseWrk(t *testing.T) {
	got, err := parseWrk(wrkReport)
	if err != nil {
		t.Fatalf("parseWrk() = %v", err)
	}
	want := result{rps: 16168.60, requests: 80843, p50: 2500 * time.Microsecond, p99: 20420 * time.Microsecond}
	if got != want {
		t.Errorf("parseWrk() = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"  Non-2xx or 3xx responses: 12\n", "  Socket errors: connect 0, read 3, write 0, timeout 0\n"} {
		if _, err := parseWrk(strings.Replace(wrkReport, "Requests/sec:", bad+"Requests/sec:", 1)); err == nil {
			t.Errorf("parseWrk(report with %q) = nil error, want one: a figure made of errors is no figure", strings.TrimSpace(bad))
		}
	}
	if _, err := parseWrk("wrk: connection refused\n"); err == nil {
		t.Error("parseWrk(no report) = nil error, want one")
	}
}
