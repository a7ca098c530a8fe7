package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

type report struct {
	machine string
	opts    options
	runs    map[string][]result // "http/take", "script/take", ...
	handler map[string]goResult
	sdk     map[string]goResult
}

func (r *report) add(kind, name string, res result) {
	if r.runs == nil {
		r.runs = map[string][]result{}
	}
	r.runs[kind+"/"+name] = append(r.runs[kind+"/"+name], res)
}

// med is the median of each figure of one load over the rounds.
func (r *report) med(key string) (result, bool) {
	rs := r.runs[key]
	if len(rs) == 0 {
		return result{}, false
	}
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, x := range rs {
			v[i] = f(x)
		}
		return median(v)
	}
	return result{
		rps:      pick(func(x result) float64 { return x.rps }),
		p50:      time.Duration(pick(func(x result) float64 { return float64(x.p50) })),
		p99:      time.Duration(pick(func(x result) float64 { return float64(x.p99) })),
		scriptUS: pick(func(x result) float64 { return x.scriptUS }),
		perReqUS: pick(func(x result) float64 { return x.perReqUS }),
		serverUS: pick(func(x result) float64 { return x.serverUS }),
		redisUS:  pick(func(x result) float64 { return x.redisUS }),
	}, true
}

var routes = map[string]string{
	"take":     "`POST /v1/ratelimits/{name}/take`",
	"acquire":  "`POST /v1/breakers/{name}/acquire`",
	"outcomes": "`POST /v1/breakers/{name}/outcomes` (1 entry)",
}

func (r *report) print(w io.Writer) {
	o := r.opts
	fmt.Fprintf(w, "\n## make bench, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "Machine: %s.\n\n", r.machine)
	fmt.Fprintf(w, "Loads one after the other, every server up for the whole run, medians of %d rounds of %v each: "+
		"HTTP with `wrk -t%d -c%d --latency` on loopback; bare scripts through the store from %d goroutines.\n\n",
		o.rounds, o.duration, o.threads, o.conns, o.conns)

	hello, _ := r.med("http/hello")
	fmt.Fprintln(w, "### Decisions over HTTP, against the floor and the bare script")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| path | req/s | x hello | x bare script | p50 | p99 | allocs/decision | script µs in Redis: a run | a request |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	fmt.Fprintf(w, "| hello: chi hello-world, `GET /` | %s | 1.00 | | %s | %s | %s | | |\n",
		num(hello.rps), dur(hello.p50), dur(hello.p99), r.allocs("hello"))
	if h, ok := r.med("http/relay"); ok {
		s, _ := r.med("script/take")
		fmt.Fprintf(w, "| relay: chi and the store, the take script and nothing else | %s | %s | %s | %s | %s | %s | %.1f | %.1f |\n",
			num(h.rps), ratio(h.rps, hello.rps), ratio(h.rps, s.rps), dur(h.p50), dur(h.p99), r.allocs("relay"), h.scriptUS, h.perReqUS)
	}
	for _, name := range []string{"take", "acquire", "outcomes"} {
		h, ok := r.med("http/" + name)
		if !ok {
			continue
		}
		s, _ := r.med("script/" + name)
		fmt.Fprintf(w, "| %s: %s | %s | %s | %s | %s | %s | %s | %.1f | %.1f |\n",
			name, routes[name], num(h.rps), ratio(h.rps, hello.rps), ratio(h.rps, s.rps), dur(h.p50), dur(h.p99), r.allocs(name), h.scriptUS, h.perReqUS)
	}
	for _, name := range []string{"take", "acquire", "outcomes"} {
		s, ok := r.med("script/" + name)
		if !ok {
			continue
		}
		fmt.Fprintf(w, "| %s script, bare: store to Redis, no HTTP | %s | %s | 1.00 | %s | %s | | %.1f | |\n",
			name, num(s.rps), ratio(s.rps, hello.rps), dur(s.p50), dur(s.p99), s.scriptUS)
	}
	fmt.Fprintln(w)

	if hello.serverUS > 0 {
		fmt.Fprintln(w, "### Processor time a request (µs), from /proc, the same loads")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Steadier than requests a second on a shared machine: it does not depend on what else had the cores. "+
			"`server` is the process that answered (the control plane, the relay or the hello-world), `redis-server` all of "+
			"Redis's time, its network I/O included.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| path | server | x hello | redis-server | server and Redis | x relay |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
		relay, _ := r.med("http/relay")
		for _, name := range []string{"hello", "relay", "take", "acquire", "outcomes"} {
			h, ok := r.med("http/" + name)
			if !ok || h.serverUS == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %.1f | %s | %.1f | %.1f | %s |\n", name, h.serverUS, ratio(h.serverUS, hello.serverUS),
				h.redisUS, h.serverUS+h.redisUS, ratio(h.serverUS+h.redisUS, relay.serverUS+relay.redisUS))
		}
		fmt.Fprintln(w)
	}

	floor, _ := r.med("script/floor")
	acq, _ := r.med("script/acquire")
	fmt.Fprintln(w, "### Scripts inside Redis (usec_per_call of EVALSHA in `INFO commandstats`, bare loads)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| script | µs a run | x floor | x acquire |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	fmt.Fprintf(w, "| floor: `TIME`, one `MGET`, one `SET`, a short reply | %.1f | 1.00 | %s |\n", floor.scriptUS, ratio(floor.scriptUS, acq.scriptUS))
	for _, name := range []string{"take", "acquire", "outcomes"} {
		s, ok := r.med("script/" + name)
		if !ok {
			continue
		}
		fmt.Fprintf(w, "| %s | %.1f | %s | %s |\n", name, s.scriptUS, ratio(s.scriptUS, floor.scriptUS), ratio(s.scriptUS, acq.scriptUS))
	}
	fmt.Fprintln(w)

	if len(r.sdk) > 0 {
		fmt.Fprintln(w, "### The SDK's cached path beside sony/gobreaker v2 (`go test -bench`, `./client/`, median of 3)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| benchmark | serial ns/op | allocs/op | parallel ns/op | allocs/op |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
		for _, row := range []struct{ name, bench string }{
			{"Breakwater `Do`, cached closed answer", "BenchmarkBreakerDo"},
			{"Breakwater two-step `Allow` + `done`, cached", "BenchmarkBreakerAllow"},
			{"gobreaker v2 `Execute`", "BenchmarkGobreakerExecute"},
			{"gobreaker v2 two-step `Allow` + `done`", "BenchmarkGobreakerTwoStepAllow"},
		} {
			s, p := r.sdk[row.bench], r.sdk[row.bench+"Parallel"]
			fmt.Fprintf(w, "| %s | %.1f | %.0f | %.1f | %.0f |\n", row.name, s.nsOp, s.allocsOp, p.nsOp, p.allocsOp)
		}
		fmt.Fprintln(w)
	}
	if len(r.handler) > 0 {
		fmt.Fprintln(w, "allocs/decision: `go test -run '^$' -bench Handler -benchmem ./internal/httpapi/` (the handler through ServeHTTP over the same redis-server setup, no network).")
		fmt.Fprintln(w)
	}
}

func (r *report) allocs(name string) string {
	g, ok := r.handler["BenchmarkHandler/"+name]
	if !ok {
		return ""
	}
	return fmt.Sprintf("%.0f", g.allocsOp)
}

func ratio(a, b float64) string {
	if b == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", a/b)
}

func num(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func dur(d time.Duration) string {
	if d >= time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}
