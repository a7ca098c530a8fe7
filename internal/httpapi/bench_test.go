package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater-dev/breakwater/internal/audit"
	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/events"
	"github.com/breakwater-dev/breakwater/internal/httpapi"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
	"github.com/breakwater-dev/breakwater/internal/store"
	"github.com/breakwater-dev/breakwater/internal/store/storetest"
)

// BenchmarkHandler is the control plane's work for one decision, request
// in and answer out, without the network: the API wired as the controlplane
// binary wires it (metrics registry, store observer, events) over a real
// redis-server, served straight through ServeHTTP into a ResponseWriter
// that is reused. allocs/op is the control plane's own allocations per
// decision; hello is a chi hello-world handler through the same writer, the
// floor of any handler. `make bench` prints allocs/op beside the load
// figures; docs/performance.md explains the table.
//
//	go test -run '^$' -bench Handler -benchmem ./internal/httpapi/
func BenchmarkHandler(b *testing.B) {
	r := storetest.StartRedis(b)
	reg := prometheus.NewRegistry()
	st, err := store.Open(store.Config{URL: r.URL(), Observer: httpapi.StoreObserver(reg)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	api := httpapi.New(httpapi.Options{
		Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Store: st,
		Registry: reg, Audit: audit.New(st, nil), Events: events.NewService(st),
		StoreTimeout: store.DefaultTimeout, // as the control plane serves
	})
	defer api.Close()
	// The same API with bearer tokens, as a control plane with --tokens
	// serves it.
	const secret = "bench-agent-secret-0123456789"
	tokens, err := httpapi.ParseTokens(strings.NewReader("bench agent " + secret))
	if err != nil {
		b.Fatal(err)
	}
	apiTokens := httpapi.New(httpapi.Options{
		Breakers: breaker.NewService(st), Limits: ratelimit.NewService(st), Store: st,
		Registry: prometheus.NewRegistry(), Audit: audit.New(st, nil), Events: events.NewService(st),
		StoreTimeout: store.DefaultTimeout, Tokens: tokens,
	})
	defer apiTokens.Close()
	ctx := context.Background()
	put := func(path, body string) {
		w := httptest.NewRecorder()
		api.ServeHTTP(w, httptest.NewRequestWithContext(ctx, "PUT", path, bytes.NewBufferString(body)))
		if w.Code >= 300 {
			b.Fatalf("PUT %s = %d %s", path, w.Code, w.Body)
		}
	}
	// A breaker that never trips and a limit that never runs dry, so that
	// every iteration takes the same path.
	put("/v1/breakers/bench", `{"minimum_calls":1000000}`)
	put("/v1/ratelimits/bench", `{"capacity":1000000000,"refill_per_second":1000000000}`)

	hello := chi.NewRouter()
	hello.Get("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })

	// relay is the floor of a decision with these libraries: chi reads the
	// request, the store runs the take script (the keys and arguments the
	// service gives it, made once), a fixed answer goes back; no names,
	// tokens, limits, idempotency, metrics or deadline. tools/bench serves
	// the same over the network.
	take := store.LoadScript(os.DirFS("../ratelimit/lua"), "ratelimit", "take", "common")
	takeKeys := store.ObjectKeys("r", []string{"bench"}, "c", store.Suffix("k", "tenant-42"))
	relay := chi.NewRouter()
	relay.Post("/take", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := st.Run(r.Context(), take, takeKeys, 1, "0"); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"allowed":true,"remaining":999999999,"retry_after_ms":0}` + "\n"))
	})

	for _, c := range []struct {
		name, method, path, body string
		h                        http.Handler
	}{
		{"hello", "GET", "/", "", hello},
		{"relay", "POST", "/take", `{"key":"tenant-42"}`, relay},
		{"take", "POST", "/v1/ratelimits/bench/take", `{"key":"tenant-42"}`, api},
		{"acquire", "POST", "/v1/breakers/bench/acquire", ``, api},
		{"outcomes", "POST", "/v1/breakers/bench/outcomes", `{"outcomes":[{"success":true,"duration_ms":12}]}`, api},
		{"acquire-tokens", "POST", "/v1/breakers/bench/acquire", ``, apiTokens},
	} {
		b.Run(c.name, func(b *testing.B) {
			body := bytes.NewReader([]byte(c.body))
			req := httptest.NewRequestWithContext(ctx, c.method, c.path, body)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+secret) // read only by apiTokens
			w := &discardWriter{header: http.Header{}}
			serve := func() {
				body.Seek(0, 0)
				clear(w.header)
				w.status = 0
				c.h.ServeHTTP(w, req)
				if w.status != 0 && w.status != http.StatusOK {
					b.Fatalf("%s %s = %d", c.method, c.path, w.status)
				}
			}
			serve() // load the scripts
			b.ReportAllocs()
			for b.Loop() {
				serve()
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps only the status, so that a
// benchmark counts the handler's allocations and not the writer's.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(code int) { w.status = code }
