package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// processes are the servers of one run, stopped together at its end.
type processes struct{ cmds []*exec.Cmd }

// start starts a server and returns its process id.
func (p *processes) start(logPath, bin string, args ...string) (int, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", bin, err)
	}
	p.cmds = append(p.cmds, cmd)
	return cmd.Process.Pid, nil
}

func (p *processes) startRedis(addr, dir string) (int, error) {
	_, port, _ := net.SplitHostPort(addr)
	pid, err := p.start(dir+"/redis.log", "redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "no")
	if err != nil {
		return 0, err
	}
	r := redisCLI{addr: addr}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if out, err := r.do("PING"); err == nil && strings.TrimSpace(out) == "PONG" {
			return pid, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("redis-server on %s did not answer within 10s", addr)
}

// cpuTime is the processor time a process has used so far, its threads'
// user and system time together, from /proc (Linux): 0 and false where
// there is none.
func cpuTime(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	return parseStat(string(b))
}

// parseStat reads user and system time from a /proc/PID/stat line.
func parseStat(b string) (time.Duration, bool) {
	// The command's name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis, where the state is field 3.
	i := strings.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, false
	}
	// Clock ticks of USER_HZ, 100 a second on every Linux architecture Go
	// supports.
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

func (p *processes) stop() {
	for _, c := range p.cmds {
		c.Process.Kill()
		c.Wait()
	}
}

// redisCLI talks to the run's redis-server through redis-cli, which comes
// with it.
type redisCLI struct{ addr string }

func (r redisCLI) do(args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(r.addr)
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).Output()
	return string(out), err
}

func (r redisCLI) resetStats() error {
	_, err := r.do("CONFIG", "RESETSTAT")
	return err
}

// evalshaUS is usec_per_call of EVALSHA since the last reset: the scripts'
// own time inside Redis, queueing and network excluded.
func (r redisCLI) evalshaUS() (float64, error) {
	perCall, _, err := r.evalsha()
	return perCall, err
}

// evalsha is usec_per_call and usec (the total) of EVALSHA since the last
// reset.
func (r redisCLI) evalsha() (perCall, total float64, err error) {
	out, err := r.do("INFO", "commandstats")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "usec_per_call="); ok {
				perCall, _ = strconv.ParseFloat(v, 64)
			}
			if v, ok := strings.CutPrefix(f, "usec="); ok {
				total, _ = strconv.ParseFloat(v, 64)
			}
		}
		return perCall, total, nil
	}
	return 0, 0, fmt.Errorf("no evalsha in INFO commandstats")
}

func describeMachine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	goVer, _ := exec.Command("go", "env", "GOVERSION").Output()
	redisVer, _ := exec.Command("redis-server", "--version").Output()
	rv := strings.Fields(string(redisVer))
	ver := "redis-server"
	for _, f := range rv {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			ver += " " + v
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	la := strings.Fields(string(load))
	if len(la) > 3 {
		la = la[:3]
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS), %s, %s, load average %s at start",
		cpu, numCPU(), strings.TrimSpace(string(goVer)), ver, strings.Join(la, " "))
}
