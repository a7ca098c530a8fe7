// Package deploy holds what runs Breakwater outside Go: the compose file's
// companions (Prometheus config, demo tokens) and the test that checks the
// compose file without a Docker engine.
package deploy

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeFile loads docker-compose.yml with the Compose specification's
// own loader (schema validation included) and checks what Docker would
// only find at run time: build contexts, binaries, mounted files, the names
// of environment variables, health checks and start order.
func TestComposeFile(t *testing.T) {
	root, _ := filepath.Abs("..")
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithResolvedPaths(true), cli.WithConsistency(true))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}

	binaries, envNames := binariesAndEnv(t, root)
	want := []string{"agent", "controlplane-a", "controlplane-b", "demo-upstream", "grafana", "prometheus", "redis"}
	var got []string
	for name := range project.Services {
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("services = %v, want %v", got, want)
	}
	builds := 0
	for name, svc := range project.Services {
		if svc.Image == "" && svc.Build == nil {
			t.Errorf("%s: neither image nor build", name)
		}
		if svc.Build != nil {
			builds++
			df := filepath.Join(svc.Build.Context, "Dockerfile")
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s: build context has no Dockerfile: %v", name, err)
			}
		}
		if svc.Image == "breakwater:dev" {
			bin := "controlplane"
			if len(svc.Entrypoint) > 0 {
				bin = svc.Entrypoint[0]
			}
			if !binaries[bin] {
				t.Errorf("%s: runs %q, which is not a binary under cmd/ (have %v)", name, bin, binaries)
			}
		}
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: mounts %s, which does not exist", name, v.Source)
				}
			}
		}
		for k := range svc.Environment {
			if (strings.HasPrefix(k, "BREAKWATER_") || strings.HasPrefix(k, "DEMO_")) && !envNames[k] {
				t.Errorf("%s: sets %s, which no binary reads", name, k)
			}
		}
		if name != "prometheus" && svc.HealthCheck == nil {
			t.Errorf("%s: no healthcheck", name)
		}
		for dep, cond := range svc.DependsOn {
			other, ok := project.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown %s", name, dep)
				continue
			}
			if cond.Condition == types.ServiceConditionHealthy && other.HealthCheck == nil {
				t.Errorf("%s waits for %s to be healthy, but it has no healthcheck", name, dep)
			}
		}
	}
	if builds == 0 {
		t.Error("no service builds the image")
	}
	redis := project.Services["redis"]
	cmd := strings.Join(redis.Command, " ")
	if !strings.Contains(cmd, "--appendonly yes") || !strings.Contains(cmd, "--maxmemory-policy noeviction") {
		t.Errorf("redis command %q: want AOF persistence and noeviction", cmd)
	}
}

// binariesAndEnv lists the binaries under cmd/ and every environment
// variable their sources read.
func binariesAndEnv(t *testing.T, root string) (map[string]bool, map[string]bool) {
	t.Helper()
	bins, envs := map[string]bool{}, map[string]bool{}
	dirs, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"((?:BREAKWATER|DEMO)_[A-Z_]+)"`)
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		bins[d.Name()] = true
		files, _ := filepath.Glob(filepath.Join(root, "cmd", d.Name(), "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, _ := os.ReadFile(f)
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				envs[m[1]] = true
			}
		}
	}
	return bins, envs
}
