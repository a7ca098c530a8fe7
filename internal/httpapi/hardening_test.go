package httpapi

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/internal/events"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// openStream opens /v1/events as the client id and returns its status; a
// stream that opened stays open until the test ends.
func openStream(t *testing.T, url, clientID string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/events", nil)
	if clientID != "" {
		req.Header.Set(ClientHeader, clientID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /v1/events: %v", err)
	}
	t.Cleanup(func() { cancel(); res.Body.Close() })
	return res.StatusCode
}

// With auth off every request is "anonymous": the stream cap counts each
// client on its own, so a fleet is not capped at a handful of streams, and
// a refusal is logged.
func TestEventsStreamCapPerClient(t *testing.T) {
	m := storetest.NewMini(t, testStart)
	var logs bytes.Buffer
	api := New(Options{Store: m.Store, Events: events.NewService(m.Store), MaxStreamsPerToken: 2,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	t.Cleanup(api.Close)
	srv := newServer(t, api)
	for i := range 5 {
		id := "replica-" + string(rune('a'+i))
		if got := openStream(t, srv.URL, id); got != http.StatusOK {
			t.Fatalf("stream of client %s = %d, want 200: each client has its own cap", id, got)
		}
	}
	openStream(t, srv.URL, "replica-a")
	if got := openStream(t, srv.URL, "replica-a"); got != http.StatusTooManyRequests {
		t.Errorf("third stream of one client = %d, want 429", got)
	}
	if !strings.Contains(logs.String(), "event stream refused") || !strings.Contains(logs.String(), "replica-a") {
		t.Errorf("log = %q, want a line naming the refused client", logs.String())
	}
}

func TestParseTokensComments(t *testing.T) {
	tok, err := ParseTokens(strings.NewReader("# fleet tokens\nops operator s3cret#with-a-hash # the operators\n\tweb agent web-secret-000000001\n"))
	if err != nil {
		t.Fatalf("ParseTokens() = %v", err)
	}
	if got, ok := tok.lookup("s3cret#with-a-hash"); !ok || got.Name != "ops" {
		t.Errorf("lookup of a secret holding '#' = %v, %v; want ops", got, ok)
	}
	if _, ok := tok.lookup("s3cret"); ok {
		t.Errorf("the secret was cut at its '#'")
	}
}

func TestLoadTokensWarnsOnOpenMode(t *testing.T) {
	for _, tt := range []struct {
		mode os.FileMode
		warn bool
	}{{0o600, false}, {0o640, true}, {0o604, true}, {0o622, true}, {0o700, false}} {
		path := filepath.Join(t.TempDir(), "tokens")
		os.WriteFile(path, []byte("ops operator operator-secret-0001\n"), 0o600)
		os.Chmod(path, tt.mode)
		var logs bytes.Buffer
		if _, err := LoadTokens(path, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
			t.Fatalf("LoadTokens(mode %v) = %v", tt.mode, err)
		}
		if warned := strings.Contains(logs.String(), "chmod 600"); warned != tt.warn {
			t.Errorf("LoadTokens(mode %v) warned = %v, want %v (log %q)", tt.mode, warned, tt.warn, logs.String())
		}
		if strings.Contains(logs.String(), "operator-secret") {
			t.Errorf("log shows the secret: %q", logs.String())
		}
	}
}

func TestBearerSchemeAnyCase(t *testing.T) {
	ta := newTestAPI(t, testTokens(t))
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		req, _ := http.NewRequest("GET", ta.srv.URL+"/v1/breakers", nil)
		req.Header.Set("Authorization", scheme+" "+secretReader)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET /v1/breakers with scheme %q = %d, want 200", scheme, res.StatusCode)
		}
	}
}
