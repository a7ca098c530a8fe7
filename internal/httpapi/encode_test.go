package httpapi

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/internal/breaker"
	"github.com/breakwater-dev/breakwater/internal/ratelimit"
)

// filled returns v with every exported field set to a value that is not
// its zero: a field added to the type shows up in json.Marshal's output,
// and the hand-written encoder must write it too.
func filled[T any](t *testing.T, seed int64) T {
	t.Helper()
	var v T
	rv := reflect.ValueOf(&v).Elem()
	for i := range rv.NumField() {
		f := rv.Field(i)
		if !rv.Type().Field(i).IsExported() {
			continue
		}
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(seed%2 == 1)
		case reflect.Int, reflect.Int64, reflect.Int32:
			f.SetInt(seed*int64(i+1) - 7)
		case reflect.Float64:
			f.SetFloat(float64(seed) + 0.5)
		case reflect.String:
			f.SetString("s<" + rv.Type().Field(i).Name + `>"\é`)
		case reflect.Pointer:
			if f.Type() == reflect.TypeOf((*int64)(nil)) {
				n := seed*int64(i+1) - 7
				f.Set(reflect.ValueOf(&n))
				continue
			}
			t.Fatalf("%s.%s: a pointer field; teach this test and the encoder about it", rv.Type(), rv.Type().Field(i).Name)
		case reflect.Struct:
			if f.Type() == reflect.TypeOf(time.Time{}) {
				f.Set(reflect.ValueOf(time.UnixMilli(seed * 1000).UTC()))
				continue
			}
			t.Fatalf("%s.%s: a struct field; teach this test and the encoder about it", rv.Type(), rv.Type().Field(i).Name)
		default:
			t.Fatalf("%s.%s: kind %s; teach this test and the encoder about it", rv.Type(), rv.Type().Field(i).Name, f.Kind())
		}
	}
	return v
}

func TestAppendMatchesEncodingJSON(t *testing.T) {
	decisions := []breaker.Decision{
		filled[breaker.Decision](t, 1),
		filled[breaker.Decision](t, 2),
		{},
		{Allowed: true, State: "closed", CacheTTLMS: 1000, Generation: 3},
		{State: "half_open", Permit: "4.17", RetryAfterMS: 250, CacheTTLMS: 250, Generation: 4, Ignored: 2},
		{Allowed: true, State: "closed", CacheTTLMS: 1000, Generation: 5, AdmitPercent: 37, RetryAllowance: new(int64)},
	}
	for _, d := range decisions {
		want, _ := json.Marshal(d)
		if got := appendDecision(nil, d); string(got) != string(want) {
			t.Errorf("appendDecision(%+v) = %s, want %s as encoding/json writes it", d, got, want)
		}
	}
	takes := []ratelimit.TakeResult{
		filled[ratelimit.TakeResult](t, 1),
		filled[ratelimit.TakeResult](t, 2),
		{},
		{Allowed: true, Granted: 1, Remaining: 99},
	}
	for _, r := range takes {
		want, _ := json.Marshal(r)
		if got := appendTake(nil, r); string(got) != string(want) {
			t.Errorf("appendTake(%+v) = %s, want %s as encoding/json writes it", r, got, want)
		}
	}
}
