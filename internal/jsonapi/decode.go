package jsonapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxBodyBytes caps request bodies; larger ones get 413.
const MaxBodyBytes = 1 << 20

// Decode reads a JSON body into v strictly: unknown fields, trailing data,
// wrong types and malformed JSON are 400s naming the field where there is
// one. An empty body leaves v as it is, when allowEmpty.
func Decode(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	return DecodeFast(w, r, v, allowEmpty, nil)
}

// DecodeFast is Decode with a fast path: when fast is not nil and accepts
// the body (valid UTF-8, within the size cap, not empty), v is what fast
// filled in; otherwise the body goes through Decode's strict decoder,
// which gives every error. fast must accept only bodies that the strict
// decoder decodes to the same v, and fill v exactly as it would.
func DecodeFast(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool, fast func([]byte) bool) error {
	if r.ContentLength == 0 && allowEmpty {
		return nil // no body at all (an acquire's usual request): nothing to read
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &RequestError{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("request body is over %d bytes", MaxBodyBytes)}
		}
		return BadRequest("", "cannot read request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return BadRequest("", "request body is empty; want a JSON object")
	}
	if !utf8.Valid(body) {
		// encoding/json would quietly turn bad bytes into U+FFFD, and two
		// different keys into one.
		return BadRequest("", "request body is not valid UTF-8")
	}
	if fast != nil && fast(body) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, body, v)
	}
	if dec.More() {
		return BadRequest("", "request body holds more than one JSON value")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return BadRequest("", "request body holds more than one JSON value")
	}
	return nil
}

// jsonError turns an encoding/json error into a 400 naming the field.
func jsonError(err error, body []byte, v any) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return BadRequest("", fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se))
	case errors.As(err, &te):
		field := te.Field
		if path := typePath(body, reflect.TypeOf(v), te); path != "" {
			field = path
		}
		if field == "" {
			return BadRequest("", fmt.Sprintf("request body must be a JSON object, not %s", te.Value))
		}
		return BadRequest(field, fmt.Sprintf("%s: must be %s, not %s", field, jsonKind(te.Type.Kind().String()), te.Value))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return BadRequest("", "malformed JSON: unexpected end of body")
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		field := strings.Trim(rest, `"`)
		if path := unknownPath(body, reflect.TypeOf(v)); path != "" {
			field = path
		}
		return BadRequest(field, fmt.Sprintf("unknown field %q", field))
	}
	return BadRequest("", "malformed JSON: "+strings.TrimPrefix(msg, "json: "))
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "int32", "uint", "uint64":
		return "an integer"
	case "float64", "float32":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "of another type"
}

// unknownPath finds the first field of body that t does not know, as a
// path such as "window.sizes" or "outcomes[3].latency". encoding/json
// names only the last part.
func unknownPath(body []byte, t reflect.Type) string {
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	return walk(doc, t, "", func(path string, val any, ft reflect.Type) bool { return ft == nil })
}

// typePath finds the field of body whose value has the wrong type, as a
// path with array indexes ("outcomes[2].count"), where encoding/json
// leaves the indexes out.
func typePath(body []byte, t reflect.Type, te *json.UnmarshalTypeError) string {
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	want := strings.Split(te.Field, ".")
	return walk(doc, t, "", func(path string, val any, ft reflect.Type) bool {
		if ft == nil || stripIndexes(path) != strings.Join(want, ".") {
			return false
		}
		switch val.(type) {
		case map[string]any, []any:
			return false
		}
		return !fits(val, ft)
	})
}

func stripIndexes(path string) string {
	var b strings.Builder
	skip := false
	for _, r := range path {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// fits reports whether a decoded JSON scalar can go into a Go type.
func fits(val any, t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch x := val.(type) {
	case nil:
		return true
	case bool:
		return t.Kind() == reflect.Bool
	case string:
		return t.Kind() == reflect.String
	case float64:
		switch t.Kind() {
		case reflect.Float32, reflect.Float64:
			return true
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return x == float64(int64(x)) && x >= -9.2e18 && x <= 9.2e18
		}
	}
	return false
}

// walk visits every member of doc with the Go type it decodes into (nil
// when the type has no such field), depth first in document order, and
// returns the path of the first one found accepts.
func walk(doc any, t reflect.Type, path string, found func(path string, val any, ft reflect.Type) bool) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch x := doc.(type) {
	case map[string]any:
		if t == nil || t.Kind() != reflect.Struct {
			return ""
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			ft := fieldType(t, k)
			if found(p, x[k], ft) {
				return p
			}
			if ft != nil {
				if r := walk(x[k], ft, p, found); r != "" {
					return r
				}
			}
		}
	case []any:
		if t == nil || t.Kind() != reflect.Slice {
			return ""
		}
		for i, e := range x {
			p := fmt.Sprintf("%s[%d]", path, i)
			if found(p, e, t.Elem()) {
				return p
			}
			if r := walk(e, t.Elem(), p, found); r != "" {
				return r
			}
		}
	}
	return ""
}

// fieldType is the type of the field of struct t named name in JSON, as
// encoding/json matches it (exact tag first, then case-insensitively).
func fieldType(t reflect.Type, name string) reflect.Type {
	var fold reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := strings.Split(f.Tag.Get("json"), ",")[0]
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f.Type
		}
		if fold == nil && strings.EqualFold(tag, name) {
			fold = f.Type
		}
	}
	return fold
}
