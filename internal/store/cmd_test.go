package store

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

// TestScriptCommandIsGoRedis holds the commands the store builds for a
// script to those of go-redis's Script: the same digest, keys and
// arguments, EVALSHA and EVAL alike.
func TestScriptCommandIsGoRedis(t *testing.T) {
	ctx := context.Background()
	const src = "return {KEYS[1], ARGV[1]}"
	sc, gs := NewScript("t.cmd", src), redis.NewScript(src)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { rdb.Close() })
	pipe := rdb.Pipeline() // queued, never sent
	for _, tc := range []struct {
		keys []string
		args []any
	}{
		{[]string{"{b:x}:s", "{b:x}:w"}, []any{"x", 3, int64(-1), ""}},
		{[]string{"k"}, nil},
		{nil, []any{"a"}},
		{nil, nil},
	} {
		if got, want := sc.cmd(ctx, false, tc.keys, tc.args).Args(), gs.EvalSha(ctx, pipe, tc.keys, tc.args...).Args(); !cmp.Equal(got, want) {
			t.Errorf("EVALSHA %v %v: args differ (-go-redis +store):\n%s", tc.keys, tc.args, cmp.Diff(want, got))
		}
		if got, want := sc.cmd(ctx, true, tc.keys, tc.args).Args(), gs.Eval(ctx, pipe, tc.keys, tc.args...).Args(); !cmp.Equal(got, want) {
			t.Errorf("EVAL %v %v: args differ (-go-redis +store):\n%s", tc.keys, tc.args, cmp.Diff(want, got))
		}
	}
}
