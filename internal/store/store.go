// Package store owns Breakwater's connection to Redis: the client (single
// node, Sentinel or Cluster), the embedded in-process store used when no
// Redis is named, running Lua scripts, key encoding and the translation of
// Redis failures into errors the rest of the program can act on.
//
// Nothing outside this package imports go-redis or miniredis.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// DefaultTimeout is the deadline of one store call when Config.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// senders is how many pipelines may be in flight at once. Two keep one
// batch filling while the other is on the wire; more only split the same
// calls into smaller batches, each paying its own system calls in the
// control plane and in Redis (docs/performance.md, "The store's pipelines").
const senders = 2

// ErrUnavailable is returned (wrapped) when the store cannot be reached or
// does not answer within its deadline. It is contract.ErrUnavailable, so
// that the HTTP layer answers 503 without knowing the store.
var ErrUnavailable = contract.ErrUnavailable

// Config says which store to open.
type Config struct {
	// URL names the Redis to use; see ParseURL for the accepted forms.
	// Empty starts an embedded in-memory store.
	URL string
	// Timeout bounds every store call. Zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives the store's few lifecycle messages. Nil discards them.
	Logger *slog.Logger
	// Observer, if set, is told of every round trip (for metrics).
	Observer Observer
	// CoalesceWindow is the least time between two coalesced runs for one
	// object (see RunCoalesced). Zero means DefaultCoalesceWindow; a
	// negative window coalesces only the requests that arrive while a run
	// is in flight.
	CoalesceWindow time.Duration
}

// Store is a connection to Redis or to the embedded store. It is safe for
// concurrent use. Close it when done.
type Store struct {
	rdb     redis.UniversalClient
	timeout time.Duration
	mini    *miniredis.Miniredis
	stop    chan struct{}
	done    chan struct{}
	desc    string
	calls   atomic.Int64

	observer Observer
	pipe     *pipeliner
	coal     *coalescer
}

// Open connects to the store cfg names, or starts the embedded store when
// cfg.URL is empty. It does not wait for Redis to answer: a control plane
// may start before its Redis and becomes ready when Redis does.
func Open(cfg Config) (*Store, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	s := &Store{timeout: timeout, observer: cfg.Observer}
	window := cfg.CoalesceWindow
	if window == 0 {
		window = DefaultCoalesceWindow
	}
	s.coal = newCoalescer(s, max(window, 0))
	if cfg.URL == "" {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("start embedded store: %w", err)
		}
		s.mini = m
		opt := &redis.Options{Addr: m.Addr(), MaxRetries: -1}
		setTimeouts(&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, timeout)
		opt.PoolTimeout, opt.ContextTimeoutEnabled = timeout, true
		s.rdb = redis.NewClient(opt)
		s.rdb.AddHook(observeHook{calls: &s.calls, observer: cfg.Observer})
		s.pipe = newPipeliner(s, senders)
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.driveClock()
		s.desc = "embedded"
		logger.Warn("embedded store: in memory, not persistent")
		return s, nil
	}
	rdb, desc, err := newClient(cfg.URL, timeout)
	if err != nil {
		return nil, err
	}
	s.rdb, s.desc = rdb, desc
	s.rdb.AddHook(observeHook{calls: &s.calls, observer: cfg.Observer})
	s.pipe = newPipeliner(s, senders)
	return s, nil
}

