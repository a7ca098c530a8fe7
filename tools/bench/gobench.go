package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// goResult is one Go benchmark's medians over its runs.
type goResult struct {
	nsOp, allocsOp float64
}

// goBench runs the benchmarks of pkg that match pattern count times and
// returns each one's median ns/op and allocs/op, by name without the
// GOMAXPROCS suffix.
func goBench(pkg, pattern string, count int) (map[string]goResult, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", pattern, "-benchmem", "-count", strconv.Itoa(count), pkg)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go test -bench %s %s: %v\n%s", pattern, pkg, err, out)
	}
	runs := map[string][]goResult{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		var r goResult
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				r.nsOp = v
			case "allocs/op":
				r.allocsOp = v
			}
		}
		runs[name] = append(runs[name], r)
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("go test -bench %s %s ran no benchmark:\n%s", pattern, pkg, out)
	}
	med := map[string]goResult{}
	for name, rs := range runs {
		ns := make([]float64, len(rs))
		al := make([]float64, len(rs))
		for i, r := range rs {
			ns[i], al[i] = r.nsOp, r.allocsOp
		}
		med[name] = goResult{nsOp: median(ns), allocsOp: median(al)}
	}
	return med, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
