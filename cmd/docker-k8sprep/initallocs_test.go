package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hacluster/hacluster/cmd/docker-k8sprep/internal/fastpath"
)

// The Docker CLI runs `docker-k8sprep docker-cli-plugin-metadata` for every
// `docker --help`, `docker info` and completion. Its start-up must cost no
// more than that of a bare plugin.Run binary (testdata/bareplugin: the same
// docker/cli, one cobra command) times maxInitRatio, counted in what package
// initialisation allocates (GODEBUG=inittrace=1): a figure that does not
// depend on the speed of the machine. maxInitAllocs bounds the count itself
// (the fast path allocates about 280 objects at init, the bare plugin 6,600,
// docker-k8sprep with every package initialised 32,800).
const (
	maxInitRatio  = 1.2
	maxInitAllocs = 1500
)

type initCost struct {
	allocs, bytes, packages int
}

func (c initCost) String() string {
	return fmt.Sprintf("%d allocs, %d bytes in %d package inits", c.allocs, c.bytes, c.packages)
}

// initTrace runs bin with GODEBUG=inittrace=1 and sums its init lines
// ("init PKG @T ms, C ms clock, B bytes, A allocs").
func initTrace(t *testing.T, env []string, bin string, args ...string) (initCost, result) {
	t.Helper()
	r := runCmd(t, append([]string{"GODEBUG=inittrace=1", "DOCKER_CONFIG=" + t.TempDir(), "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND="}, env...), bin, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d\n%s", bin, strings.Join(args, " "), r.code, r.stderr)
	}
	var c initCost
	var rest []string
	sc := bufio.NewScanner(strings.NewReader(r.stderr))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 11 || f[0] != "init" || f[8] != "bytes," || f[10] != "allocs" {
			rest = append(rest, sc.Text())
			continue
		}
		b, err1 := strconv.Atoi(f[7])
		a, err2 := strconv.Atoi(f[9])
		if err1 != nil || err2 != nil {
			t.Fatalf("unexpected inittrace line %q", sc.Text())
		}
		c.allocs += a
		c.bytes += b
		c.packages++
	}
	if c.packages < 20 {
		t.Fatalf("%s: only %d inittrace lines: is GODEBUG=inittrace=1 honoured?\n%s", bin, c.packages, r.stderr)
	}
	r.stderr = strings.Join(rest, "\n")
	return c, r
}

// buildStripped builds pkg the way `make build` does (-trimpath -ldflags
// '-s -w'), CGO off like the release archives.
func buildStripped(t *testing.T, pkg, name string) string {
	t.Helper()
	b := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", b, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return b
}

func TestInitAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	bin := filepath.Join(os.Getenv("HACLUSTER_BIN"), "docker-k8sprep")
	if os.Getenv("HACLUSTER_BIN") == "" {
		bin = buildStripped(t, ".", "docker-k8sprep")
	} else if _, err := os.Stat(bin); err != nil {
		t.Fatalf("HACLUSTER_BIN has no docker-k8sprep (run `make build`): %v", err)
	}
	bare := buildStripped(t, "./testdata/bareplugin", "docker-bareplugin")

	refMeta, _ := initTrace(t, nil, bare, "docker-cli-plugin-metadata")
	refCmd, r := initTrace(t, nil, bare, "bareplugin")
	if r.stdout != "bareplugin\n" {
		t.Fatalf("bare plugin: %+v", r)
	}
	t.Logf("bare plugin.Run, docker-cli-plugin-metadata: %v", refMeta)
	t.Logf("bare plugin.Run, its one command:            %v", refCmd)
	full, _ := initTrace(t, []string{fastpath.DisableEnv + "=1"}, bin, "docker-cli-plugin-metadata")
	t.Logf("docker-k8sprep, every package initialised:   %v", full)

	docker := []string{"DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND=docker"}
	for _, c := range []struct {
		name string
		env  []string
		args []string
		ref  initCost
	}{
		{"docker-cli-plugin-metadata", nil, []string{"docker-cli-plugin-metadata"}, refMeta},
		{"docker k8sprep version", docker, []string{"k8sprep", "version"}, refCmd},
		{"docker k8sprep version -o json", docker, []string{"k8sprep", "version", "-o", "json"}, refCmd},
		{"docker-k8sprep version", nil, []string{"version"}, refCmd},
	} {
		got, r := initTrace(t, c.env, bin, c.args...)
		if r.stderr != "" || r.stdout == "" {
			t.Errorf("%s: stdout %q, stderr %q", c.name, r.stdout, r.stderr)
		}
		ratio := float64(got.allocs) / float64(c.ref.allocs)
		t.Logf("docker-k8sprep, %-31s %v: %.2fx the allocs, %.2fx the bytes of the bare plugin", c.name+":", got,
			ratio, float64(got.bytes)/float64(c.ref.bytes))
		if ratio > maxInitRatio || float64(got.bytes) > maxInitRatio*float64(c.ref.bytes) {
			t.Errorf("%s: init allocates %v, more than %.1fx the bare plugin.Run binary's %v", c.name, got, maxInitRatio, c.ref)
		}
		if got.allocs > maxInitAllocs {
			t.Errorf("%s: init allocates %v, more than the bound of %d allocs", c.name, got, maxInitAllocs)
		}
	}
}