// newClient builds the go-redis client for a URL.
//
// go-redis never sends a command twice here. Retries are off for every
// client (MaxRetries -1), and for a Cluster so are redirects (MaxRedirects
// -1): a ClusterClient re-sends a command not only after MOVED or ASK but
// also after a lost connection or a read timeout, up to MaxRedirects times
// (3 by default, whatever MaxRetries says), and a script whose reply was
// lost may have run: it would run twice (count an outcome twice, hand out
// a second probe permit). The store re-sends only what Redis refused
// without running it (NOSCRIPT, MOVED: see pipeline.go); a caller that
// must retry a lost reply does so with an idempotency key (RunOnce). See
// docs/design.md, "Retries and idempotency".
//
// Every wait inside go-redis ends at the call's deadline (see
// docs/design.md, "One deadline per call"): ContextTimeoutEnabled makes
// it set each socket deadline to the earlier of the context's deadline and
// the read or write timeout (without it, a read gets a full timeout of its
// own from whenever it starts: after a pool wait, a dial and a connection
// handshake, each with their own timeouts), and PoolTimeout, which
// go-redis sets to the read timeout plus one second by default, is the
// store timeout.
func newClient(rawURL string, timeout time.Duration) (redis.UniversalClient, string, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, "", fmt.Errorf("redis url %q: want scheme://host:port", redactURL(rawURL))
	}
	base, mode, _ := strings.Cut(scheme, "+")
	if base != "redis" && base != "rediss" {
		return nil, "", fmt.Errorf("redis url %q: scheme must be redis, rediss, redis+sentinel or redis+cluster", redactURL(rawURL))
	}
	plain := base + "://" + rest
	switch mode {
	case "":
		opt, err := redis.ParseURL(plain)
		if err != nil {
			return nil, "", fmt.Errorf("redis url %q: %w", redactURL(rawURL), err)
		}
		opt.MaxRetries = -1
		opt.DialerRetries = dialOnce(opt.DialerRetries)
		setTimeouts(&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, timeout)
		opt.PoolTimeout, opt.ContextTimeoutEnabled = timeout, true
		opt.Dialer = refusalFailsTheCall(redis.NewDialer(opt))
		return redis.NewClient(opt), "redis " + opt.Addr, nil
	case "sentinel":
		opt, err := redis.ParseFailoverURL(plain)
		if err != nil {
			return nil, "", fmt.Errorf("redis url %q: %w", redactURL(rawURL), err)
		}
		if opt.MasterName == "" {
			return nil, "", fmt.Errorf("redis url %q: sentinel form needs ?master_name=", redactURL(rawURL))
		}
		opt.MaxRetries = -1
		opt.DialerRetries = dialOnce(opt.DialerRetries)
		setTimeouts(&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, timeout)
		opt.PoolTimeout, opt.ContextTimeoutEnabled = timeout, true
		opt.Dialer = refusalFailsTheCall(redis.NewDialer(&redis.Options{DialTimeout: opt.DialTimeout, TLSConfig: opt.TLSConfig}))
		return redis.NewFailoverClient(opt), "sentinel " + opt.MasterName + " via " + strings.Join(opt.SentinelAddrs, ","), nil
	case "cluster":
		opt, err := redis.ParseClusterURL(plain)
		if err != nil {
			return nil, "", fmt.Errorf("redis url %q: %w", redactURL(rawURL), err)
		}
		opt.MaxRetries = -1
		opt.MaxRedirects = -1
		opt.DialerRetries = dialOnce(opt.DialerRetries)
		setTimeouts(&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, timeout)
		opt.PoolTimeout, opt.ContextTimeoutEnabled = timeout, true
		opt.Dialer = refusalFailsTheCall(redis.NewDialer(&redis.Options{DialTimeout: opt.DialTimeout, TLSConfig: opt.TLSConfig}))
		return redis.NewClusterClient(opt), "cluster " + strings.Join(opt.Addrs, ","), nil
	default:
		return nil, "", fmt.Errorf("redis url %q: unknown mode %q (want sentinel or cluster)", redactURL(rawURL), mode)
	}
}

// dialOnce is the number of dial attempts a call makes: one, unless the
// URL names dialer_retries. go-redis dials five times, 100 ms apart, by
// default, so a dial error that comes at once (a refusal without
// refusalFailsTheCall, an unreachable network) would hold the call, and
// calls queued behind it in a pipeline, for 400 ms and more; the next call
// dials again. See docs/design.md, "One deadline per call".
func dialOnce(n int) int {
	if n > 0 {
		return n
	}
	return 1
}

// refusalFailsTheCall makes a refused connection (nothing listens: Redis
// is stopped or restarting) fail only the call that dialed: go-redis gets
// a connection whose first write fails, and closes it, instead of a dial
// error. go-redis counts dial errors, and after as many in a row as its
// pool has connections it stops dialing for calls and dials once a second
// on its own until that succeeds: the store would answer again up to a
// second after Redis does, and a client that probes once a second up to a
// second after that. A refused dial costs a loopback round trip, so every
// call may try. Other dial errors (timeouts, names that do not resolve)
// are still go-redis's to count. See docs/design.md, "One deadline per
// call".
func refusalFailsTheCall(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			return refusedConn{err: err, addr: refusedAddr{network, addr}}, nil
		}
		return c, err
	}
}

