package jsonapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeNamesTheField(t *testing.T) {
	type window struct {
		Type string `json:"type"`
		Size int64  `json:"size"`
	}
	type entry struct {
		OK    *bool  `json:"ok"`
		Count *int64 `json:"count"`
	}
	type body struct {
		Window  window  `json:"window"`
		Entries []entry `json:"entries"`
		Limit   int64   `json:"limit"`
	}
	tests := []struct {
		name, body string
		status     int
		field      string
	}{
		{"fine", `{"window":{"size":3},"entries":[{"ok":true}]}`, 0, ""},
		{"unknown top", `{"limt":3}`, 400, "limt"},
		{"unknown nested", `{"window":{"sizes":3}}`, 400, "window.sizes"},
		{"unknown in array", `{"entries":[{"ok":true},{"ok":true,"cnt":1}]}`, 400, "entries[1].cnt"},
		{"type top", `{"limit":"3"}`, 400, "limit"},
		{"type nested", `{"window":{"size":1.5}}`, 400, "window.size"},
		{"type in array", `{"entries":[{"count":1},{"count":"x"}]}`, 400, "entries[1].count"},
		{"not an object", `[1]`, 400, ""},
		{"malformed", `{"limit":`, 400, ""},
		{"trailing", `{} []`, 400, ""},
		{"not utf-8", "{\"window\":{\"type\":\"\xff\"}}", 400, ""},
		{"too big", `{"window":{"type":"` + strings.Repeat("x", MaxBodyBytes) + `"}}`, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v body
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			err := Decode(httptest.NewRecorder(), r, &v, false)
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("Decode(%s) = %v, want nil", tt.body, err)
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) || re.Status != tt.status || re.Field != tt.field {
				t.Fatalf("Decode(%.60s) = %#v, want status %d naming %q", tt.body, err, tt.status, tt.field)
			}
		})
	}
}
