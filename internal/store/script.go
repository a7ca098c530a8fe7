package store

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// Script is a Lua script run atomically in the store. Make one per script
// source with NewScript, at package level.
type Script struct {
	name string
	// The command's name and first argument, boxed once, as EVALSHA and as
	// EVAL (see cmd).
	sha, src any
	// once is the script wrapped for idempotent runs (see RunOnce); nil
	// for scripts made by NewScript.
	once *Script
	// coalesced says the script applies many requests in one run (see
	// LoadCoalesced).
	coalesced bool
}

// NewScript wraps Lua source. name is used in metrics and errors.
func NewScript(name, src string) *Script {
	sum := sha1.Sum([]byte(src))
	return &Script{name: name, sha: hex.EncodeToString(sum[:]), src: src}
}

// The names of the commands that run a script, boxed once.
var evalsha, eval any = "evalsha", "eval"

// cmd is the command that runs the script with keys and args: EVALSHA, or
// EVAL with the source when load is set. go-redis's Script builds the same
// command, boxing the command's name and the digest again on every call;
// each argument here is one value, as every caller passes them (go-redis
// would flatten a lone slice or struct argument).
func (sc *Script) cmd(ctx context.Context, load bool, keys []string, args []any) *redis.Cmd {
	a := make([]any, 3+len(keys)+len(args))
	if load {
		a[0], a[1] = eval, sc.src
	} else {
		a[0], a[1] = evalsha, sc.sha
	}
	a[2] = len(keys)
	for i, k := range keys {
		a[3+i] = k
	}
	copy(a[3+len(keys):], args)
	cmd := redis.NewCmd(ctx, a...)
	if len(keys) > 0 {
		cmd.SetFirstKeyPos(3) // a Cluster sends it to the first key's node
	}
	return cmd
}

// run runs the script on c, loading it when Redis does not have it (a
// restarted or flushed Redis answers NOSCRIPT).
func (sc *Script) run(ctx context.Context, c redis.UniversalClient, keys []string, args []any) (any, error) {
	cmd := sc.cmd(ctx, false, keys, args)
	_ = c.Process(ctx, cmd)
	if isNoScript(cmd.Err()) {
		cmd = sc.cmd(ctx, true, keys, args)
		_ = c.Process(ctx, cmd)
	}
	return cmd.Result()
}

// isNoScript reports Redis's refusal of an EVALSHA whose script it does
// not have: the call did not run.
func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
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
// It is contract.ErrMaybeApplied.
var ErrMaybeApplied = contract.ErrMaybeApplied

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

// LoadScript reads a Lua script from fsys: each prelude's .lua file in
// order, then name.lua, after a first line that defines CH, the events
// channel (a channel is not a key, so scripts cannot take it in KEYS on a
// Cluster). The script is named kind.name. It panics on a missing file:
// the files are embedded at build time.
//
// The script can also be run once per idempotency key (RunOnce): the same
// source inside onceWrapper.
func LoadScript(fsys fs.FS, kind, name string, preludes ...string) *Script {
	var src strings.Builder
	writePreludes(&src, fsys, preludes)
	src.Write(mustRead(fsys, name+".lua"))
	channel := fmt.Sprintf("local CH = %s\n", strconv.Quote(EventsChannel))
	sc := NewScript(kind+"."+name, channel+src.String())
	sc.once = NewScript(kind+"."+name+".once", channel+onceHead+"local once_reply = (function()\n"+src.String()+"\nend)()\n"+onceTail)
	return sc
}

func writePreludes(src *strings.Builder, fsys fs.FS, preludes []string) {
	for _, p := range preludes {
		src.Write(mustRead(fsys, p+".lua"))
		src.WriteByte('\n')
	}
}

func mustRead(fsys fs.FS, name string) []byte {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	return b
}

// IdempotencyTTL is how long a store remembers an idempotency key.
const IdempotencyTTL = contract.IdempotencyTTL

// ErrKeyReused is returned when an idempotency key comes back with a
// request other than the one it was first used for. It is
// contract.ErrKeyReused.
var ErrKeyReused = contract.ErrKeyReused

// Once names one logical request for RunOnce.
type Once struct {
	// Key is the store key of the request's record. It must share the
	// hash tag of the script's other keys (make it with ObjectKeys) and be
	// scoped to one endpoint and object.
	Key string
	// Hash is a digest of the request (see RequestHash); a repeat with
	// another hash is refused with ErrKeyReused.
	Hash string
}

