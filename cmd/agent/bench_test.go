package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// Proxy overhead and decision latency, side by side in one run against a
// real control plane over a real redis-server:
//
//	proxy/direct        GET to a local upstream, straight
//	proxy/tcprelay      the same GET through a relay that copies bytes
//	                    between two TCP connections and parses nothing:
//	                    the floor of any proxy that is a hop of its own
//	proxy/reverseproxy  the same GET through a bare httputil.ReverseProxy
//	                    (SetURL, SetXForwarded, its own transport): the
//	                    floor of a proxy built on net/http
//	proxy/agent         the same GET through the agent's guarded proxy
//	parallel/*          direct, reverseproxy and agent again, from 8
//	                    callers per core at once
//	decision/*          the agent's decision endpoints from localhost
//
// Each reports p50-us and p99-us of its requests; the proxies also report
// added-p50-us, their p50 minus direct's of their group in the same run
// (the median of direct's p50s when it ran more than once). Every server
// runs in the benchmark's process, so allocs/op counts the caller's and
// the upstream's allocations too: proxy/direct's are theirs alone.
//
//	go test -run '^$' -bench 'Agent/proxy' -benchmem -count 5 ./cmd/agent/
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
	upURL, _ := url.Parse(upstream.URL)
	bare := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upURL)
			pr.SetXForwarded()
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 16},
	})
	defer bare.Close()
	relay := startTCPRelay(b, upURL.Host)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	cases := []struct {
		name, method, url, body string
	}{
		{"proxy/direct", "GET", upstream.URL + "/x", ""},
		{"proxy/tcprelay", "GET", "http://" + relay + "/x", ""},
		{"proxy/reverseproxy", "GET", bare.URL + "/x", ""},
		{"proxy/agent", "GET", agent + "/up/x", ""},
		{"parallel/direct", "GET", upstream.URL + "/x", ""},
		{"parallel/reverseproxy", "GET", bare.URL + "/x", ""},
		{"parallel/agent", "GET", agent + "/up/x", ""},
		{"decision/acquire", "POST", agent + "/v1/breakers/up/acquire", ""},
		{"decision/outcomes", "POST", agent + "/v1/breakers/up/outcomes", `{"outcomes":[{"success":true,"duration_ms":3}]}`},
		{"decision/take", "POST", agent + "/v1/ratelimits/lim/take", `{"key":"tenant-1"}`},
	}
	directP50s := map[string][]float64{} // each group's direct p50s in µs, one per run
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			call := func() {
				var body io.Reader
				if c.body != "" {
					body = strings.NewReader(c.body)
				}
				req, _ := http.NewRequest(c.method, c.url, body)
				res, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Errorf("%s %s = %d", c.method, c.url, res.StatusCode)
				}
			}
			for range 200 {
				call() // warm connections and the SDK's cache
			}
			group, kind, _ := strings.Cut(c.name, "/")
			var lat []time.Duration
			b.ReportAllocs()
			if group == "parallel" {
				// 8 callers per core, each with requests of its own in
				// flight: the upstream's connections must be reused.
				var mu sync.Mutex
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					var mine []time.Duration
					for pb.Next() {
						start := time.Now()
						call()
						mine = append(mine, time.Since(start))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
			} else {
				for b.Loop() {
					start := time.Now()
					call()
					lat = append(lat, time.Since(start))
				}
			}
			slices.Sort(lat)
			p50 := micros(lat[len(lat)/2])
			b.ReportMetric(p50, "p50-us")
			b.ReportMetric(micros(lat[len(lat)*99/100]), "p99-us")
			switch d := directP50s[group]; {
			case kind == "direct":
				directP50s[group] = append(d, p50)
			case len(d) > 0:
				d = slices.Clone(d)
				slices.Sort(d)
				b.ReportMetric(p50-d[len(d)/2], "added-p50-us")
			}
		})
	}
}

// startTCPRelay serves a relay on loopback that copies bytes between each
// connection it accepts and a new connection to upstream, both ways, and
// returns its address.
func startTCPRelay(b *testing.B, upstream string) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// micros is d in microseconds, to a tenth.
func micros(d time.Duration) float64 {
	return float64(d.Round(100*time.Nanosecond)) / float64(time.Microsecond)
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
