// Package storetest starts real stores for tests: an in-process miniredis
// with a clock the test controls, and a real redis-server on a free loopback
// port that the test can stop, restart and freeze.
package storetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/breakwater-dev/breakwater/internal/store"
)

func init() {
	// Tests stop Redis on purpose; go-redis's reconnect chatter is noise.
	store.SetLogger(slog.New(slog.DiscardHandler))
}

// Mini is a miniredis whose clock the test sets.
type Mini struct {
	M     *miniredis.Miniredis
	Store *store.Store
	now   time.Time
}

// NewMini starts a miniredis with its clock at start and opens a store on it.
func NewMini(t testing.TB, start time.Time) *Mini {
	t.Helper()
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		t.Fatalf("start miniredis: %v", err)
	}
	t.Cleanup(m.Close)
	m.SetTime(start)
	st, err := store.Open(store.Config{URL: "redis://" + m.Addr(), Timeout: Timeout})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return &Mini{M: m, Store: st, now: start}
}

// Now is the store's clock.
func (m *Mini) Now() time.Time { return m.now }

// Stop closes the miniredis and holds its port (see Redis.Stop) until the
// test ends: the store behind it is gone.
func (m *Mini) Stop(t testing.TB) {
	addr := m.M.Addr()
	m.M.Close()
	HoldPort(t, addr)
}

// HoldPort keeps addr (host:port) bound until the test ends, refusing
// every connection: use it after stopping any server a test expects to
// stay down, so that no other test's server starts on the freed port.
func HoldPort(t testing.TB, addr string) {
	h := holdPort(addr)
	t.Cleanup(h.release)
}

// Advance moves the store's clock (TIME and TTLs) forward by d.
func (m *Mini) Advance(d time.Duration) {
	m.now = m.now.Add(d)
	m.M.SetTime(m.now)
	m.M.FastForward(d)
}

// Redis is a redis-server process owned by a test.
type Redis struct {
	t     testing.TB
	Addr  string
	dir   string
	extra []string
	cmd   *exec.Cmd
	hold  *portHold // while stopped
}

// RequireRedisServer returns the path of redis-server. Without one it skips
// the test, except under CI (CI set), where a missing binary fails it.
func RequireRedisServer(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server not found under CI: .ci/run must install it")
		}
		t.Skip("redis-server not installed; apt-get install redis-server to run this test")
	}
	return path
}

// StartRedis starts a redis-server on a free loopback port, with no
// persistence, and stops it when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return StartRedisWith(t)
}

// StartRedisWith starts a redis-server like StartRedis, with extra
// command-line arguments (configuration directives).
func StartRedisWith(t testing.TB, extra ...string) *Redis {
	t.Helper()
	RequireRedisServer(t)
	r := &Redis{t: t, Addr: freeAddr(t), dir: t.TempDir(), extra: extra}
	r.Start()
	t.Cleanup(r.shutdown)
	return r
}

// URL is the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.Addr }

// Timeout is the deadline of one store call in the stores this package
// opens for tests: far longer than any call takes on a starved machine, so
// a test that is not about the deadline never meets it (a test that is
// passes its own to OpenURL).
const Timeout = 15 * time.Second

// Open opens a store on the server, with the generous Timeout.
func (r *Redis) Open(t testing.TB) *store.Store {
	t.Helper()
	return OpenURL(t, r.URL(), 0)
}

