package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const dashboardFile = "grafana/dashboards/breakwater.json"

// TestDashboardQueriesExportedMetrics checks that every PromQL query of the
// Grafana dashboard (panels and template variables) names only metrics
// that the control plane and the agent export. The names come from
// /metrics of the real binaries, built and run here, after traffic that
// makes every breaker, rate-limit and client series appear.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	queries := dashboardQueries(t, dashboardFile)
	if len(queries) < 8 {
		t.Fatalf("%s has %d queries, want the panels of the dashboard", dashboardFile, len(queries))
	}
	exported := exportedMetrics(t)
	for _, q := range queries {
		names := metricNames(q.expr)
		if len(names) == 0 {
			t.Errorf("%s: query %q names no metric", q.where, q.expr)
		}
		for _, n := range names {
			if !exported.has(n) {
				t.Errorf("%s: query names %s, which neither the control plane nor the agent exports (query %q)", q.where, n, q.expr)
			}
		}
	}
}

// TestMetricNames checks the query reader the dashboard test relies on.
func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (breaker, outcome) (rate(breakwater_breaker_calls_total{breaker=~"$breaker"}[$__rate_interval]))`, []string{"breakwater_breaker_calls_total"}},
		{`histogram_quantile(0.99, sum by (le, route) (rate(breakwater_http_request_duration_seconds_bucket{route!="/v1/events"}[5m])))`, []string{"breakwater_http_request_duration_seconds_bucket"}},
		{"max by (breaker) (a{state=\"open\"}) * 2\n+ max by (breaker) (b) * 3", []string{"a", "b"}},
		{`label_values(breakwater_breaker_state, breaker)`, []string{"breakwater_breaker_state"}},
		{`sum without (instance) (up) > 0 and on() vector(1)`, []string{"up"}},
		{`min(x_total offset 5m) / ignoring(code) group_left y`, []string{"x_total", "y"}},
	}
	for _, tt := range tests {
		if got := metricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

type query struct{ where, expr string }

// dashboardQueries returns every PromQL expression of a dashboard: its
// panels' targets (rows included) and its query variables.
func dashboardQueries(t *testing.T, file string) []query {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string
		Targets []struct{ Expr string }
		Panels  json.RawMessage
	}
	var d struct {
		UID        string
		Panels     []panel
		Templating struct {
			List []struct {
				Name, Type string
				Query      json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if d.UID == "" {
		t.Errorf("%s: no uid: links to it would change at every load", file)
	}
	var qs []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				qs = append(qs, query{"panel " + p.Title, tg.Expr})
			}
			if len(p.Panels) > 0 {
				var sub []panel
				if err := json.Unmarshal(p.Panels, &sub); err != nil {
					t.Fatalf("%s: row %s: %v", file, p.Title, err)
				}
				walk(sub)
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			// Older dashboards keep the query as a plain string.
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Fatalf("%s: variable %s: %v", file, v.Name, err)
			}
		}
		qs = append(qs, query{"variable " + v.Name, q.Query})
	}
	return qs
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers  = regexp.MustCompile(`\{[^{}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promGroupings = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promOffsets   = regexp.MustCompile(`\b(?:offset)\s+-?[0-9a-z]+`)
	promIdent     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords  = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true,
	}
)

// metricNames returns the metric names a PromQL expression (or a Grafana
// label_values() query) selects, in order: every identifier that is not a
// function, a keyword, a label in a matcher or grouping, or a string.
func metricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRanges.ReplaceAllString(s, " ")
	s = promGroupings.ReplaceAllString(s, " ")
	s = promOffsets.ReplaceAllString(s, " ")
	s = strings.ReplaceAll(s, "group_left", " ")
	s = strings.ReplaceAll(s, "group_right", " ")
	// label_values(metric, label): the label is not a metric.
	s = regexp.MustCompile(`label_values\(([^,()]*),[^()]*\)`).ReplaceAllString(s, "($1)")
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || promKeywords[strings.ToLower(name)] {
			continue
		}
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue // the exponent or unit of a number, as in 1e3
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// metricSet is the metric families the binaries export.
type metricSet map[string]model.MetricType

// has reports whether a query may name n: a family, or a histogram's or
// summary's _bucket, _sum or _count series.
func (m metricSet) has(n string) bool {
	if _, ok := m[n]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(n, suffix)
		if !ok {
			continue
		}
		switch m[base] {
		case model.MetricTypeHistogram:
			return true
		case model.MetricTypeSummary:
			return suffix != "_bucket"
		}
	}
	return false
}

// exportedMetrics builds and runs a control plane and an agent in front of
// a failing upstream, sends traffic until the breaker has tripped and the
// rate limit has denied, and returns the metric families both export.
func exportedMetrics(t *testing.T) metricSet {
	t.Helper()
	bin := buildBinaries(t, "controlplane", "agent")

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for the test", http.StatusInternalServerError)
	}))
	t.Cleanup(upstream.Close)

	cp := "http://" + start(t, filepath.Join(bin, "controlplane"), "--listen", "127.0.0.1:0")
	put := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest("PUT", cp+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode/100 != 2 {
			t.Fatalf("PUT %s = %d", path, res.StatusCode)
		}
	}
	put("/v1/breakers/demo", `{"window":{"type":"count","size":10},"minimum_calls":2,"failure_rate_threshold":50,"open_duration_ms":60000,"cache_ttl_ms":100}`)
	put("/v1/ratelimits/demo", `{"capacity":3,"refill_per_second":0.01}`)
	agent := "http://" + start(t, filepath.Join(bin, "agent"), "--controlplane", cp, "--listen", "127.0.0.1:0",
		"--route", "demo="+upstream.URL, "--route-attempts", "1")

	want := map[string][]string{
		cp: {"breakwater_breaker_state", "breakwater_breaker_transitions_total", "breakwater_breaker_calls_total",
			"breakwater_ratelimit_decisions_total", "breakwater_http_request_duration_seconds", "breakwater_store_duration_seconds"},
		agent: {"breakwater_client_decisions_total"},
	}
	got := metricSet{}
	deadline := time.Now().Add(30 * time.Second)
	for base, names := range want {
		for {
			// Traffic through the agent: failures trip the breaker, and
			// the rate limit runs out.
			if res, err := http.Get(agent + "/demo/x"); err == nil {
				res.Body.Close()
			}
			fams := scrape(t, base+"/metrics")
			missing := slices.DeleteFunc(slices.Clone(names), func(n string) bool { _, ok := fams[n]; return ok })
			if len(missing) == 0 {
				for n, typ := range fams {
					got[n] = typ
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s/metrics still lacks %v after traffic", base, missing)
			}
			time.Sleep(100 * time.Millisecond) // between rounds of traffic
		}
	}
	return got
}

// scrape returns the metric families of a /metrics page by name.
func scrape(t *testing.T, url string) metricSet {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	m := metricSet{}
	for name, f := range fams {
		m[name] = model.MetricType(strings.ToLower(f.GetType().String()))
	}
	return m
}

// buildBinaries builds cmd/<name> for each name into a temporary directory.
func buildBinaries(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go build needs the go tool on PATH: %v", err)
	}
	args := []string{"build", "-o", dir}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.Command(goTool, args...)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// start runs a binary until the test ends and returns the address it
// logs as listening on.
func start(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	var log bytes.Buffer
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Msg == "listening" {
				addr <- m.Addr
			}
			log.Write(sc.Bytes())
		}
		io.Copy(io.Discard, stderr)
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("%s exited before listening:\n%s", filepath.Base(bin), log.String())
		}
		return a
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not log listening within 30s", filepath.Base(bin))
	}
	return ""
}
