package resilience

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// tracer is a Policy that logs entering and leaving under its name.
type tracer struct {
	name string
	log  *[]string
}

func (p tracer) Do(ctx context.Context, fn func(context.Context) error) error {
	*p.log = append(*p.log, p.name+">")
	err := fn(ctx)
	*p.log = append(*p.log, "<"+p.name)
	return err
}

func TestCompose(t *testing.T) {
	tests := []struct {
		name     string
		policies func(log *[]string) []Policy
		want     string
	}{
		{name: "none calls fn", policies: func(*[]string) []Policy { return nil }, want: "fn"},
		{name: "nil only calls fn", policies: func(*[]string) []Policy { return []Policy{nil, nil} }, want: "fn"},
		{
			name: "first is outermost",
			policies: func(log *[]string) []Policy {
				return []Policy{tracer{"a", log}, tracer{"b", log}, tracer{"c", log}}
			},
			want: "a> b> c> fn <c <b <a",
		},
		{
			name: "nested compositions flatten in place",
			policies: func(log *[]string) []Policy {
				return []Policy{tracer{"a", log}, nil, Compose(tracer{"b", log}, tracer{"c", log}), tracer{"d", log}}
			},
			want: "a> b> c> d> fn <d <c <b <a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			p := Compose(tt.policies(&log)...)
			err := p.Do(t.Context(), func(context.Context) error {
				log = append(log, "fn")
				return nil
			})
			if err != nil {
				t.Errorf("Do() = %v, want nil", err)
			}
			if got := strings.Join(log, " "); got != tt.want {
				t.Errorf("Do() ran %q, want %q", got, tt.want)
			}
		})
	}
}

// TestComposeRecommendedOrder runs the recommended order against a
// dependency that times out twice and then answers.
func TestComposeRecommendedOrder(t *testing.T) {
	var waits []time.Duration
	var fellBack error
	p := Compose(
		Fallback{Func: func(_ context.Context, err error) error { fellBack = err; return nil }},
		Retry{MaxAttempts: 3, jitter: randSeq(0), sleep: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			return nil
		}},
		NewBulkhead(1, 0),
		Timeout{Duration: time.Millisecond},
	)
	calls := 0
	err := p.Do(t.Context(), func(ctx context.Context) error {
		calls++
		if calls < 3 {
			<-ctx.Done() // the timeout fires
			return ctx.Err()
		}
		return nil
	})
	if err != nil || fellBack != nil {
		t.Errorf("Do() = %v, fell back on %v; want nil, no fallback", err, fellBack)
	}
	if calls != 3 || len(waits) != 2 {
		t.Errorf("Do() made %d calls and %d waits, want 3 and 2", calls, len(waits))
	}

	calls = 0
	err = p.Do(t.Context(), func(ctx context.Context) error {
		calls++
		<-ctx.Done()
		return ctx.Err()
	})
	if err != nil || !errors.Is(fellBack, ErrTimeout) || calls != 3 {
		t.Errorf("Do() = %v after %d calls, fell back on %v; want nil after 3 calls, fallback on %v", err, calls, fellBack, ErrTimeout)
	}
}

func TestCall(t *testing.T) {
	tests := []struct {
		name    string
		p       Policy
		results []string // fn's results in turn; "" is an error
		want    string
		wantErr error
	}{
		{name: "value", p: Compose(), results: []string{"a"}, want: "a"},
		{name: "error gives zero value", p: Compose(), results: []string{""}, wantErr: errBoom},
		{name: "value of the attempt that succeeded", p: Retry{sleep: (&fakeSleep{}).sleep}, results: []string{"", "", "c"}, want: "c"},
		{name: "zero value when retries run out", p: Retry{MaxAttempts: 2, sleep: (&fakeSleep{}).sleep}, results: []string{"", "", "c"}, wantErr: errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			i := 0
			v, err := Call(t.Context(), tt.p, func(context.Context) (string, error) {
				r := tt.results[i]
				i++
				got = append(got, r)
				if r == "" {
					return "partial", errBoom
				}
				return r, nil
			})
			if v != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Call() = %q, %v; want %q, %v", v, err, tt.want, tt.wantErr)
			}
			if !slices.Equal(got, tt.results[:i]) {
				t.Errorf("fn returned %v", got)
			}
		})
	}
}

func TestPolicyFunc(t *testing.T) {
	var p Policy = PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
		if err := fn(ctx); err != nil {
			return errors.Join(errBoom, err)
		}
		return nil
	})
	if err := p.Do(t.Context(), func(context.Context) error { return errOpen }); !errors.Is(err, errBoom) || !errors.Is(err, errOpen) {
		t.Errorf("Do() = %v, want an error matching %v and %v", err, errBoom, errOpen)
	}
}
