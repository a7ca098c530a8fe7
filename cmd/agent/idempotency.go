package main

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater-dev/breakwater/internal/jsonapi"
)

// The decision endpoints accept an Idempotency-Key as the control plane's
// do: the first request with a key applies, a repeat within
// idempotencyTTL applies nothing and gets the first answer again with
// Idempotent-Replayed: true, and a repeat with a different body is 422.
// The agent keeps its keys in memory, at most maxIdempotencyKeys of them;
// docs/agent.md, "Idempotency keys", says what that guarantees.
const (
	idempotencyKeyHeader = "Idempotency-Key"
	replayedHeader       = "Idempotent-Replayed"
	maxIdempotencyKeyLen = 128
	idempotencyTTL       = 10 * time.Minute
	// maxIdempotencyKeys bounds the agent's memory: an entry holds its
	// scope (the path, the key and a rate-limit key: under 600 bytes) and
	// the first answer (a few hundred bytes), so about 10 MB at most.
	maxIdempotencyKeys = 10_000
)

// idempotency remembers the first answer to each Idempotency-Key for ttl,
// keeping at most max keys: past that, the key recorded longest ago is
// forgotten first. The zero value is not usable; make one with
// newIdempotency. It is safe for concurrent use.
type idempotency struct {
	now     func() time.Time
	ttl     time.Duration
	max     int
	replays *prometheus.CounterVec

	mu      sync.Mutex
	entries map[string]*idemEntry
	order   *list.List // of *idemEntry, oldest first
}

// idemEntry is one key's request and, once it is done, its first answer.
type idemEntry struct {
	scope   string
	request [sha256.Size]byte // of the request body's JSON value
	done    chan struct{}     // closed when the first request has ended
	elem    *list.Element
	expires time.Time

	// Set before done is closed.
	recorded bool // false: the first request applied nothing; decide anew
	status   int
	header   http.Header
	answer   []byte
}

func newIdempotency(reg prometheus.Registerer) *idempotency {
	id := &idempotency{now: time.Now, ttl: idempotencyTTL, max: maxIdempotencyKeys,
		entries: map[string]*idemEntry{}, order: list.New()}
	id.replays = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "breakwater_client_idempotent_replays_total",
		Help: "Requests to the agent answered with the first answer to their Idempotency-Key, applying nothing, by endpoint (acquire, outcomes, take).",
	}, []string{"endpoint"})
	if reg != nil {
		reg.MustRegister(id.replays)
	}
	return id
}

// wrap makes next idempotent under an Idempotency-Key. A request without
// the header goes straight to next.
func (id *idempotency) wrap(endpoint string, next http.HandlerFunc) http.HandlerFunc {
	replays := id.replays.WithLabelValues(endpoint)
	return func(w http.ResponseWriter, r *http.Request) {
		key, err := idempotencyKey(r)
		if err != nil {
			writeErr(w, err)
			return
		}
		if key == "" {
			next(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, jsonapi.MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				problem(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("request body is over %d bytes", jsonapi.MaxBodyBytes))
				return
			}
			problem(w, http.StatusBadRequest, "", "cannot read request body")
			return
		}
		value, limitKey := canonicalJSON(body)
		scope := endpoint + " " + r.URL.Path + "\x00" + limitKey + "\x00" + key
		request := sha256.Sum256(value)
		for {
			e, first := id.claim(scope, request)
			if e.request != request {
				problem(w, http.StatusUnprocessableEntity, idempotencyKeyHeader,
					idempotencyKeyHeader+": already used with a different request; use a new key for a new request")
				return
			}
			if first {
				r.Body = io.NopCloser(bytes.NewReader(body))
				rec := &answerRecorder{header: http.Header{}}
				settled := false
				defer func() {
					if !settled { // next panicked: the repeats waiting must not wait forever
						id.settle(e, &answerRecorder{status: http.StatusInternalServerError})
					}
				}()
				next(rec, r)
				id.settle(e, rec)
				settled = true
				writeAnswer(w, rec.header, rec.status, rec.buf.Bytes(), false)
				return
			}
			select {
			case <-e.done:
			case <-r.Context().Done():
				return // the caller went away
			}
			if e.recorded {
				replays.Inc()
				writeAnswer(w, e.header, e.status, e.answer, true)
				return
			}
			// The first request applied nothing: this one is decided anew.
		}
	}
}

