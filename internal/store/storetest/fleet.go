package storetest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Bulk sends one command and returns its reply whole: a bulk string's
// content, or the first line of any other reply.
func (r *Redis) Bulk(args ...string) string {
	return bulk(r.Addr, args...)
}

func bulk(addr string, args ...string) string {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(conn, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(conn, "$%d\r\n%s\r\n", len(a), a)
	}
	rd := bufio.NewReader(conn)
	head, err := rd.ReadString('\n')
	if err != nil {
		return ""
	}
	head = strings.TrimRight(head, "\r\n")
	if !strings.HasPrefix(head, "$") || head == "$-1" {
		return head
	}
	var n int
	fmt.Sscanf(head[1:], "%d", &n)
	buf := make([]byte, n)
	if _, err := io.ReadFull(rd, buf); err != nil {
		return ""
	}
	return string(buf)
}

// Cluster is a Redis Cluster of primaries (no replicas) on loopback.
type Cluster struct {
	Nodes []*Redis
}

// StartCluster starts n redis-servers in cluster mode, splits the 16384
// slots between them and waits until the cluster says it is ok.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{}
	for i := range n {
		dir := t.TempDir()
		c.Nodes = append(c.Nodes, StartRedisWith(t, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", i)),
			"--cluster-node-timeout", "2000"))
	}
	per := 16384 / n
	for i, node := range c.Nodes {
		lo, hi := i*per, (i+1)*per-1
		if i == n-1 {
			hi = 16383
		}
		if got := node.Do("CLUSTER", "ADDSLOTSRANGE", fmt.Sprint(lo), fmt.Sprint(hi)); got != "+OK" {
			t.Fatalf("CLUSTER ADDSLOTSRANGE on %s = %q", node.Addr, got)
		}
	}
	for _, node := range c.Nodes[1:] {
		host, port, _ := net.SplitHostPort(node.Addr)
		if got := c.Nodes[0].Do("CLUSTER", "MEET", host, port); got != "+OK" {
			t.Fatalf("CLUSTER MEET %s = %q", node.Addr, got)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, node := range c.Nodes {
			if !strings.Contains(node.Bulk("CLUSTER", "INFO"), "cluster_state:ok") {
				ok = false
			}
		}
		if ok {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok within 20s: %s", c.Nodes[0].Bulk("CLUSTER", "INFO"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// URL is the redis+cluster:// URL of the cluster.
func (c *Cluster) URL() string {
	u := "redis+cluster://" + c.Nodes[0].Addr
	sep := "?"
	for _, n := range c.Nodes[1:] {
		u += sep + "addr=" + n.Addr
		sep = "&"
	}
	return u
}

// Sentinel is a primary, a replica and three sentinels on loopback.
type Sentinel struct {
	Primary, Replica *Redis
	Sentinels        []*Redis
	Master           string
}

// StartSentinel starts a primary, a replica of it and three sentinels that
// watch it under the name "bw", with a short down-after so a failover takes
// seconds.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s := &Sentinel{Master: "bw"}
	s.Primary = StartRedis(t)
	host, port, _ := net.SplitHostPort(s.Primary.Addr)
	s.Replica = StartRedisWith(t, "--replicaof", host, port)
	for range 3 {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("sentinel monitor bw %s %s 2\nsentinel down-after-milliseconds bw 1000\nsentinel failover-timeout bw 5000\nsentinel parallel-syncs bw 1\n", host, port)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		s.Sentinels = append(s.Sentinels, startSentinelProcess(t, conf))
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i, sn := range s.Sentinels {
			b, _ := os.ReadFile(filepath.Join(sn.dir, "sentinel.log"))
			t.Logf("sentinel %d (%s) log:\n%s", i, sn.Addr, b)
		}
	})
	// Wait until the replica is in sync and every sentinel knows the others.
	deadline := time.Now().Add(20 * time.Second)
	for {
		synced := strings.Contains(s.Replica.Bulk("INFO", "replication"), "master_link_status:up")
		known := true
		for _, sn := range s.Sentinels {
			info := sn.Bulk("INFO", "sentinel")
			if !strings.Contains(info, "sentinels=3") || !strings.Contains(info, "slaves=1") {
				known = false
			}
		}
		if synced && known {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel setup not ready within 20s: replica synced %v, sentinels %q", synced, s.Sentinels[0].Bulk("INFO", "sentinel"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func startSentinelProcess(t testing.TB, conf string) *Redis {
	t.Helper()
	r := &Redis{t: t, Addr: freeAddr(t), dir: filepath.Dir(conf)}
	_, port, _ := net.SplitHostPort(r.Addr)
	r.cmd = exec.Command("redis-server", conf, "--sentinel", "--port", port, "--bind", "127.0.0.1", "--protected-mode", "no",
		"--logfile", filepath.Join(r.dir, "sentinel.log"))
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start sentinel: %v", err)
	}
	t.Cleanup(r.shutdown)
	deadline := time.Now().Add(10 * time.Second)
	for r.Do("PING") != "+PONG" {
		if time.Now().After(deadline) {
			t.Fatalf("sentinel on %s did not answer", r.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

// CurrentMaster returns the server that holds the primary role now: the one the
// test started as the primary, or its replica once the sentinels have
// promoted it.
func (s *Sentinel) CurrentMaster(t testing.TB) *Redis {
	t.Helper()
	for _, r := range []*Redis{s.Primary, s.Replica} {
		if strings.Contains(r.Bulk("INFO", "replication"), "role:master") {
			return r
		}
	}
	t.Fatalf("neither %s nor %s is a master", s.Primary.Addr, s.Replica.Addr)
	return nil
}

// WaitReplicated waits until the replica holds every write the master had
// taken when it was called: Redis replicates asynchronously, and a write
// the replica lacks is lost if the master dies. It returns how long that
// took.
func (s *Sentinel) WaitReplicated(t testing.TB, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	master := s.CurrentMaster(t)
	replica := s.Primary
	if master == s.Primary {
		replica = s.Replica
	}
	want := infoInt(master.Bulk("INFO", "replication"), "master_repl_offset")
	for {
		got := infoInt(replica.Bulk("INFO", "replication"), "slave_repl_offset")
		if want >= 0 && got >= want {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("replica %s at offset %d, not at the master's %d within %v", replica.Addr, got, want, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// infoInt reads field from an INFO reply, or -1.
func infoInt(info, field string) int64 {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			var n int64
			if _, err := fmt.Sscan(v, &n); err == nil {
				return n
			}
		}
	}
	return -1
}

// URL is the redis+sentinel:// URL of the set.
func (s *Sentinel) URL() string {
	u := "redis+sentinel://" + s.Sentinels[0].Addr + "?master_name=" + s.Master
	for _, sn := range s.Sentinels[1:] {
		u += "&addr=" + sn.Addr
	}
	return u
}