// OpenURL opens a store on url, with a timeout per call (zero: Timeout),
// closed when the test ends.
func OpenURL(t testing.TB, url string, timeout time.Duration) *store.Store {
	t.Helper()
	if timeout <= 0 {
		timeout = Timeout
	}
	st, err := store.Open(store.Config{URL: url, Timeout: timeout})
	if err != nil {
		t.Fatalf("open store %s: %v", url, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Start starts (or restarts, on the same port) the server and waits until
// it answers.
func (r *Redis) Start() {
	r.t.Helper()
	r.hold.release()
	r.hold = nil
	_, port, _ := net.SplitHostPort(r.Addr)
	args := append([]string{"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--protected-mode", "no"}, r.extra...)
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r.Do("PING") == "+PONG" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("redis-server on %s did not answer within 10s", r.Addr)
}

// Stop kills the server and waits for it to exit. Until Start its port
// stays bound, not listening: connections are refused as by any stopped
// Redis, and another test's server cannot start on the freed port and
// answer in its place.
func (r *Redis) Stop() {
	r.kill()
	if r.hold == nil {
		r.hold = holdPort(r.Addr)
	}
}

// shutdown kills the server for good, at the end of the test.
func (r *Redis) shutdown() {
	r.kill()
	r.hold.release()
	r.hold = nil
}

func (r *Redis) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGCONT) // a frozen server cannot die
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// portHold keeps a stopped server's port bound but not listening: a
// connection to it is refused, as to any stopped server, and no other
// server can be given the port meanwhile.
type portHold struct{ fd int }

func holdPort(addr string) *portHold {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host).To4()
	p, err := strconv.Atoi(port)
	if ip == nil || err != nil {
		return nil
	}
	sa := &syscall.SockaddrInet4{Port: p}
	copy(sa.Addr[:], ip)
	// Without SO_REUSEADDR no one else may bind the port at all. When the
	// stopped server's connections still linger in TIME_WAIT that bind
	// fails; with SO_REUSEADDR it works, and the kernel still never hands
	// the port to a server asking for any free port (port 0), which is how
	// every test server here gets its port.
	for _, reuse := range []int{0, 1} {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			return nil
		}
		syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, reuse)
		if err := syscall.Bind(fd, sa); err == nil {
			return &portHold{fd: fd}
		}
		syscall.Close(fd)
	}
	return nil
}

func (h *portHold) release() {
	if h == nil {
		return
	}
	syscall.Close(h.fd)
}

// Freeze stops the server process (SIGSTOP): it holds its connections and
// answers nothing, like a hung Redis.
func (r *Redis) Freeze() { r.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server.
func (r *Redis) Thaw() { r.cmd.Process.Signal(syscall.SIGCONT) }

// Do sends one inline command and returns the first reply line, or "" when
// the server does not answer. It needs no client library.
func (r *Redis) Do(args ...string) string {
	conn, err := net.DialTimeout("tcp", r.Addr, 500*time.Millisecond)
	if err != nil {
		return ""
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return ""
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimRight(line, "\r\n")
}

// freeAddr finds a free loopback port.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WaitReady polls st until it answers or the timeout passes.
func WaitReady(t testing.TB, st *store.Store, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := st.Ready(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store not ready after %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CommandStats returns Redis's INFO commandstats as command -> calls and
// usec_per_call. Benchmarks use it to count round trips and to read a
// script's own cost inside Redis.
func (r *Redis) CommandStats() map[string]CommandStat {
	conn, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return nil
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(conn, "*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
	rd := bufio.NewReader(conn)
	head, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		return nil
	}
	var n int
	fmt.Sscanf(head[1:], "%d", &n)
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(rd, buf); err != nil {
		return nil
	}
	out := map[string]CommandStat{}
	for _, line := range strings.Split(string(buf), "\r\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var st CommandStat
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				fmt.Sscanf(v, "%d", &st.Calls)
			case "usec_per_call":
				fmt.Sscanf(v, "%g", &st.UsecPerCall)
			}
		}
		out[strings.TrimPrefix(name, "cmdstat_")] = st
	}
	return out
}

// CommandStat is one command's line of INFO commandstats.
type CommandStat struct {
	Calls       int64
	UsecPerCall float64
}

// TotalCalls sums the calls of every command.
func TotalCalls(stats map[string]CommandStat) int64 {
	var n int64
	for _, s := range stats {
		n += s.Calls
	}
	return n
}
