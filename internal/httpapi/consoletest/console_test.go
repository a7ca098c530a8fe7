// Package consoletest drives the operator console in a real browser
// (Debian's chromium, through the DevTools protocol) against a real
// control plane over the embedded store. It is a package of its own so
// that the browser driver stays out of the binaries and the SDK.
package consoletest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/breakwater-dev/breakwater/internal/audit"
	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/events"
	"github.com/breakwater-dev/breakwater/internal/fault"
	"github.com/breakwater-dev/breakwater/internal/httpapi"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store"
)

var docsScreenshot = flag.Bool("docs-screenshot", false, "write docs/console.png from TestConsoleScreenshot")

const (
	readerSecret   = "console-reader-secret-0001"
	operatorSecret = "console-operator-secret-01"
)

// browser is the allocator every test of this binary opens its tabs in;
// nil when there is no chromium (browserErr says why).
var (
	browser    context.Context
	browserErr error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		path, err := exec.LookPath("chromium")
		if err != nil {
			browserErr = err
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "breakwater-chromium-")
		if err != nil {
			browserErr = err
			return m.Run()
		}
		defer os.RemoveAll(dir)
		// The flags keep a headless chromium from reaching for the network
		// (updates, sync, field trials), which stalls it on a closed network.
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(path),
			chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.UserDataDir(dir),
			chromedp.WindowSize(1280, 860),
		)
		defer cancelAlloc()
		ctx, cancel := chromedp.NewContext(alloc)
		defer cancel()
		// Start the browser once, in its first (blank) tab.
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
			browserErr = fmt.Errorf("start chromium: %w", err)
			return m.Run()
		}
		browser = ctx
		return m.Run()
	}()
	os.Exit(code)
}

// requireBrowser skips the test without chromium, except under CI (CI
// set), where a missing browser fails it.
func requireBrowser(t *testing.T) {
	t.Helper()
	if browser != nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("no browser under CI (.ci/run must install chromium): %v", browserErr)
	}
	t.Skipf("no browser (apt-get install chromium to run this test): %v", browserErr)
}

// controlPlane is a control plane over the embedded store, served by
// httptest.
type controlPlane struct {
	URL string
}

func startControlPlane(t *testing.T, auth bool) *controlPlane {
	t.Helper()
	st, err := store.Open(store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var tokens *httpapi.Tokens
	if auth {
		tokens, err = httpapi.ParseTokens(strings.NewReader(
			"viewer reader " + readerSecret + "\noncall operator " + operatorSecret + "\n"))
		if err != nil {
			t.Fatal(err)
		}
	}
	api := httpapi.New(httpapi.Options{Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Store: st,
		Faults: fault.NewService(st), Tokens: tokens, Audit: audit.New(st, nil), Events: events.NewService(st), Heartbeat: time.Second})
	srv := httptest.NewServer(api)
	// Close the streams before the server, which waits for them.
	t.Cleanup(srv.Close)
	t.Cleanup(api.Close)
	return &controlPlane{URL: srv.URL}
}

// do calls the API as an operator and fails the test unless it answers
// with a 2xx.
func (cp *controlPlane) do(t *testing.T, method, path, body string) string {
	t.Helper()
	req, err := http.NewRequest(method, cp.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+operatorSecret)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		t.Fatalf("%s %s = %d, want 2xx (body %s)", method, path, res.StatusCode, b)
	}
	return string(b)
}

// tab is a fresh browser tab for one test; its console errors and
// uncaught exceptions fail the test when it ends.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu     sync.Mutex
	errors []string
}

func newTab(t *testing.T) *tab {
	t.Helper()
	requireBrowser(t)
	ctx, cancel := chromedp.NewContext(browser)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	tb := &tab{t: t, ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "uncaught: " + ev.ExceptionDetails.Text
			if ex := ev.ExceptionDetails.Exception; ex != nil {
				msg += " " + ex.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				msg = "console.error: " + strings.Join(args, " ")
			}
		case *cdplog.EventEntryAdded:
			// A refused request (a reader asking for the audit trail) is
			// logged by the network; CSP violations and script errors are not
			// expected at all.
			if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
				msg = fmt.Sprintf("log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			tb.mu.Lock()
			tb.errors = append(tb.errors, msg)
			tb.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, struct{}{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
				writeArtifact(t, strings.ReplaceAll(t.Name(), "/", "_")+"-failed.png", buf)
			}
		}
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, e := range tb.errors {
			t.Errorf("browser: %s", e)
		}
		cancelTimeout()
		cancel()
	})
	return tb
}