// RunOnce runs a script loaded by LoadScript at most once per once.Key.
// The script run that applies the request checks the record and writes it,
// atomically with the script's own writes: a repeat within IdempotencyTTL,
// through any control plane, runs nothing and gets the first run's reply
// again with replayed true. A repeat with another hash gets ErrKeyReused.
//
// Only an array reply of integers and strings is recorded and replayed
// (integers come back as their decimal strings); any other reply (false
// for an object that does not exist, say) records nothing, since nothing
// was applied, so a repeat runs again.
func (s *Store) RunOnce(ctx context.Context, sc *Script, keys []string, once Once, args ...any) (v any, replayed bool, err error) {
	if sc.once == nil {
		return nil, false, fmt.Errorf("script %s cannot run once", sc.name)
	}
	ks := append(slices.Clip(keys), once.Key)
	as := append(slices.Clip(args), IdempotencyTTL.Milliseconds(), once.Hash)
	v, err = s.Run(ctx, sc.once, ks, as...)
	if err != nil {
		return nil, false, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) < 1 {
		return nil, false, fmt.Errorf("script %s: unexpected reply %v", sc.once.name, v)
	}
	switch n, _ := arr[0].(int64); {
	case n == 2:
		return nil, false, ErrKeyReused
	case len(arr) != 2:
		return nil, false, fmt.Errorf("script %s: unexpected reply %v", sc.once.name, v)
	default:
		return arr[1], n == 1, nil
	}
}

// RequestHash is the digest of a request for Once.Hash: SHA-256 over the
// parts, each length-prefixed so that no two lists of parts collide.
func RequestHash(parts ...[]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// recordLua reads and writes a request's idempotency record, for RunOnce
// and for coalesced runs alike: the record is "hash\n" followed by one
// line per element of the reply, numbers in decimal.
//
// record_seen(key, hash) is nil when key holds no record, {1, lines} (the
// first run's reply, every element a string) when it holds one for hash,
// and {2} when it holds one for another hash. record_write(key, hash,
// reply, ttl) records a reply that is a table, for ttl ms.
const recordLua = `
local function record_seen(key, hash)
  local seen = redis.call('GET', key)
  if not seen then
    return nil
  end
  if string.sub(seen, 1, #hash + 1) ~= hash .. '\n' then
    return {2}
  end
  local lines = {}
  for line in string.gmatch(string.sub(seen, #hash + 2), '([^\n]*)\n') do
    lines[#lines + 1] = line
  end
  return {1, lines}
end

local function record_write(key, hash, reply, ttl)
  if type(reply) ~= 'table' then
    return
  end
  local rec = {hash}
  for i = 1, #reply do
    local v = reply[i]
    if type(v) == 'number' then
      v = string.format('%d', v)
    end
    rec[#rec + 1] = v
  end
  redis.call('SET', key, table.concat(rec, '\n') .. '\n', 'PX', ttl)
end
`

// onceHead and onceTail wrap a script for RunOnce. The wrapped script takes
// one more key, the request's record, after its own, and two more
// arguments, the record's lifetime (ms) and the request's hash, after its
// own; both are taken off KEYS and ARGV before the script's code runs, so
// it sees what it always sees. Reply:
//
//	{0, reply}   the script ran; reply is its own
//	{1, lines}   a repeat: the first run's reply, every element a string
//	{2}          the key was first used with another hash; nothing ran
const onceHead = recordLua + `
local ONCE_KEY = table.remove(KEYS)
local ONCE_HASH = table.remove(ARGV)
local ONCE_TTL = table.remove(ARGV)
local once_prior = record_seen(ONCE_KEY, ONCE_HASH)
if once_prior then
  return once_prior
end
`

const onceTail = `
record_write(ONCE_KEY, ONCE_HASH, once_reply, ONCE_TTL)
return {0, once_reply}
`

var claimScript = NewScript("claim", `
-- KEYS[1] the claim; ARGV[1] the request's hash; ARGV[2] its lifetime, ms
-- Reply: 0 claimed now, 1 claimed before with this hash, 2 with another
local seen = redis.call('GET', KEYS[1])
if seen then
  if seen == ARGV[1] then return 1 end
  return 2
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 0
`)

// Claim ties an idempotency key to one request's hash for
// IdempotencyTTL: it reports whether key was claimed before with hash, and
// returns ErrKeyReused when it was claimed with another. For a request
// whose parts live in several slots (each made idempotent by RunOnce), so
// that a changed request is refused before any part runs.
func (s *Store) Claim(ctx context.Context, key, hash string) (before bool, err error) {
	v, err := s.Run(ctx, claimScript, []string{key}, hash, IdempotencyTTL.Milliseconds())
	if err != nil {
		return false, err
	}
	switch v {
	case int64(0):
		return false, nil
	case int64(1):
		return true, nil
	default:
		return false, ErrKeyReused
	}
}
