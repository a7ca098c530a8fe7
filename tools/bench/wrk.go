package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// target is one HTTP load.
type target struct {
	name   string
	method string
	url    string
	body   string
	script string // the script each request runs; "" for none
}

func httpTargets(cp, hello, relay string) []target {
	return []target{
		{name: "hello", method: "GET", url: hello + "/"},
		{name: "relay", method: "POST", url: relay + "/take", body: `{"key":"tenant-42"}`, script: "take"},
		{name: "take", method: "POST", url: cp + "/v1/ratelimits/bench/take", body: `{"key":"tenant-42"}`, script: "take"},
		{name: "acquire", method: "POST", url: cp + "/v1/breakers/bench/acquire", script: "acquire"},
		{name: "outcomes", method: "POST", url: cp + "/v1/breakers/bench/outcomes",
			body: `{"outcomes":[{"success":true,"duration_ms":12}]}`, script: "outcomes"},
	}
}

// result is what one load measured.
type result struct {
	rps      float64
	p50, p99 time.Duration
	scriptUS float64 // usec_per_call of EVALSHA, 0 when none ran
	requests float64 // HTTP requests answered (wrk's total), 0 for bare loads
	perReqUS float64 // EVALSHA time inside Redis over requests: below scriptUS when runs carry several requests
	serverUS float64 // processor time of the serving process over requests, 0 where unknown
	redisUS  float64 // processor time of redis-server over requests, all of it (I/O too)
}

func runWrk(dir string, t target, o options) (result, error) {
	lua := fmt.Sprintf("wrk.method = %q\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", t.method)
	if t.body != "" {
		lua += fmt.Sprintf("wrk.body = %q\n", t.body)
	}
	script := filepath.Join(dir, t.name+".lua")
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		return result{}, err
	}
	secs := max(int(o.duration.Round(time.Second).Seconds()), 1)
	out, err := exec.Command("wrk", "-t", strconv.Itoa(o.threads), "-c", strconv.Itoa(o.conns),
		"-d", strconv.Itoa(secs)+"s", "--timeout", "5s", "--latency", "-s", script, t.url).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %v\n%s", t.name, err, out)
	}
	return parseWrk(string(out))
}

// parseWrk reads requests/s and the 50th and 99th percentiles of latency
// from wrk's --latency report. Any non-2xx answer or socket error fails the
// run: a figure made of errors is no figure.
func parseWrk(out string) (result, error) {
	var r result
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			r.requests, _ = strconv.ParseFloat(f[0], 64)
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && f[0] == "50%":
			r.p50, _ = time.ParseDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			r.p99, _ = time.ParseDuration(f[1])
		case strings.Contains(line, "Non-2xx"), strings.Contains(line, "Socket errors"):
			return r, fmt.Errorf("wrk: %s\n%s", strings.TrimSpace(line), out)
		}
	}
	if r.rps == 0 || r.p50 == 0 {
		return r, fmt.Errorf("cannot read wrk's report:\n%s", out)
	}
	return r, nil
}
