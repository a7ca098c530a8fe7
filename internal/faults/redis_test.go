package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/client"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// TestR1RedisKilled kills Redis under load: the control plane does not
// panic, /readyz says 503 within 1 s, fail-open clients decide locally and
// fail-closed clients refuse with ErrUnavailable, and both are back on the
// control plane within 2 s of Redis answering again.
func TestR1RedisKilled(t *testing.T) {
	outage := pick(2*time.Second, 10*time.Second)
	// Append-only file: the restarted Redis has the configs it had.
	redis := storetest.StartRedisWith(t, "--appendonly", "yes", "--appendfsync", "always")
	cp := startPlane(t, redis.URL())
	mustCall(t, http.MethodPut, cp.URL+"/v1/breakers/r1", map[string]any{}, nil)
	mustCall(t, http.MethodPut, cp.URL+"/v1/ratelimits/r1", map[string]any{"capacity": 1000000000, "refill_per_second": 1000000}, nil)

	var openDeg, closedDeg degradations
	open, err := client.New(client.Config{Endpoints: []string{cp.URL}, FlushInterval: 50 * time.Millisecond,
		LeaseSize: 1, RequestTimeout: time.Second, Hooks: openDeg.hooks()})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	closed, err := client.New(client.Config{Endpoints: []string{cp.URL}, FlushInterval: 50 * time.Millisecond,
		LeaseSize: 1, RequestTimeout: time.Second, FailClosed: true, Hooks: closedDeg.hooks()})
	if err != nil {
		t.Fatal(err)
	}
	defer closed.Close()

	// Fail open: every call goes ahead, on the control plane's word or the
	// local breaker's. Fail closed: refusals during the outage match
	// ErrUnavailable, and nothing else fails.
	work := func(c *client.Client) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			if err := c.Breaker("r1").Do(ctx, func(context.Context) error { return nil }); err != nil {
				return err
			}
			return c.Limiter("r1").Take(ctx)
		}
	}
	var refusedMu sync.Mutex
	refused := 0
	openLoad := runLoad(4, 2*time.Millisecond, work(open), nil)
	closedLoad := runLoad(4, 2*time.Millisecond, work(closed), func(err error) bool {
		if errors.Is(err, client.ErrUnavailable) {
			refusedMu.Lock()
			refused++
			refusedMu.Unlock()
			return true
		}
		return false
	})
	time.Sleep(500 * time.Millisecond)

	killed := time.Now()
	redis.Stop()
	var notReady time.Duration = -1
	var badAnswers []string
	for time.Since(killed) < outage {
		if notReady < 0 && readyz(cp.URL, time.Second) == http.StatusServiceUnavailable {
			notReady = time.Since(killed)
		}
		if notReady >= 0 {
			// A decision needs the store: 503, as a problem document.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			code, h, err := call(ctx, http.MethodPost, cp.URL+"/v1/breakers/r1/acquire", map[string]any{}, nil, nil)
			cancel()
			if err != nil || code != http.StatusServiceUnavailable || h.Get("Content-Type") != "application/problem+json" {
				badAnswers = append(badAnswers, fmt.Sprintf("%d %q %v", code, h.Get("Content-Type"), err))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	wasDegraded := open.Degraded() && closed.Degraded()

	redis.Start()
	back := time.Now()
	var ready, openBack, closedBack time.Duration = -1, -1, -1
	for time.Since(back) < 5*time.Second && (ready < 0 || openBack < 0 || closedBack < 0) {
		if ready < 0 && readyz(cp.URL, time.Second) == http.StatusOK {
			ready = time.Since(back)
		}
		if openBack < 0 && !open.Degraded() {
			openBack = time.Since(back)
		}
		if closedBack < 0 && !closed.Degraded() {
			closedBack = time.Since(back)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	openLoad.stop()
	closedLoad.stop()

	result(t, "R1 Redis killed under load", "outage %v; /readyz 503 after %s; back on the control plane after Redis returned: /readyz %s, fail-open client %s, fail-closed client %s; fail-open errors %d of %d calls; fail-closed refusals %d, other errors %d of %d",
		outage, ms(notReady), ms(ready), ms(openBack), ms(closedBack),
		openLoad.errs.Load(), openLoad.ops.Load(), refused, closedLoad.errs.Load(), closedLoad.ops.Load())
	checkNoPanic(t, cp)
	if len(badAnswers) > 0 {
		t.Errorf("acquire with Redis down answered %q, want 503 application/problem+json", badAnswers)
	}
	if notReady < 0 || notReady > time.Second {
		t.Errorf("/readyz answered 503 after %s, want within 1 s of Redis dying", ms(notReady))
	}
	if !wasDegraded || openDeg.entered.Load() == 0 || closedDeg.entered.Load() == 0 {
		t.Errorf("clients degraded: fail-open %d times, fail-closed %d times; want both in degraded mode during the outage", openDeg.entered.Load(), closedDeg.entered.Load())
	}
	if openLoad.errs.Load() != 0 {
		t.Errorf("fail-open client: %s; want none", openLoad.errors())
	}
	if refused == 0 {
		t.Errorf("fail-closed client refused no call during the outage, want refusals matching ErrUnavailable")
	}
	if closedLoad.errs.Load() != 0 {
		t.Errorf("fail-closed client: %s; want only ErrUnavailable refusals", closedLoad.errors())
	}
	for what, d := range map[string]time.Duration{"/readyz": ready, "fail-open client": openBack, "fail-closed client": closedBack} {
		if d < 0 || d > 2*time.Second {
			t.Errorf("%s back after %s, want within 2 s of Redis returning", what, ms(d))
		}
	}
}

// TestR2RedisFrozen freezes Redis (SIGSTOP) under load, and in a second
// form delays every reply of Redis past the deadline: every API call
// answers within --store-timeout + 50 ms.
func TestR2RedisFrozen(t *testing.T) {
	t.Run("frozen", func(t *testing.T) { testR2(t, false) })
	t.Run("late", func(t *testing.T) { testR2(t, true) })
}

func testR2(t *testing.T, late bool) {
	const storeTimeout = 200 * time.Millisecond
	const bound = storeTimeout + 50*time.Millisecond
	frozenFor := pick(2*time.Second, 10*time.Second)
	redis := startRedis(t)
	url := redis.URL()
	var toRedis *link
	if late {
		toRedis = newToxi(t).link(t, "redis", redis.Addr)
		url = "redis://" + toRedis.Addr
	}
	cp := startPlane(t, url, "--store-timeout", storeTimeout.String())
	mustCall(t, http.MethodPut, cp.URL+"/v1/breakers/r2", map[string]any{}, nil)
	mustCall(t, http.MethodPut, cp.URL+"/v1/ratelimits/r2", map[string]any{"capacity": 1000000, "refill_per_second": 1000}, nil)

	type req struct {
		method, path string
		body         any
	}
	reqs := []req{
		{http.MethodPost, "/v1/breakers/r2/acquire", map[string]any{}},
		{http.MethodPost, "/v1/breakers/r2/outcomes", map[string]any{"outcomes": []map[string]any{{"success": true, "duration_ms": 1}}}},
		{http.MethodPost, "/v1/outcomes", map[string]any{"reports": []map[string]any{{"breaker": "r2", "outcomes": []map[string]any{{"success": true, "duration_ms": 1}}}}}},
		{http.MethodPost, "/v1/ratelimits/r2/take", map[string]any{"tokens": 1}},
		{http.MethodGet, "/v1/breakers/r2", nil},
		{http.MethodGet, "/v1/breakers", nil},
		{http.MethodGet, "/v1/ratelimits/r2?key=k", nil},
		{http.MethodGet, "/v1/ratelimits", nil},
		{http.MethodGet, "/v1/health", nil},
		{http.MethodGet, "/v1/audit", nil},
		{http.MethodPut, "/v1/breakers/r2", map[string]any{}},
		{http.MethodPost, "/v1/breakers/r2/reset", nil},
		{http.MethodGet, "/readyz", nil},
		{http.MethodGet, "/metrics", nil},
	}
	var mu sync.Mutex
	var lat []time.Duration
	worst := map[string]time.Duration{}
	var frozen sync.WaitGroup
	stop := make(chan struct{})
	for w := range 6 {
		frozen.Add(1)
		go func() {
			defer frozen.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := reqs[i%len(reqs)]
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				// From the request written to the answer's first byte: the
				// time the control plane took, not the test's own dialing
				// and queueing.
				var wrote, answered atomic.Int64 // set by the transport's goroutines
				ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
					WroteRequest:         func(httptrace.WroteRequestInfo) { wrote.Store(time.Now().UnixNano()) },
					GotFirstResponseByte: func() { answered.Store(time.Now().UnixNano()) },
				})
				start := time.Now()
				_, _, err := call(ctx, r.method, cp.URL+r.path, r.body, nil, nil)
				cancel()
				d := time.Duration(answered.Load() - wrote.Load())
				if err != nil || wrote.Load() == 0 || answered.Load() == 0 {
					d = time.Since(start) // no answer: the whole wait counts
				}
				mu.Lock()
				lat = append(lat, d)
				if d > worst[r.method+" "+r.path] {
					worst[r.method+" "+r.path] = d
				}
				mu.Unlock()
			}
		}()
	}
	// The control plane's own measure of each request (the HTTP metrics
	// middleware), to tell its time from the machine's scheduling delays
	// on the way to and from it.
	servedBefore, overBefore, routesBefore := handledOver(t, cp.URL)
	scenario := "R2 Redis frozen"
	if late {
		scenario = "R2 Redis replies 300 ms late"
		toRedis.add(t, toxic{Name: "late", Type: "latency", Attributes: map[string]any{"latency": 300}})
	} else {
		redis.Freeze()
	}
	time.Sleep(frozenFor)
	close(stop)
	frozen.Wait()
	if late {
		toRedis.remove(t, "late")
	} else {
		redis.Thaw()
	}

	servedAfter, overAfter, routesAfter := handledOver(t, cp.URL)
	for route, n := range routesAfter {
		if n -= routesBefore[route]; n > 0 {
			t.Logf("%s: handled by the control plane in over %s %d times", route, ms(bound), n)
		}
	}
	maxD, slowest := time.Duration(0), ""
	over := 0
	for _, d := range lat {
		if d > bound {
			over++
		}
	}
	for name, d := range worst {
		if d > maxD {
			maxD, slowest = d, name
		}
	}
	result(t, scenario, "%v, --store-timeout %v: %d API calls, p50 %s, p99 %s, max %s (%s); %d over %s; handled by the control plane in over %s: %d of %d",
		frozenFor, storeTimeout, len(lat), ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(maxD), slowest, over, ms(bound),
		ms(bound), overAfter-overBefore, servedAfter-servedBefore)
	checkNoPanic(t, cp)
	if over > 0 {
		for name, d := range worst {
			if d > bound {
				t.Errorf("%s answered after %s, want within --store-timeout + 50 ms = %s", name, ms(d), ms(bound))
			}
		}
	}
}

// TestR4ScriptFlush flushes Redis's script cache again and again under
// load: no error reaches a client, through the SDK or the API.
func TestR4ScriptFlush(t *testing.T) {
	dur := pick(2*time.Second, 10*time.Second)
	redis := startRedis(t)
	cp := startPlane(t, redis.URL())
	mustCall(t, http.MethodPut, cp.URL+"/v1/breakers/r4", map[string]any{"failure_rate_threshold": 100, "minimum_calls": 10000}, nil)
	mustCall(t, http.MethodPut, cp.URL+"/v1/ratelimits/r4", map[string]any{"capacity": 1000000000, "refill_per_second": 1000000}, nil)

	var deg degradations
	c, err := client.New(client.Config{Endpoints: []string{cp.URL}, FlushInterval: 20 * time.Millisecond,
		LeaseSize: 1, CacheTTL: 20 * time.Millisecond, Hooks: deg.hooks()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sdk := runLoad(4, time.Millisecond, func(ctx context.Context) error {
		if err := c.Breaker("r4").Do(ctx, func(context.Context) error { return nil }); err != nil {
			return err
		}
		return c.Limiter("r4").Take(ctx)
	}, nil)
	bases := []string{cp.URL}
	api := runLoad(4, time.Millisecond, func(ctx context.Context) error {
		for _, r := range []struct {
			path string
			body any
		}{
			{"/v1/breakers/r4/acquire", map[string]any{}},
			{"/v1/breakers/r4/outcomes", map[string]any{"outcomes": []map[string]any{{"success": true, "duration_ms": 1}}}},
			{"/v1/ratelimits/r4/take", map[string]any{"tokens": 1}},
		} {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			code, _, err := call(rctx, http.MethodPost, bases[0]+r.path, r.body, map[string]string{"Idempotency-Key": newKey()}, nil)
			cancel()
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("POST %s = %d, want 200", r.path, code)
			}
		}
		return nil
	}, nil)
	flushes := 0
	for end := time.Now().Add(dur); time.Now().Before(end); flushes++ {
		if got := redis.Do("SCRIPT", "FLUSH"); got != "+OK" {
			t.Fatalf("SCRIPT FLUSH = %q", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sdk.stop()
	api.stop()
	result(t, "R4 SCRIPT FLUSH under load", "%d flushes in %v; SDK: %d errors in %d calls, %d switches to degraded mode; API: %d errors in %d rounds",
		flushes, dur, sdk.errs.Load(), sdk.ops.Load(), deg.entered.Load(), api.errs.Load(), api.ops.Load())
	checkNoPanic(t, cp)
	if sdk.errs.Load() != 0 || deg.entered.Load() != 0 {
		t.Errorf("SDK: %s, %d switches to degraded mode; want no error", sdk.errors(), deg.entered.Load())
	}
	if api.errs.Load() != 0 {
		t.Errorf("API: %s; want no error", api.errors())
	}
}

// handledOver reads a control plane's breakwater_http_request_duration_seconds:
// how many requests it has answered, and how many of those its handlers
// took more than 250 ms over (the histogram's 0.25 bucket, R2's bound).
func handledOver(t *testing.T, base string) (served, over int, byRoute map[string]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	within, byRoute := 0, map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, rest, _ := strings.Cut(sc.Text(), "{")
		labels, value, _ := strings.Cut(rest, "} ")
		n, _ := strconv.ParseFloat(value, 64)
		_, route, _ := strings.Cut(labels, `route="`)
		route, _, _ = strings.Cut(route, `"`)
		switch {
		case name == "breakwater_http_request_duration_seconds_count":
			served += int(n)
			byRoute[route] += int(n)
		case name == "breakwater_http_request_duration_seconds_bucket" && strings.Contains(labels, `le="0.25"`):
			within += int(n)
			byRoute[route] -= int(n)
		}
	}
	return served, served - within, byRoute
}
