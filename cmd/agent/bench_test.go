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
//	                    (SetURL, SetXForwarded, its own transport, pooled
//	                    copy buffers): the floor of a proxy built on
//	                    net/http
//	proxy/agent         the same GET through the agent's guarded proxy
//	proxy/interleaved   the four GETs above in turn, in one loop: their
//	                    p50s are the least moved by a machine's changing
//	                    load
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
		Transport:  &http.Transport{MaxIdleConnsPerHost: 16},
		BufferPool: new(benchBuffers),
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
			call := func() { benchCall(b, client, c.method, c.url, c.body) }
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

	// The four GETs of proxy/* in turn, each iteration starting with the
	// next: the load of a shared machine weighs on each of them alike.
	b.Run("proxy/interleaved", func(b *testing.B) {
		targets := []struct{ name, url string }{
			{"direct", upstream.URL + "/x"},
			{"tcprelay", "http://" + relay + "/x"},
			{"reverseproxy", bare.URL + "/x"},
			{"agent", agent + "/up/x"},
		}
		lat := make([][]time.Duration, len(targets))
		for range 200 {
			for _, t := range targets {
				benchCall(b, client, "GET", t.url, "")
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			for j := range targets {
				k := (i + j) % len(targets)
				start := time.Now()
				benchCall(b, client, "GET", targets[k].url, "")
				lat[k] = append(lat[k], time.Since(start))
			}
			i++
		}
		p50 := make([]float64, len(targets))
		for k, l := range lat {
			slices.Sort(l)
			p50[k] = micros(l[len(l)/2])
		}
		b.ReportMetric(p50[0], "direct-p50-us")
		for k := 1; k < len(targets); k++ {
			b.ReportMetric(p50[k]-p50[0], targets[k].name+"-added-p50-us")
		}
	})
}

// benchBuffers pools the bare ReverseProxy's 32 KiB copy buffers.
type benchBuffers struct{ p sync.Pool }

func (bb *benchBuffers) Get() []byte {
	if b, ok := bb.p.Get().(*[32 << 10]byte); ok {
		return b[:]
	}
	return make([]byte, 32<<10)
}

func (bb *benchBuffers) Put(b []byte) {
	if len(b) == 32<<10 {
		bb.p.Put((*[32 << 10]byte)(b))
	}
}

// benchCall sends one request and reads its answer, which must be 200.
func benchCall(b *testing.B, client *http.Client, method, url, body string) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, r)
	res, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		b.Errorf("%s %s = %d", method, url, res.StatusCode)
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
