package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// Proxy overhead and decision latency, side by side in one run against a
// real control plane over a real redis-server:
//
//	proxy/direct   GET to a local upstream, straight
//	proxy/agent    the same GET through the agent's guarded proxy
//	decision/*     the agent's decision endpoints from localhost
//
// Each reports p50-us and p99-us of its requests; the agent's added
// latency is proxy/agent minus proxy/direct.
//
//	go test -run '^$' -bench . -benchmem ./cmd/agent/
func BenchmarkAgent(b *testing.B) {
	r := storetest.StartRedis(b)
	cp := startControlPlaneB(b, r)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer upstream.Close()
	cpDo(b, cp, "PUT", "/v1/breakers/up", `{}`)
	cpDo(b, cp, "PUT", "/v1/ratelimits/lim", `{"capacity":1000000000,"refill_per_second":1000000}`)
	agent := startAgentB(b, "--controlplane", cp, "--route", "up="+upstream.URL)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

	cases := []struct {
		name, method, url, body string
	}{
		{"proxy/direct", "GET", upstream.URL + "/x", ""},
		{"proxy/agent", "GET", agent + "/up/x", ""},
		{"decision/acquire", "POST", agent + "/v1/breakers/up/acquire", ""},
		{"decision/outcomes", "POST", agent + "/v1/breakers/up/outcomes", `{"outcomes":[{"success":true,"duration_ms":3}]}`},
		{"decision/take", "POST", agent + "/v1/ratelimits/lim/take", `{"key":"tenant-1"}`},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			call := func() {
				req, _ := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Fatalf("%s %s = %d", c.method, c.url, res.StatusCode)
				}
			}
			for range 200 {
				call() // warm connections and the SDK's cache
			}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				call()
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
		})
	}
}

// startControlPlaneB and friends are the test helpers for benchmarks.
func startControlPlaneB(b *testing.B, r *storetest.Redis) string {
	b.Helper()
	cp := startControlPlane(b, r.Open(b))
	return cp.srv.URL
}

func cpDo(b *testing.B, url, method, path, body string) {
	b.Helper()
	req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode >= 300 {
		b.Fatalf("%s %s: %v %v", method, path, err, res)
	}
	res.Body.Close()
}

func startAgentB(b *testing.B, args ...string) string {
	b.Helper()
	return startAgent(b, args...)
}
