package bundle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	core "github.com/hacluster/hacluster/pkg/bundle"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/upstream"
)

func run(args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	root := hacluster.NewCmdRoot(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errb})
	root.SetArgs(append([]string{"bundle"}, args...))
	err := root.Execute()
	return out.String(), errb.String(), err
}

// Bad input: one clear line, before anything is downloaded (no mirror
// here answers: a download attempt would fail differently).
func TestInputErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	mine := filepath.Join(dir, "mine.tar")
	os.WriteFile(mine, []byte("keep me"), 0o644)
	junk := filepath.Join(dir, "junk.tar")
	os.WriteFile(junk, []byte("not a bundle"), 0o644)
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no output":       {[]string{"build"}, "-o FILE is required"},
		"exists":          {[]string{"build", "-o", mine}, "mine.tar exists: pass --force to replace it"},
		"bad arch":        {[]string{"build", "-o", "b.tar", "--arch", "amd64,s390x"}, `architecture "s390x": want amd64 or arm64`},
		"bad version":     {[]string{"build", "-o", "b.tar", "--kubernetes-version", "1.37"}, `version "1.37" of Kubernetes`},
		"bad cni":         {[]string{"build", "-o", "b.tar", "--cni", "weave"}, `CNI "weave": want flannel or none`},
		"mirror no =":     {[]string{"build", "-o", "b.tar", "--mirror", "https://dl.k8s.io"}, `--mirror "https://dl.k8s.io": want KEY=VALUE`},
		"mirror site":     {[]string{"build", "-o", "b.tar", "--mirror", "dl.k8s.io=http://m"}, `SITE is a URL like https://dl.k8s.io`},
		"registry mirror": {[]string{"build", "-o", "b.tar", "--registry-mirror", "registry.k8s.io=10.0.0.1:5000"}, `registry mirror "10.0.0.1:5000": want http(s)://host`},
		"no cluster file": {[]string{"build", "-o", "b.tar", "-f", filepath.Join(dir, "nope.yaml")}, "nope.yaml: no such file"},
		"inspect format":  {[]string{"inspect", junk, "-o", "xml"}, `unknown output format "xml"`},
		"inspect junk":    {[]string{"inspect", junk}, "not a hacluster bundle"},
		"verify junk":     {[]string{"verify", junk}, "not a hacluster bundle"},
		"verify missing":  {[]string{"verify", filepath.Join(dir, "nope.tar")}, "no such file"},
		"inspect no file": {[]string{"inspect"}, "accepts 1 arg"},
	} {
		_, _, err := run(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", name, err, c.want)
		}
	}
	if b, _ := os.ReadFile(mine); string(b) != "keep me" {
		t.Error("the user's file was replaced")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// readmeLines are the commands of the README's bundle section.
func readmeLines(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start, end := strings.Index(s, "<!-- BEGIN bundle -->"), strings.Index(s, "<!-- END bundle -->")
	if start < 0 || end < start {
		t.Fatal("README has no bundle section")
	}
	sec := s[start:end]
	i := strings.Index(sec, "```sh\n")
	j := strings.Index(sec[i+6:], "```")
	var lines []string
	for _, line := range strings.Split(sec[i+6:i+6+j], "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// siteClusterFile is the example cluster file with its commented mirrors
// switched on and pointed at the upstream in a box.
func siteClusterFile(t *testing.T, up *upstream.Server) string {
	ex := inventory.Example()
	i := strings.Index(ex, "    # mirrors:")
	if i < 0 {
		t.Fatal("the example cluster file has no commented mirrors")
	}
	tail := regexp.MustCompile(`(?m)^(\s*)# `).ReplaceAllString(ex[i:], "$1")
	tail = strings.NewReplacer(
		"http://mirror.example.com/dl.k8s.io", up.MirrorURL("dl.k8s.io"),
		"http://mirror.example.com/github.com", up.MirrorURL("github.com"),
		"[http://mirror.example.com:5000/v2/registry.k8s.io]", "["+up.RegistryMirror("registry.k8s.io")+"]\n      ghcr.io: ["+up.RegistryMirror("ghcr.io")+"]",
	).Replace(tail)
	f := ex[:i] + tail
	if _, err := inventory.Parse("cluster.yaml", []byte(f)); err != nil {
		t.Fatalf("%v\n%s", err, f)
	}
	return f
}

// The README's commands as written, against the upstream in a box through
// the cluster file's mirrors, with a fresh download cache.
func TestReadmeExamples(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	up, err := upstream.Start(ctx, upstream.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		if errors.Is(err, upstream.ErrNotBuilt) && os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	defer up.Close()
	lines := readmeLines(t)
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	if err := os.WriteFile("cluster.yaml", []byte(siteClusterFile(t, up)), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 5 {
		t.Fatalf("README lines: %q", lines)
	}
	builds := 0
	for _, line := range lines {
		f := strings.Fields(line)
		var out, errOut string
		var err error
		if f[0] == "kubectl" && f[1] == "hacluster" && f[2] == "bundle" {
			out, errOut, err = run(f[3:]...)
		} else {
			b, e := exec.CommandContext(ctx, f[0], f[1:]...).CombinedOutput()
			out, err = string(b), e
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s\n%s", line, err, out, errOut)
		}
		t.Logf("$ %s\n%s", line, out)
		switch {
		case strings.Contains(line, "bundle build"):
			builds++
			if !strings.Contains(out, "Wrote k8s-v1.37.2.tar") || !strings.Contains(errOut, "image registry.k8s.io/kube-apiserver:v1.37.2") {
				t.Errorf("build printed:\n%s\n%s", out, errOut)
			}
			if builds == 2 && !strings.Contains(out, "nothing downloaded") {
				t.Errorf("the second build downloaded:\n%s", out)
			}
		case strings.Contains(line, "bundle inspect"):
			for _, want := range []string{"Kubernetes v1.37.2", "files/linux/amd64/kubelet", "images/linux-amd64.tar", "registry.k8s.io/pause:3.10.2", "ghcr.io/flannel-io/flannel:"} {
				if !strings.Contains(out, want) {
					t.Errorf("inspect lacks %q:\n%s", want, out)
				}
			}
		case strings.Contains(line, "bundle verify"):
			if !strings.Contains(out, "k8s-v1.37.2.tar: OK") {
				t.Errorf("verify: %s", out)
			}
		}
	}
	if _, err := os.Stat("images/linux-amd64.tar"); err != nil {
		t.Error(err)
	}
	// inspect and verify for scripts.
	out, _, err := run("inspect", "k8s-v1.37.2.tar", "-o", "json")
	var c core.Contents
	if err != nil || json.Unmarshal([]byte(out), &c) != nil || len(c.Manifest.Images) != len(up.ClusterImages()) {
		t.Errorf("inspect -o json: %v\n%s", err, out)
	}
	out, _, err = run("verify", "k8s-v1.37.2.tar", "-o", "yaml")
	if err != nil || !strings.Contains(out, "ok: true") {
		t.Errorf("verify -o yaml: %v\n%s", err, out)
	}
}