// claim returns scope's entry, making it (first true) when there is none.
func (id *idempotency) claim(scope string, request [sha256.Size]byte) (e *idemEntry, first bool) {
	id.mu.Lock()
	defer id.mu.Unlock()
	now := id.now()
	for f := id.order.Front(); f != nil; f = id.order.Front() {
		old := f.Value.(*idemEntry)
		if old.expires.After(now) {
			break
		}
		id.forget(old)
	}
	if e := id.entries[scope]; e != nil {
		return e, false
	}
	e = &idemEntry{scope: scope, request: request, done: make(chan struct{}), expires: now.Add(id.ttl)}
	e.elem = id.order.PushBack(e)
	id.entries[scope] = e
	for id.order.Len() > id.max {
		id.forget(id.order.Front().Value.(*idemEntry))
	}
	return e, true
}

// settle records the first answer to e's key when it applied something
// (a 2xx status), or forgets the key when it did not, and wakes the
// repeats that wait for it.
func (id *idempotency) settle(e *idemEntry, rec *answerRecorder) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if rec.status >= 200 && rec.status < 300 {
		e.recorded, e.status, e.header, e.answer = true, rec.status, rec.header.Clone(), bytes.Clone(rec.buf.Bytes())
	} else {
		id.forget(e)
	}
	close(e.done)
}

// forget drops e, if it is still the entry of its scope. Repeats that wait
// for it still get its answer.
func (id *idempotency) forget(e *idemEntry) {
	if id.entries[e.scope] == e {
		delete(id.entries, e.scope)
		id.order.Remove(e.elem)
	}
}

// idempotencyKey reads the request's Idempotency-Key: "" when there is
// none, an error naming the header when it is malformed.
func idempotencyKey(r *http.Request) (string, error) {
	vs, ok := r.Header[idempotencyKeyHeader]
	if !ok {
		return "", nil
	}
	const field = idempotencyKeyHeader
	if len(vs) != 1 {
		return "", jsonapi.BadRequest(field, field+": must be sent once")
	}
	k := vs[0]
	if len(k) < 1 || len(k) > maxIdempotencyKeyLen {
		return "", jsonapi.BadRequest(field, field+": must be 1 to 128 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "", jsonapi.BadRequest(field, field+": must be printable ASCII")
		}
	}
	return k, nil
}

// canonicalJSON returns body as a JSON value written one way (object
// members sorted, no spaces), so that two bodies differ only when their
// values do, and the rate-limit key a take names ("key"), which scopes an
// Idempotency-Key as the limit does. A body that is not one JSON value is
// returned as it is: the handler refuses it, and nothing is recorded.
func canonicalJSON(body []byte) (value []byte, limitKey string) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, ""
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return body, ""
	}
	if m, ok := v.(map[string]any); ok {
		limitKey, _ = m["key"].(string)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body, ""
	}
	return out, limitKey
}

// answerRecorder is a ResponseWriter that keeps the answer, so that it can be
// recorded before it is sent.
type answerRecorder struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (rec *answerRecorder) Header() http.Header { return rec.header }

func (rec *answerRecorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
}

func (rec *answerRecorder) Write(p []byte) (int, error) {
	rec.WriteHeader(http.StatusOK)
	return rec.buf.Write(p)
}

// writeAnswer sends a recorded answer, marked as a replay or not.
func writeAnswer(w http.ResponseWriter, header http.Header, status int, body []byte, replayed bool) {
	for k, vs := range header {
		w.Header()[k] = append([]string(nil), vs...)
	}
	if replayed {
		w.Header().Set(replayedHeader, "true")
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(body)
}
