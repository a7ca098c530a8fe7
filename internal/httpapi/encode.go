package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// The decision answers (acquire, outcomes, take) are written by hand: they
// are the hot path, and encoding/json spends an allocation and a walk of
// the type by reflection on every one. Each append function writes exactly
// what json.Marshal writes for its type, and a test holds them equal with
// every field set, so a field added to a type fails that test until it is
// written here too.

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// contentTypeJSON is shared by every answer: net/http only reads it.
var contentTypeJSON = []string{"application/json"}

// writeAppended answers 200 with the JSON that appendBody writes, and a
// newline after it as json.Encoder writes.
func writeAppended(w http.ResponseWriter, appendBody func([]byte) []byte) {
	bp := bufPool.Get().(*[]byte)
	b := append(appendBody((*bp)[:0]), '\n')
	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	*bp = b
	bufPool.Put(bp)
}

func appendDecision(b []byte, d contract.Decision) []byte {
	b = append(b, `{"allowed":`...)
	b = strconv.AppendBool(b, d.Allowed)
	b = append(b, `,"state":`...)
	b = appendString(b, d.State)
	if d.Permit != "" {
		b = append(b, `,"permit":`...)
		b = appendString(b, d.Permit)
	}
	b = append(b, `,"retry_after_ms":`...)
	b = strconv.AppendInt(b, d.RetryAfterMS, 10)
	b = append(b, `,"cache_ttl_ms":`...)
	b = strconv.AppendInt(b, d.CacheTTLMS, 10)
	b = append(b, `,"generation":`...)
	b = strconv.AppendInt(b, d.Generation, 10)
	if d.Ignored != 0 {
		b = append(b, `,"ignored":`...)
		b = strconv.AppendInt(b, d.Ignored, 10)
	}
	b = append(b, `,"admit_percent":`...)
	b = strconv.AppendInt(b, d.AdmitPercent, 10)
	if d.RetryAllowance != nil {
		b = append(b, `,"retry_allowance":`...)
		b = strconv.AppendInt(b, *d.RetryAllowance, 10)
	}
	return append(b, '}')
}

func appendTake(b []byte, t contract.TakeResult) []byte {
	b = append(b, `{"allowed":`...)
	b = strconv.AppendBool(b, t.Allowed)
	b = append(b, `,"granted":`...)
	b = strconv.AppendInt(b, t.Granted, 10)
	b = append(b, `,"remaining":`...)
	b = strconv.AppendInt(b, t.Remaining, 10)
	b = append(b, `,"retry_after_ms":`...)
	b = strconv.AppendInt(b, t.RetryAfterMS, 10)
	return append(b, '}')
}

// appendString appends s as a JSON string, as encoding/json writes it.
// The strings here are states and permits, plain ASCII, written as they
// are; anything else goes through encoding/json for its escaping.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// setRateLimitHeaders sets a take's three RateLimit headers in two
// allocations: the numbers share one string and the values one array.
func setRateLimitHeaders(h http.Header, limit, remaining, resetSeconds int64) {
	var buf [3 * 20]byte
	b := strconv.AppendInt(buf[:0], limit, 10)
	i := len(b)
	b = strconv.AppendInt(b, remaining, 10)
	j := len(b)
	b = strconv.AppendInt(b, resetSeconds, 10)
	s := string(b)
	vs := [3]string{s[:i], s[i:j], s[j:]}
	all := vs[:]
	h["Ratelimit-Limit"] = all[0:1:1]
	h["Ratelimit-Remaining"] = all[1:2:2]
	h["Ratelimit-Reset"] = all[2:3:3]
}
