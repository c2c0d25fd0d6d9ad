package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/version"
)

// The test binary re-executes itself as the real main() when
// HACLUSTER_TEST_MAIN=1, so metadata and standalone runs are tested as a
// process, exactly as the Docker CLI sees them.
func TestMain(m *testing.M) {
	if os.Getenv("HACLUSTER_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type result struct {
	stdout, stderr string
	code           int
}

func runCmd(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func runSelf(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, []string{"HACLUSTER_TEST_MAIN=1", "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND="}, os.Args[0], args...)
}

// Field names and values the Docker CLI reads from docker-cli-plugin-metadata.
type pluginMetadata struct {
	SchemaVersion    string `json:"SchemaVersion"`
	Vendor           string `json:"Vendor"`
	Version          string `json:"Version"`
	ShortDescription string `json:"ShortDescription"`
	URL              string `json:"URL"`
}

func checkMetadata(t *testing.T, stdout string) pluginMetadata {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("metadata is not JSON: %v\n%s", err, stdout)
	}
	var md pluginMetadata
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&md); err != nil {
		t.Fatalf("metadata has unexpected fields: %v\n%s", err, stdout)
	}
	if md.SchemaVersion != "0.1.0" {
		t.Errorf("SchemaVersion = %q, want 0.1.0", md.SchemaVersion)
	}
	if md.Vendor == "" {
		t.Error("Vendor is empty: the Docker CLI rejects the plugin")
	}
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+`).MatchString(md.Version) {
		t.Errorf("Version = %q, want v-prefixed semver", md.Version)
	}
	if md.ShortDescription == "" || strings.ContainsAny(md.ShortDescription, "\r\n") {
		t.Errorf("ShortDescription = %q, want one non-empty line", md.ShortDescription)
	}
	if md.URL != "https://github.com/hacluster/hacluster" {
		t.Errorf("URL = %q", md.URL)
	}
	return md
}

func TestMetadataJSON(t *testing.T) {
	r := runSelf(t, "docker-cli-plugin-metadata")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("docker-cli-plugin-metadata: exit %d, stderr %q", r.code, r.stderr)
	}
	md := checkMetadata(t, r.stdout)
	want := pluginMetadata{"0.1.0", "hacluster project", version.Version,
		"Dockerfiles, builds and app+MySQL stacks for Go apps, ready for Kubernetes", version.Homepage}
	if !reflect.DeepEqual(md, want) {
		t.Errorf("metadata = %+v, want %+v", md, want)
	}
}

func TestNoClientGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/hacluster/hacluster/cmd/docker-k8sprep").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 50 || !contains(pkgs, "github.com/docker/cli/cli-plugins/plugin") {
		t.Fatalf("go list -deps gave %d packages without docker/cli: not a real dependency list", len(pkgs))
	}
	for _, p := range pkgs {
		if p == "k8s.io/client-go" || strings.HasPrefix(p, "k8s.io/client-go/") || strings.HasPrefix(p, "k8s.io/cli-runtime/") {
			t.Errorf("docker-k8sprep links %s; the Docker plugin must not depend on client-go", p)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestStandaloneArgs(t *testing.T) {
	for _, c := range []struct {
		in         []string
		fromDocker bool
		want       []string
	}{
		{[]string{"p", "version"}, false, []string{"p", "k8sprep", "version"}},
		{[]string{"p", "version"}, true, []string{"p", "version"}},
		{[]string{"p", "docker-cli-plugin-metadata"}, false, []string{"p", "docker-cli-plugin-metadata"}},
		{[]string{"p", "k8sprep", "version"}, false, []string{"p", "k8sprep", "version"}},
		{[]string{"p"}, false, []string{"p"}},
		{[]string{"p", "--help"}, false, []string{"p", "k8sprep", "--help"}},
		{[]string{"p", "__complete", "ver"}, false, []string{"p", "__complete", "k8sprep", "ver"}},
		{[]string{"p", "__complete", "k8sprep", "ver"}, true, []string{"p", "__complete", "k8sprep", "ver"}},
	} {
		if got := standaloneArgs(c.in, c.fromDocker); !reflect.DeepEqual(got, c.want) {
			t.Errorf("standaloneArgs(%q, %v) = %q, want %q", c.in, c.fromDocker, got, c.want)
		}
	}
}

func TestStandalone(t *testing.T) {
	r := runSelf(t, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "docker-k8sprep v") {
		t.Fatalf("standalone version: %+v", r)
	}
	r = runSelf(t, "__complete", "")
	if r.code != 0 || !strings.Contains(r.stdout, "version\t") {
		t.Errorf("standalone __complete \"\": %+v", r)
	}
	r = runSelf(t, "version", "-o", "json")
	var info map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info["version"] != version.Version {
		t.Fatalf("standalone version -o json: %v %+v", err, r)
	}
}

// pluginBinary is the docker-k8sprep that gets installed: $HACLUSTER_BIN's
// (make test) or a fresh build.
func pluginBinary(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("HACLUSTER_BIN"); dir != "" {
		b := filepath.Join(dir, "docker-k8sprep")
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("HACLUSTER_BIN=%s has no docker-k8sprep (run `make build`): %v", dir, err)
		}
		return b
	}
	b := filepath.Join(t.TempDir(), "docker-k8sprep")
	out, err := exec.Command("go", "build", "-trimpath", "-o", b, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return b
}

func dockerCLI(t *testing.T) string {
	t.Helper()
	d, err := exec.LookPath("docker")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no docker CLI on PATH (CI is set: the docker CLI e2e must run)")
		}
		t.Skip("no docker CLI on PATH")
	}
	return d
}

// TestDockerCLIE2E installs the plugin into a temporary DOCKER_CONFIG and
// drives it through the real docker CLI.
func TestDockerCLIE2E(t *testing.T) {
	docker := dockerCLI(t)
	bin := pluginBinary(t)
	cfg := t.TempDir()
	plugins := filepath.Join(cfg, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plugins, "docker-k8sprep"), raw, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_CONFIG=" + filepath.Join(t.TempDir(), "not-this-one"), "DOCKER_CLI_HINTS=false"}
	docker1 := func(args ...string) result {
		return runCmd(t, env, docker, append([]string{"--config", cfg}, args...)...)
	}

	// The metadata docker reads, from the installed file.
	r := runCmd(t, nil, filepath.Join(plugins, "docker-k8sprep"), "docker-cli-plugin-metadata")
	md := checkMetadata(t, r.stdout)

	r = docker1("--help")
	if r.code != 0 || !regexp.MustCompile(`(?m)^\s+k8sprep\*\s+`+regexp.QuoteMeta(md.ShortDescription)).MatchString(r.stdout) {
		t.Errorf("docker --help does not list `k8sprep*  %s`:\n%s\n%s", md.ShortDescription, r.stdout, r.stderr)
	}

	r = docker1("info", "--format", "{{json .ClientInfo.Plugins}}")
	var infos []struct {
		Name, Path, Vendor, Version, ShortDescription, Err string
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &infos); err != nil {
		t.Fatalf("docker info --format: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	found := false
	for _, p := range infos {
		if p.Name == "k8sprep" {
			found = true
			if p.Err != "" || p.Vendor != md.Vendor || p.Version != md.Version || p.Path != filepath.Join(plugins, "docker-k8sprep") {
				t.Errorf("docker info lists k8sprep as %+v", p)
			}
		}
	}
	if !found {
		t.Errorf("docker info does not list k8sprep: %s", r.stdout)
	}
	r = docker1("info")
	if !strings.Contains(r.stdout, "k8sprep: "+md.ShortDescription) {
		t.Errorf("docker info does not show the plugin line:\n%s", r.stdout)
	}

	r = docker1("k8sprep", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "docker-k8sprep "+md.Version+" ") {
		t.Errorf("docker k8sprep version: %+v", r)
	}
	r = docker1("k8sprep", "version", "-o", "json")
	var info map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info["version"] != md.Version {
		t.Errorf("docker k8sprep version -o json: %v %+v", err, r)
	}
	// Global docker flags before the plugin name reach the plugin intact.
	r = runCmd(t, env, docker, "--config", cfg, "--context", "default", "--log-level", "error", "k8sprep", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "docker-k8sprep ") {
		t.Errorf("docker --context default ... k8sprep version: %+v", r)
	}

	// Bad input: non-zero exit and a message naming the problem.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"k8sprep", "no-such-command"}, "no-such-command"},
		{[]string{"k8sprep", "version", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"k8sprep", "version", "-o", "xml"}, `unknown output format "xml"`},
	} {
		r := docker1(c.args...)
		if r.code == 0 {
			t.Errorf("docker %s: exit 0, want non-zero (stdout %q)", strings.Join(c.args, " "), r.stdout)
		}
		if !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "goroutine ") {
			t.Errorf("docker %s: stderr %q does not say %q", strings.Join(c.args, " "), r.stderr, c.want)
		}
	}
}
