package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Script is a Lua script run atomically in the store. Make one per script
// source with NewScript, at package level.
type Script struct {
	name   string
	script *redis.Script
}

// NewScript wraps Lua source. name is used in metrics and errors.
func NewScript(name, src string) *Script {
	return &Script{name: name, script: redis.NewScript(src)}
}

// Name is the script's name.
func (sc *Script) Name() string { return sc.name }

// Run runs the script with EVALSHA, loading it with EVAL when the store
// answers NOSCRIPT (a restarted or flushed Redis), under the store's
// deadline. The reply is what go-redis decodes: int64, string, []any or nil
// (a Lua false or nil reply). Failures to reach the store wrap ErrUnavailable.
//
// A script that changes state must not be retried blindly after a late
// reply; the client is built with retries off for that reason (see newClient).
//
// Concurrent runs share round trips: see pipeline.go.
//
// A call that was sent and got no reply (a timeout, a lost connection, the
// caller's cancel after it was queued) may have run: its error also matches
// ErrMaybeApplied.
func (s *Store) Run(ctx context.Context, sc *Script, keys []string, args ...any) (any, error) {
	v, sent, err := s.runPipelined(ctx, sc, keys, args)
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		terr := translate(err)
		var rerr redis.Error
		if sent && !errors.As(err, &rerr) {
			terr = fmt.Errorf("%w (%w)", terr, ErrMaybeApplied)
		}
		return nil, &ScriptError{Script: sc.name, Err: terr}
	}
	return v, nil
}

// ErrMaybeApplied is matched by the error of a script run whose reply was
// lost after it was sent: the script may or may not have run.
var ErrMaybeApplied = errors.New("outcome unknown: the call may have been applied")

// ScriptError says which script failed. It unwraps to the cause, so
// errors.Is(err, ErrUnavailable) works through it.
type ScriptError struct {
	Script string
	Err    error
}

func (e *ScriptError) Error() string { return "script " + e.Script + ": " + e.Err.Error() }
func (e *ScriptError) Unwrap() error { return e.Err }

var readyScript = NewScript("ready", "return redis.call('TIME')[1]")

// Ready reports whether the store answers a script. A script, not PING: a
// Redis whose script cache was flushed, or that refuses scripts, must not
// look ready. The script is run by EVALSHA first, so a flushed cache is
// reloaded here too.
func (s *Store) Ready(ctx context.Context) error {
	_, err := s.Run(ctx, readyScript, nil)
	return err
}

// AddToSet adds members to the set at key.
func (s *Store) AddToSet(ctx context.Context, key string, members ...string) error {
	ctx, cancel := s.withDeadline(ctx)
	defer cancel()
	args := make([]any, len(members))
	for i, m := range members {
		args[i] = m
	}
	return translate(s.rdb.SAdd(ctx, key, args...).Err())
}

// RemoveFromSet removes members from the set at key.
func (s *Store) RemoveFromSet(ctx context.Context, key string, members ...string) error {
	ctx, cancel := s.withDeadline(ctx)
	defer cancel()
	args := make([]any, len(members))
	for i, m := range members {
		args[i] = m
	}
	return translate(s.rdb.SRem(ctx, key, args...).Err())
}

// SetMembers returns the members of the set at key, in no order.
func (s *Store) SetMembers(ctx context.Context, key string) ([]string, error) {
	ctx, cancel := s.withDeadline(ctx)
	defer cancel()
	v, err := s.rdb.SMembers(ctx, key).Result()
	return v, translate(err)
}

// Subscribe delivers the payloads published on channel until ctx ends. The
// subscription reconnects by itself after a store outage; messages published
// meanwhile are lost (pub/sub delivers at most once).
func (s *Store) Subscribe(ctx context.Context, channel string) <-chan string {
	out := make(chan string, 256)
	ps := s.rdb.Subscribe(ctx, channel)
	go func() {
		defer close(out)
		defer ps.Close()
		ch := ps.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				// The consumer must keep up (the event hub never blocks on its
				// streams); go-redis buffers meanwhile.
				select {
				case out <- m.Payload:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// LoadScript reads a Lua script from fsys: prelude.lua (unless prelude is
// empty) followed by name.lua, after a first line that defines CH, the events channel (a
// channel is not a key, so scripts cannot take it in KEYS on a Cluster).
// The script is named kind.name. It panics on a missing file: the files are
// embedded at build time.
func LoadScript(fsys fs.FS, kind, prelude, name string) *Script {
	var src strings.Builder
	fmt.Fprintf(&src, "local CH = %s\n", strconv.Quote(EventsChannel))
	if prelude != "" {
		src.Write(mustRead(fsys, prelude+".lua"))
		src.WriteByte('\n')
	}
	src.Write(mustRead(fsys, name+".lua"))
	return NewScript(kind+"."+name, src.String())
}

func mustRead(fsys fs.FS, name string) []byte {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	return b
}