// refusedConn is a connection that was refused: every read and write
// fails with the refusal.
type refusedConn struct {
	err  error
	addr net.Addr
}

func (c refusedConn) Read([]byte) (int, error)       { return 0, c.err }
func (c refusedConn) Write([]byte) (int, error)      { return 0, c.err }
func (refusedConn) Close() error                     { return nil }
func (c refusedConn) LocalAddr() net.Addr            { return c.addr }
func (c refusedConn) RemoteAddr() net.Addr           { return c.addr }
func (refusedConn) SetDeadline(time.Time) error      { return nil }
func (refusedConn) SetReadDeadline(time.Time) error  { return nil }
func (refusedConn) SetWriteDeadline(time.Time) error { return nil }

type refusedAddr struct{ network, addr string }

func (a refusedAddr) Network() string { return a.network }
func (a refusedAddr) String() string  { return a.addr }

func setTimeouts(dial, read, write *time.Duration, d time.Duration) {
	for _, p := range []*time.Duration{dial, read, write} {
		if *p <= 0 || *p > d {
			*p = d
		}
	}
}

// redactURL hides the secrets of a Redis URL so it can be logged: the
// password of its userinfo and the value of every query parameter whose
// name says it is secret (password, sentinel_password, ...).
func redactURL(raw string) string {
	raw, query, hasQuery := strings.Cut(raw, "?")
	if hasQuery {
		query = redactQuery(query)
	}
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
				raw = scheme + "://" + user + ":xxxxx" + rest[at:]
			}
		}
	}
	if hasQuery {
		return raw + "?" + query
	}
	return raw
}

// redactQuery replaces the values of secret parameters in a raw query.
func redactQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if name, err := url.QueryUnescape(k); err != nil || secretParam(name) {
			parts[i] = k + "=xxxxx"
		}
	}
	return strings.Join(parts, "&")
}

// secretParam reports whether a query parameter's name says it holds a
// secret.
func secretParam(name string) bool {
	name = strings.ToLower(name)
	for _, s := range []string{"pass", "secret", "token", "auth", "credential"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// RedactURL returns raw with any password replaced, for logs.
func RedactURL(raw string) string { return redactURL(raw) }

// driveClock advances the embedded store's TTL clock with real time:
// miniredis expires keys only when told that time has passed.
func (s *Store) driveClock() {
	defer close(s.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.mini.FastForward(now.Sub(last))
			last = now
		}
	}
}

// String describes the store for logs, without secrets.
func (s *Store) String() string { return s.desc }

// Embedded reports whether this is the in-process store.
func (s *Store) Embedded() bool { return s.mini != nil }

// Close releases the connection and stops the embedded store if there is one.
func (s *Store) Close() error {
	close(s.coal.stop)
	s.pipe.close()
	err := s.rdb.Close()
	if s.mini != nil {
		close(s.stop)
		<-s.done
		s.mini.Close()
	}
	return err
}

// withDeadline gives ctx the store's deadline unless it already has an
// earlier one.
func (s *Store) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// translate turns a go-redis error into one of ours. Script error replies
// pass through unchanged (they are bugs, not outages); everything that means
// "Redis did not answer" becomes ErrUnavailable.
func translate(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "MOVED", "ASK", "READONLY", "NOREPLICAS", "OOM", "WRONGPASS", "NOAUTH", "NOPERM"} {
			if strings.HasPrefix(msg, p) {
				return fmt.Errorf("%w: %v", ErrUnavailable, err)
			}
		}
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// SetLogger sends go-redis's own messages (reconnects, pool errors) to l at
// warn level. It is process-wide, as go-redis's logger is.
func SetLogger(l *slog.Logger) { redis.SetLogger(slogAdapter{l}) }

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	a.l.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// EvictionPolicy returns Redis's maxmemory-policy, or "" when it cannot be
// read (a managed Redis may refuse CONFIG) or the store is embedded.
func (s *Store) EvictionPolicy(ctx context.Context) string {
	if s.mini != nil {
		return ""
	}
	ctx, cancel := s.withDeadline(ctx)
	defer cancel()
	v, err := s.rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		return ""
	}
	return v["maxmemory-policy"]
}
