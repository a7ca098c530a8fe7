package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// Config versions over HTTP: GET and PUT answers carry ETag: "<version>";
// a PUT may carry If-Match (one or more versions, or *) or
// If-None-Match: * (create only). The put script checks the condition in
// the same run that writes (see docs/design.md, "Config versions").

// setETag sets the strong entity tag of a config version.
func setETag(w http.ResponseWriter, version int64) {
	w.Header().Set("ETag", `"`+strconv.FormatInt(version, 10)+`"`)
}

// precondition reads If-Match and If-None-Match. A weak tag (W/"3") is
// well formed but never matches: If-Match compares strongly (RFC 9110,
// 13.1.1). Anything else malformed is a 400 naming the header.
func precondition(r *http.Request) (contract.Precondition, error) {
	var p contract.Precondition
	im, inm := r.Header.Values("If-Match"), r.Header.Values("If-None-Match")
	if len(im) > 0 && len(inm) > 0 {
		return p, badRequest("If-Match", "If-Match and If-None-Match: send one or the other")
	}
	if len(inm) > 0 {
		if v := strings.TrimSpace(strings.Join(inm, ",")); v != "*" {
			return p, badRequest("If-None-Match", `If-None-Match: only * (create only) is supported on PUT, got `+strconv.Quote(v))
		}
		p.MustNotExist = true
		return p, nil
	}
	if len(im) == 0 {
		return p, nil
	}
	if strings.TrimSpace(strings.Join(im, ",")) == "*" {
		p.MustExist = true
		return p, nil
	}
	p.Match = true
	for _, v := range im {
		for tag := range strings.SplitSeq(v, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "" {
				continue
			}
			weak := strings.HasPrefix(tag, "W/")
			q := strings.TrimPrefix(tag, "W/")
			if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
				return p, badRequest("If-Match", fmt.Sprintf(`If-Match: %q is not an entity tag; send the ETag of a GET, such as "3"`, tag))
			}
			n, err := strconv.ParseInt(q[1:len(q)-1], 10, 64)
			if err != nil || n < 1 {
				return p, badRequest("If-Match", fmt.Sprintf(`If-Match: %s is not a config version this server issued`, tag))
			}
			if !weak {
				p.Versions = append(p.Versions, n)
			}
		}
	}
	return p, nil
}

// writeConflict answers a PUT's error: a precondition that did not hold is
// a 412 naming the header at fault and the version now in force (also in
// ETag, so the client can GET, merge and retry); anything else goes to
// writeError.
func (a *API) writeConflict(w http.ResponseWriter, r *http.Request, err error) {
	var vc *contract.VersionConflict
	if !errors.As(err, &vc) {
		a.writeError(w, r, err)
		return
	}
	p := Problem{Status: http.StatusPreconditionFailed, Field: "If-Match"}
	switch {
	case r.Header.Get("If-None-Match") != "":
		p.Field = "If-None-Match"
		p.Detail = fmt.Sprintf("If-None-Match: * creates only, and %s exists at config version %d", r.URL.Path, vc.Current)
	case !vc.Exists:
		p.Detail = fmt.Sprintf("If-Match: %s does not exist", r.URL.Path)
	default:
		p.Detail = fmt.Sprintf("If-Match: %s is at config version %d, not %s; GET it, apply your change to it and PUT again with If-Match: \"%d\"",
			r.URL.Path, vc.Current, strings.Join(r.Header.Values("If-Match"), ", "), vc.Current)
	}
	if vc.Exists {
		setETag(w, vc.Current)
	}
	a.writeError(w, r, &requestError{Status: p.Status, Field: p.Field, Detail: p.Detail})
}

// historyLimit reads ?limit= of a history request: 1..max, default def.
func historyLimit(r *http.Request, def, max int) (int, error) {
	s := r.URL.Query().Get("limit")
	if !r.URL.Query().Has("limit") {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, badRequest("limit", "limit: must be an integer between 1 and "+strconv.Itoa(max))
	}
	return n, nil
}

// breakerHistory serves GET /v1/breakers/{name}/history.
func (a *API) breakerHistory(w http.ResponseWriter, r *http.Request) {
	limit, err := historyLimit(r, contract.DefaultHistoryLimit, contract.HistoryKept)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	vs, err := a.breakers.History(r.Context(), chi.URLParam(r, "name"), limit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
}

// rateLimitHistory serves GET /v1/ratelimits/{name}/history.
func (a *API) rateLimitHistory(w http.ResponseWriter, r *http.Request) {
	limit, err := historyLimit(r, contract.DefaultHistoryLimit, contract.HistoryKept)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	vs, err := a.limits.History(r.Context(), chi.URLParam(r, "name"), limit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
}
