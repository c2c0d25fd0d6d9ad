package main

// Process-level tests of kubectl-hacluster: the test binary re-executes
// itself as the real main() (env HACLUSTER_TEST_MAIN=1), so exit codes,
// stdout and stderr are exactly what a user sees.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
)

func TestMain(m *testing.M) {
	switch os.Getenv("HACLUSTER_TEST_MAIN") {
	case "1":
		main()
		os.Exit(0)
	case "factory":
		factoryMain()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// factoryMain is the real root plus one hidden command that does what every
// cluster command starts with: load the kubeconfig through factory.Factory
// and talk to the server. It proves the error path of the shared factory even
// for commands that do not exist yet.
func factoryMain() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	root := hacluster.NewCmdRoot(streams)
	root.AddCommand(&cobra.Command{
		Use:    "test-needs-cluster",
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := genericclioptions.NewConfigFlags(true)
			*flags.KubeConfig = cmd.Flag("kubeconfig").Value.String()
			f := &factory.Factory{ConfigFlags: flags, IOStreams: streams}
			cs, err := f.Clientset()
			if err != nil {
				return err
			}
			v, err := cs.Discovery().ServerVersion()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(streams.Out, v.GitVersion)
			return err
		},
	})
	cmdutil.Exit(root.Execute(), os.Stderr)
}

type result struct {
	stdout, stderr string
	code           int
}

func runMain(t *testing.T, mode string, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "HACLUSTER_TEST_MAIN="+mode, "KUBECONFIG="+filepath.Join(t.TempDir(), "none"))
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

// oneLine asserts a failure that a person can read: non-zero exit, a single
// "error: ..." line on stderr, no usage dump, no stack trace, nothing on stdout.
func oneLine(t *testing.T, r result, wants ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit code 0, want non-zero; stdout %q stderr %q", r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") {
		t.Errorf("stderr is not one `error: ...` line:\n%s", r.stderr)
	}
	for _, bad := range []string{"goroutine ", "panic", "Usage:", ".go:"} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("stderr contains %q:\n%s", bad, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout should be empty on failure, got %q", r.stdout)
	}
	for _, w := range wants {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q does not mention %q", r.stderr, w)
		}
	}
}

func TestVersion(t *testing.T) {
	r := runMain(t, "1", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "kubectl-hacluster v") {
		t.Fatalf("version: %+v", r)
	}
	r = runMain(t, "1", "version", "-o", "json")
	var info map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, r.stdout)
	}
	for _, k := range []string{"version", "commit", "buildDate", "goVersion", "platform"} {
		if info[k] == "" {
			t.Errorf("version -o json lacks %q: %s", k, r.stdout)
		}
	}
	if r.stderr != "" {
		t.Errorf("version wrote to stderr: %q", r.stderr)
	}
}

func TestHelpShowsKubectlName(t *testing.T) {
	r := runMain(t, "1", "--help")
	if r.code != 0 {
		t.Fatalf("--help: %+v", r)
	}
	for _, want := range []string{"kubectl hacluster [command]", "--kubeconfig", "--context", "-n, --namespace"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--help does not show %q:\n%s", want, r.stdout)
		}
	}
}

func TestBadInput(t *testing.T) {
	oneLine(t, runMain(t, "1", "no-such-command"), `unknown command "no-such-command"`)
	oneLine(t, runMain(t, "1", "version", "--no-such-flag"), "unknown flag: --no-such-flag")
	oneLine(t, runMain(t, "1", "--no-such-flag"), "unknown flag: --no-such-flag")
	oneLine(t, runMain(t, "1", "version", "-o", "xml"), `unknown output format "xml"`)
	oneLine(t, runMain(t, "1", "version", "extra"), "extra")
	oneLine(t, runMain(t, "1", "completion", "tcsh"), "tcsh")
	oneLine(t, runMain(t, "1", "bundle", "build"), "-o FILE is required")
	oneLine(t, runMain(t, "1", "bundle", "verify", "/nonexistent/bundle.tar"), "no such file")
}

func brokenKubeconfigs(t *testing.T) map[string]string {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("apiVersion: v1\nclusters: [this is: not: yaml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noServer := filepath.Join(dir, "no-server")
	kc := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
users:
- name: u
  user: {token: secret-token-value}
`
	if err := os.WriteFile(noServer, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"missing file":  filepath.Join(dir, "does-not-exist"),
		"not yaml":      garbage,
		"server closed": noServer,
	}
}

// TestBrokenKubeconfigFactory: the shared factory path gives one clear line.
func TestBrokenKubeconfigFactory(t *testing.T) {
	for name, kc := range brokenKubeconfigs(t) {
		t.Run(name, func(t *testing.T) {
			r := runMain(t, "factory", "test-needs-cluster", "--kubeconfig", kc)
			oneLine(t, r)
			t.Logf("%s", r.stderr)
			if strings.Contains(r.stderr, "secret-token-value") {
				t.Errorf("the error prints the token: %s", r.stderr)
			}
			if name != "server closed" && !strings.Contains(r.stderr, kc) {
				t.Errorf("the error does not name the kubeconfig %s: %s", kc, r.stderr)
			}
		})
	}
}

// TestBrokenKubeconfigInspect: the same through a shipped command that needs
// a cluster; a server that does not answer at all is one line too, not a
// report made of failed reads.
func TestBrokenKubeconfigInspect(t *testing.T) {
	for name, kc := range brokenKubeconfigs(t) {
		t.Run(name, func(t *testing.T) {
			r := runMain(t, "1", "inspect", "components", "--kubeconfig", kc)
			oneLine(t, r)
			if strings.Contains(r.stderr, "secret-token-value") {
				t.Errorf("the error prints the token: %s", r.stderr)
			}
		})
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		r := runMain(t, "1", "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "kubectl-hacluster") {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", sh, r.code, len(r.stdout), r.stderr)
		}
	}
	// What the kubectl_complete-hacluster shim runs.
	r := runMain(t, "1", "__complete", "")
	for _, want := range []string{"version\t", "completion\t", ":4"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("__complete \"\" lacks %q:\n%s", want, r.stdout)
		}
	}
}