// run runs actions, failing the test on error.
func (tb *tab) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits until a JavaScript expression is true in the page.
func (tb *tab) waitFor(what, expr string, within time.Duration) {
	tb.t.Helper()
	_, err := chromedp.Run(tb.ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(within)))
	if err != nil {
		tb.t.Fatalf("waiting %v for %s (%s): %v", within, what, expr, err)
	}
}

// open loads the console and, when secret is set, enters it as the token
// the way an operator does.
func (tb *tab) open(cp *controlPlane, secret string) {
	tb.t.Helper()
	tb.run("open the console", chromedp.Navigate(cp.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	if secret != "" {
		tb.run("enter the token",
			chromedp.SendKeys(chromedp.CSS("#token"), secret),
			chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	}
}

// screenshot saves the viewport as an artifact for people to look at.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	buf, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("screenshot: %v", err)
	}
	writeArtifact(tb.t, name, buf)
}

// writeArtifact writes a file under $BREAKWATER_ARTIFACTS, or artifacts/
// at the top of the repository (ignored by git).
func writeArtifact(t *testing.T, name string, data []byte) {
	t.Helper()
	dir := os.Getenv("BREAKWATER_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "artifacts", "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	tripConfig = `{"window":{"type":"count","size":10},"minimum_calls":2,"failure_rate_threshold":50,"open_duration_ms":60000}`
	trip       = `{"outcomes":[{"success":false,"duration_ms":30,"count":5}]}`
)

// cardState is the state a breaker's card shows, as its data attribute
// and its words.
func cardState(name string) string {
	return fmt.Sprintf(`(() => { const c = document.querySelector('article.breaker[data-name=%q]'); return c ? c.dataset.state + ' ' + c.querySelector('.state').textContent : ''; })()`, name)
}

func TestConsoleListsBreakers(t *testing.T) {
	cp := startControlPlane(t, true)
	for _, name := range []string{"payments", "inventory", "search.v2"} {
		cp.do(t, "PUT", "/v1/breakers/"+name, `{}`)
	}
	cp.do(t, "PUT", "/v1/ratelimits/tenant-api", `{"capacity":100,"refill_per_second":0.01}`)
	// A key that must be escaped in a query string.
	cp.do(t, "POST", "/v1/ratelimits/tenant-api/take", `{"tokens":30,"key":"tenant 42/ü&x=1"}`)

	tb := newTab(t)
	tb.open(cp, readerSecret)
	tb.waitFor("three breaker cards", `document.querySelectorAll('article.breaker').length === 3`, 10*time.Second)
	got := eval[[]string](tb, `[...document.querySelectorAll('article.breaker')].map(c => c.dataset.name + ': ' + c.querySelector('.state').textContent)`)
	want := []string{"inventory: ● closed", "payments: ● closed", "search.v2: ● closed"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("breaker cards = %q, want %q", got, want)
	}
	if eval[bool](tb, `!document.getElementById('banner-open').hidden`) {
		t.Errorf("the auth-off banner shows on a control plane with tokens")
	}

	// The bucket of a key an operator types.
	tb.waitFor("the rate limit", `document.querySelector('#ratelimit-table tr[data-name="tenant-api"]') !== null`, 5*time.Second)
	tb.run("look up a key",
		chromedp.SendKeys(chromedp.CSS("#lookup-key"), "tenant 42/ü&x=1"),
		chromedp.Click(chromedp.CSS(`#lookup button[type="submit"]`)))
	tb.waitFor("the bucket level", `document.querySelector('#lookup-out meter') !== null`, 5*time.Second)
	level := eval[float64](tb, `document.querySelector('#lookup-out meter').value`)
	if level < 70 || level > 71 {
		t.Errorf("bucket level of the key after taking 30 of 100 = %v, want 70 plus the little that refilled since", level)
	}
	tb.screenshot("list-reader.png")
}

func TestConsoleShowsTripLive(t *testing.T) {
	cp := startControlPlane(t, true)
	cp.do(t, "PUT", "/v1/breakers/payments", tripConfig)
	tb := newTab(t)
	tb.open(cp, operatorSecret)
	tb.waitFor("the breaker, closed", cardState("payments")+` === 'closed ● closed'`, 10*time.Second)
	tb.waitFor("the event stream", `document.getElementById('live').dataset.mode === 'live'`, 10*time.Second)
	// A reload would lose this mark.
	tb.run("mark the page", chromedp.Evaluate[chromedp.Void](`window.breakwaterTestMark = 1`))

	tripped := time.Now()
	cp.do(t, "POST", "/v1/breakers/payments/outcomes", trip)
	// Well inside the 5 s of the periodic read: the event stream shows it.
	tb.waitFor("the trip", cardState("payments")+` === 'open ✕ open'`, 2*time.Second)
	t.Logf("the trip showed %v after the report was sent", time.Since(tripped).Round(time.Millisecond))
	if !eval[bool](tb, `window.breakwaterTestMark === 1`) {
		t.Errorf("the page reloaded to show the trip")
	}
	tb.waitFor("the time until probes", `document.querySelector('article.breaker[data-name="payments"] .timer').textContent.startsWith('Open for ')`, 5*time.Second)
	tb.waitFor("the trip in the sparkline", `document.querySelector('article.breaker[data-name="payments"] .spark rect.band-open') !== null`, 5*time.Second)
	tb.screenshot("trip-live.png")
}

func TestConsoleOperatorForcesOpen(t *testing.T) {
	cp := startControlPlane(t, true)
	cp.do(t, "PUT", "/v1/breakers/payments", `{}`)
	tb := newTab(t)
	tb.open(cp, operatorSecret)
	button := chromedp.CSS(`article.breaker[data-name="payments"] button[data-action="force_open"]`)
	tb.run("force open", chromedp.WaitVisible(button), chromedp.Click(button), chromedp.WaitVisible(chromedp.CSS("#action-reason")))

	// No reason, no action: the browser holds the form back, and a reason
	// of blanks is refused by the console.
	tb.run("confirm without a reason", chromedp.Click(chromedp.CSS("#action-submit")))
	if !eval[bool](tb, `document.querySelector('#action-reason:invalid') !== null && document.getElementById('action-result').hidden`) {
		t.Errorf("the empty reason field is not marked invalid, or the action ran")
	}
	tb.run("confirm with a blank reason", chromedp.SendKeys(chromedp.CSS("#action-reason"), "   "), chromedp.Click(chromedp.CSS("#action-submit")))
	tb.waitFor("the reason error", `!document.getElementById('action-error').hidden`, 5*time.Second)
	tb.run("clear the reason", chromedp.Evaluate[chromedp.Void](`document.getElementById('action-reason').value = ''`))

	const reason = "INC-4711 payments provider down"
	tb.run("give a reason and an expiry",
		chromedp.SendKeys(chromedp.CSS("#action-reason"), reason),
		chromedp.SendKeys(chromedp.CSS("#action-ttl"), "15"),
		chromedp.Click(chromedp.CSS("#action-submit")))
	tb.waitFor("the audit record", `!document.getElementById('action-result').hidden`, 10*time.Second)
	record := eval[string](tb, `document.getElementById('action-record').textContent`)
	for _, want := range []string{"oncall", "breaker.override.put", "payments", "forced_open: " + reason, "ok"} {
		if !strings.Contains(record, want) {
			t.Errorf("audit record in the dialog = %q, want it to contain %q", record, want)
		}
	}
	tb.screenshot("force-open-dialog.png")
	tb.run("close the dialog", chromedp.Click(chromedp.CSS("#action-cancel")), chromedp.WaitNotVisible(chromedp.CSS("#action-dialog")))
	tb.waitFor("forced open", cardState("payments")+` === 'forced_open ✖ forced open'`, 5*time.Second)
	timer := eval[string](tb, `document.querySelector('article.breaker[data-name="payments"] .timer').textContent`)
	if !strings.HasPrefix(timer, "Override expires in 1") { // 15 min, less what passed
		t.Errorf("forced breaker's timer = %q, want Override expires in 14 or 15 min", timer)
	}
	top := eval[[]string](tb, `[...document.querySelectorAll('#audit-table tbody tr:first-child td')].map(td => td.textContent)`)
	if len(top) != 6 || top[2] != "breaker.override.put" || top[3] != "payments" || top[4] != "forced_open: "+reason {
		t.Errorf("newest audit row = %q, want the override with its reason", top)
	}
	if got := cp.do(t, "GET", "/v1/breakers/payments", ""); !strings.Contains(got, `"state":"forced_open"`) {
		t.Errorf("GET /v1/breakers/payments after forcing in the console = %s, want forced_open", got)
	}
	tb.screenshot("force-open.png")

	// Release, with the keyboard only, giving the optional reason.
	const releaseReason = "INC-4711 provider back"
	release := chromedp.CSS(`article.breaker[data-name="payments"] button[data-action="release"]`)
	tb.run("release", chromedp.WaitVisible(release), chromedp.Focus(release), chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("#action-reason")))
	if eval[bool](tb, `document.getElementById('action-reason').required || document.activeElement.id !== 'action-reason' || !document.getElementById('action-ttl-field').hidden`) {
		t.Errorf("release dialog: want an optional reason, focused, and no expiry field")
	}
	tb.run("type a reason and confirm", chromedp.KeyEvent(releaseReason), chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
	tb.waitFor("the release record", `!document.getElementById('action-result').hidden`, 10*time.Second)
	record = eval[string](tb, `document.getElementById('action-record').textContent`)
	for _, want := range []string{"breaker.override.delete", releaseReason} {
		if !strings.Contains(record, want) {
			t.Errorf("release record in the dialog = %q, want it to contain %q", record, want)
		}
	}
	tb.run("close the dialog", chromedp.Click(chromedp.CSS("#action-cancel")), chromedp.WaitNotVisible(chromedp.CSS("#action-dialog")))
	tb.waitFor("closed again", cardState("payments")+` === 'closed ● closed'`, 5*time.Second)

	// Reset with a reason, and reset without one.
	reset := chromedp.CSS(`article.breaker[data-name="payments"] button[data-action="reset"]`)
	for _, reason := range []string{"clean window after INC-4711", ""} {
		tb.run("reset", chromedp.WaitVisible(reset), chromedp.Click(reset), chromedp.WaitVisible(chromedp.CSS("#action-reason")))
		if reason != "" {
			tb.run("give a reason", chromedp.SendKeys(chromedp.CSS("#action-reason"), reason))
		}
		tb.run("confirm", chromedp.Click(chromedp.CSS("#action-submit")))
		tb.waitFor("the reset record", `!document.getElementById('action-result').hidden`, 10*time.Second)
		tb.run("close the dialog", chromedp.Click(chromedp.CSS("#action-cancel")), chromedp.WaitNotVisible(chromedp.CSS("#action-dialog")))
		top := eval[[]string](tb, `[...document.querySelectorAll('#audit-table tbody tr:first-child td')].map(td => td.textContent)`)
		if len(top) != 6 || top[2] != "breaker.reset" || top[4] != reason {
			t.Errorf("newest audit row after a reset with reason %q = %q, want breaker.reset with that reason", reason, top)
		}
	}
}

func TestConsoleReaderHasNoActions(t *testing.T) {
	cp := startControlPlane(t, true)
	cp.do(t, "PUT", "/v1/breakers/payments", tripConfig)
	cp.do(t, "POST", "/v1/breakers/payments/outcomes", trip)
	tb := newTab(t)
	tb.open(cp, readerSecret)
	tb.waitFor("the breaker", cardState("payments")+` === 'open ✕ open'`, 10*time.Second)
	tb.waitFor("the role", `document.getElementById('role').textContent === 'read-only'`, 5*time.Second)
	if n := eval[int](tb, `document.querySelectorAll('button[data-action]').length`); n != 0 {
		t.Errorf("a reader sees %d action buttons, want 0", n)
	}
	if note := eval[string](tb, `document.getElementById('audit-note').textContent`); !strings.Contains(note, "operator token") {
		t.Errorf("audit note for a reader = %q, want it to say an operator token is needed", note)
	}
	// The token is in this tab's session storage and nowhere else.
	if got := eval[string](tb, `sessionStorage.getItem('breakwater.token')`); got != readerSecret {
		t.Errorf("sessionStorage token = %q, want the reader's", got)
	}
	if got := eval[string](tb, `document.cookie + location.href`); strings.Contains(got, readerSecret) {
		t.Errorf("the token leaked into a cookie or the URL: %q", got)
	}
	// Same tab, operator token: the buttons appear.
	tb.run("switch to the operator", chromedp.Evaluate[chromedp.Void](`document.getElementById('token').value = ''`),
		chromedp.SendKeys(chromedp.CSS("#token"), operatorSecret),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	tb.waitFor("action buttons", `document.querySelectorAll('article.breaker[data-name="payments"] button[data-action]').length > 0`, 5*time.Second)
}

func TestConsoleAuthOff(t *testing.T) {
	cp := startControlPlane(t, false)
	cp.do(t, "PUT", "/v1/breakers/payments", `{}`)
	tb := newTab(t)
	tb.open(cp, "")
	tb.waitFor("the auth-off banner", `!document.getElementById('banner-open').hidden`, 10*time.Second)
	tb.waitFor("action buttons", `document.querySelectorAll('button[data-action]').length > 0`, 5*time.Second)
}

// TestConsoleScreenshot shows a small fleet in several states on a laptop
// and a phone, light and dark, for people to look at. With
// -docs-screenshot it first sends a minute of traffic, so that the
// sparklines have a shape, and writes docs/console.png.
func TestConsoleScreenshot(t *testing.T) {
	cp := startControlPlane(t, false)
	const config = `{"window":{"type":"time","size":60},"minimum_calls":20,"failure_rate_threshold":50,"open_duration_ms":60000}`
	names := []string{"payments", "inventory", "search", "recommendations", "shipping-quotes", "email"}
	for _, name := range names {
		cp.do(t, "PUT", "/v1/breakers/"+name, config)
	}
	cp.do(t, "PUT", "/v1/ratelimits/tenant-api", `{"capacity":100,"refill_per_second":10}`)
	cp.do(t, "PUT", "/v1/faults/inventory", `{"abort_percent":20,"abort_status":503,"delay_percent":30,"delay_ms":400,"reason":"game day: inventory under strain","ttl_ms":1800000}`)
	traffic := func(round int) {
		for i, name := range names {
			ok, failed := 20+7*((round+i)%4)+3*i, round%3
			switch name {
			case "payments":
				ok, failed = 30, 8*round
			case "inventory":
				failed = 2 * round
			}
			cp.do(t, "POST", "/v1/breakers/"+name+"/outcomes", fmt.Sprintf(
				`{"outcomes":[{"success":true,"duration_ms":20,"count":%d},{"success":false,"duration_ms":900,"count":%d}]}`, ok, failed+1))
		}
	}
	traffic(0)
	tb := newTab(t)
	tb.open(cp, "")
	tb.waitFor("six cards", `document.querySelectorAll('article.breaker').length === 6`, 10*time.Second)
	tb.waitFor("the event stream", `document.getElementById('live').dataset.mode === 'live'`, 10*time.Second)
	rounds := 1
	if *docsScreenshot {
		rounds = 12
	}
	for r := 1; r <= rounds; r++ {
		n := eval[int](tb, `page.history.get('inventory').length`)
		traffic(r)
		if r == 4 {
			cp.do(t, "PUT", "/v1/breakers/search/override", `{"state":"forced_open","reason":"INC-4711 search cluster reindex","ttl_ms":1800000}`)
			cp.do(t, "PUT", "/v1/breakers/email/override", `{"state":"forced_closed","reason":"false alarms from the SMTP relay","ttl_ms":600000}`)
		}
		if r < rounds {
			tb.waitFor("the next sample", fmt.Sprintf(`page.history.get('inventory').length > %d`, n), 15*time.Second)
		}
	}
	if rounds < 4 {
		cp.do(t, "POST", "/v1/breakers/payments/outcomes", `{"outcomes":[{"success":false,"count":500}]}`)
		cp.do(t, "PUT", "/v1/breakers/search/override", `{"state":"forced_open","reason":"INC-4711 search cluster reindex","ttl_ms":1800000}`)
		cp.do(t, "PUT", "/v1/breakers/email/override", `{"state":"forced_closed","reason":"false alarms from the SMTP relay","ttl_ms":600000}`)
	}
	tb.waitFor("the trip", cardState("payments")+` === 'open ✕ open'`, 5*time.Second)
	tb.waitFor("the override", cardState("search")+` === 'forced_open ✖ forced open'`, 5*time.Second)
	tb.waitFor("the second override", cardState("email")+` === 'forced_closed ⚑ forced closed'`, 5*time.Second)
	tb.waitFor("the audit trail", `document.querySelectorAll('#audit-table tbody tr').length >= 4`, 5*time.Second)
	tb.waitFor("the drill", cardDrill("inventory")+` !== ''`, 5*time.Second)

	buf, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	writeArtifact(t, "laptop-light.png", buf)
	if *docsScreenshot {
		if err := os.WriteFile(filepath.Join("..", "..", "..", "docs", "console.png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dark := func(on bool) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			v := "light"
			if on {
				v = "dark"
			}
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}}})
			return chromedp.Void{}, err
		}
	}
	tb.run("dark", dark(true))
	tb.screenshot("laptop-dark.png")
	tb.run("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	tb.screenshot("phone-dark.png")
	tb.run("phone light", dark(false))
	tb.screenshot("phone-light.png")
	if w := eval[int](tb, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("page is %d px wide on a 390 px phone, want no sideways scrolling", w)
	}
}

// drillRow is the drills table's row of a dependency, cell by cell.
func drillRow(name string) string {
	return fmt.Sprintf(`(() => { const r = document.querySelector('#drill-table tr[data-name=%q]'); return r ? [...r.cells].map(td => td.textContent) : []; })()`, name)
}

// cardDrill is what a breaker's card says about a drill, with its mark.
func cardDrill(name string) string {
	return fmt.Sprintf(`(() => { const c = document.querySelector('article.breaker[data-name=%q]'); const d = c && c.querySelector('.drill'); return c && d && !d.hidden ? c.dataset.drill + ' ' + d.textContent : ''; })()`, name)
}

func TestConsoleShowsDrillAndEndsIt(t *testing.T) {
	cp := startControlPlane(t, true)
	cp.do(t, "PUT", "/v1/breakers/payments", `{}`)
	cp.do(t, "PUT", "/v1/breakers/search", `{}`)
	tb := newTab(t)
	tb.open(cp, operatorSecret)
	tb.waitFor("the event stream", `document.getElementById('live').dataset.mode === 'live'`, 10*time.Second)
	tb.waitFor("no drills", `!document.getElementById('drills').hidden && !document.getElementById('drills-empty').hidden`, 5*time.Second)
	tb.run("mark the page", chromedp.Evaluate[chromedp.Void](`window.breakwaterTestMark = 1`))

	const reason = "game day: payments provider down"
	cp.do(t, "PUT", "/v1/faults/payments", `{"abort_percent":25,"abort_status":502,"delay_percent":10,"delay_ms":800,"reason":"`+reason+`","ttl_ms":600000}`)
	// Well inside the 5 s of the periodic read: the event stream shows it.
	tb.waitFor("the drill in the table", drillRow("payments")+`.length === 7`, 3*time.Second)
	row := eval[[]string](tb, drillRow("payments"))
	for i, want := range []string{"payments", "25% → 502", "10% + 800 ms", reason, "oncall, "} {
		if !strings.HasPrefix(row[i], want) {
			t.Errorf("drill row cell %d = %q, want it to start with %q", i, row[i], want)
		}
	}
	if !strings.HasPrefix(row[5], "9 min") && !strings.HasPrefix(row[5], "10 min") {
		t.Errorf("drill row ends in = %q, want 9 or 10 min", row[5])
	}
	tb.waitFor("the drill on the card", cardDrill("payments")+` !== ''`, 3*time.Second)
	if got, want := eval[string](tb, cardDrill("payments")), "true ⚠ Drill: aborts 25% with 502, delays 10% by 800 ms · ends in "; !strings.HasPrefix(got, want) {
		t.Errorf("payments card drill = %q, want it to start with %q", got, want)
	}
	if got := eval[string](tb, cardDrill("search")); got != "" {
		t.Errorf("search card drill = %q, want none: only payments has a drill", got)
	}
	if !eval[bool](tb, `window.breakwaterTestMark === 1`) {
		t.Errorf("the page reloaded to show the drill")
	}
	tb.screenshot("drill.png")

	// End it from the console, after a confirmation.
	end := chromedp.CSS(`#drill-table tr[data-name="payments"] button[data-action="end_drill"]`)
	tb.run("end the drill", chromedp.WaitVisible(end), chromedp.Click(end), chromedp.WaitVisible(chromedp.CSS("#action-submit")))
	if got := eval[string](tb, `document.getElementById('action-title').textContent`); got != "End drill: payments" {
		t.Errorf("confirmation title = %q, want %q", got, "End drill: payments")
	}
	if got := cp.do(t, "GET", "/v1/faults", ""); !strings.Contains(got, `"payments"`) {
		t.Errorf("GET /v1/faults before confirming = %s, want the drill still active", got)
	}
	tb.run("confirm", chromedp.Click(chromedp.CSS("#action-submit")))
	tb.waitFor("the audit record", `!document.getElementById('action-result').hidden`, 10*time.Second)
	record := eval[string](tb, `document.getElementById('action-record').textContent`)
	for _, want := range []string{"oncall", "fault.delete", "payments", "ok"} {
		if !strings.Contains(record, want) {
			t.Errorf("audit record in the dialog = %q, want it to contain %q", record, want)
		}
	}
	tb.run("close the dialog", chromedp.Click(chromedp.CSS("#action-cancel")), chromedp.WaitNotVisible(chromedp.CSS("#action-dialog")))
	tb.waitFor("the drill gone", drillRow("payments")+`.length === 0 && `+cardDrill("payments")+` === ''`, 5*time.Second)
	if got := cp.do(t, "GET", "/v1/faults", ""); got != `{"faults":[]}`+"\n" && got != `{"faults":[]}` {
		t.Errorf("GET /v1/faults after ending the drill in the console = %s, want none", got)
	}
}

func TestConsoleReaderCannotEndDrill(t *testing.T) {
	cp := startControlPlane(t, true)
	cp.do(t, "PUT", "/v1/breakers/payments", `{}`)
	cp.do(t, "PUT", "/v1/faults/payments", `{"abort_percent":100,"reason":"game day","ttl_ms":600000}`)
	tb := newTab(t)
	tb.open(cp, readerSecret)
	tb.waitFor("the drill", drillRow("payments")+`.length === 7`, 10*time.Second)
	tb.waitFor("the role", `document.getElementById('role').textContent === 'read-only'`, 5*time.Second)
	if n := eval[int](tb, `[...document.querySelectorAll('#drills button')].filter(b => b.checkVisibility()).length`); n != 0 {
		t.Errorf("a reader sees %d buttons among the drills, want 0", n)
	}
	if eval[bool](tb, `!document.getElementById('drill-start').hidden`) {
		t.Errorf("a reader sees the form that starts a drill")
	}
	if got, want := eval[string](tb, cardDrill("payments")), "true ⚠ Drill: aborts 100% with 503 · ends in "; !strings.HasPrefix(got, want) {
		t.Errorf("payments card drill = %q, want it to start with %q", got, want)
	}
}

func TestConsoleOperatorStartsDrill(t *testing.T) {
	cp := startControlPlane(t, true)
	cp.do(t, "PUT", "/v1/breakers/payments", `{}`)
	tb := newTab(t)
	tb.open(cp, operatorSecret)
	tb.waitFor("the form", `!document.getElementById('drill-start').hidden`, 10*time.Second)
	tb.run("open the form", chromedp.Click(chromedp.CSS("#drill-start summary")), chromedp.WaitVisible(chromedp.CSS("#drill-name")))
	tb.run("fill it in without a ttl",
		chromedp.SendKeys(chromedp.CSS("#drill-name"), "payments"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('drill-abort').value = '50'`),
		chromedp.SendKeys(chromedp.CSS("#drill-reason"), "game day: half of payments fail"),
		chromedp.Click(chromedp.CSS(`#drill-form button[type="submit"]`)))
	tb.waitFor("the ttl error", `!document.getElementById('drill-error').hidden`, 5*time.Second)
	if got := cp.do(t, "GET", "/v1/faults", ""); strings.Contains(got, "payments") {
		t.Errorf("GET /v1/faults after a form without ttl = %s, want no drill", got)
	}
	// A bad field the server refuses: its problem names the field.
	tb.run("a delay without ms", chromedp.SendKeys(chromedp.CSS("#drill-ttl"), "15"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('drill-delay').value = '20'`),
		chromedp.Click(chromedp.CSS(`#drill-form button[type="submit"]`)))
	tb.waitFor("the server's error", `document.getElementById('drill-error').textContent.includes('delay_ms')`, 5*time.Second)
	tb.run("fix it", chromedp.Evaluate[chromedp.Void](`document.getElementById('drill-delay').value = '0'`),
		chromedp.Click(chromedp.CSS(`#drill-form button[type="submit"]`)))
	tb.waitFor("the drill", drillRow("payments")+`.length === 7`, 5*time.Second)
	got := cp.do(t, "GET", "/v1/faults/payments", "")
	for _, want := range []string{`"abort_percent":50`, `"abort_status":503`, `"reason":"game day: half of payments fail"`, `"ttl_ms":900000`} {
		if !strings.Contains(got, want) {
			t.Errorf("GET /v1/faults/payments after the form = %s, want it to contain %s", got, want)
		}
	}
}
