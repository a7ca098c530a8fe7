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

func (p *processes) start(logPath, bin string, args ...string) error {
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	p.cmds = append(p.cmds, cmd)
	return nil
}

func (p *processes) startRedis(addr, dir string) error {
	_, port, _ := net.SplitHostPort(addr)
	if err := p.start(dir+"/redis.log", "redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "no"); err != nil {
		return err
	}
	r := redisCLI{addr: addr}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if out, err := r.do("PING"); err == nil && strings.TrimSpace(out) == "PONG" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not answer within 10s", addr)
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
