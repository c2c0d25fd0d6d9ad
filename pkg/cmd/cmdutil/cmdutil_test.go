package cmdutil

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/hacluster/hacluster/pkg/output"
	"github.com/hacluster/hacluster/pkg/version"
)

// Exit calls os.Exit, so it is tested in a child process: the test binary
// re-executes itself with CMDUTIL_EXIT set to the error to exit with.
func TestMain(m *testing.M) {
	switch os.Getenv("CMDUTIL_EXIT") {
	case "":
		os.Exit(m.Run())
	case "nil":
		Exit(nil, os.Stderr)
		fmt.Println("returned")
		os.Exit(0)
	case "plain":
		Exit(errors.New("cannot load kubeconfig: stat /x: no such file or directory\n"), os.Stderr)
	case "code3":
		Exit(fmt.Errorf("wrapped: %w", &ExitError{Code: 3, Message: "2 warnings found"}), os.Stderr)
	case "silent4":
		Exit(&ExitError{Code: 4}, os.Stderr)
	}
	os.Exit(99)
}

func TestExit(t *testing.T) {
	for _, c := range []struct {
		mode, stdout, stderr string
		code                 int
	}{
		{"nil", "returned\n", "", 0},
		{"plain", "", "error: cannot load kubeconfig: stat /x: no such file or directory\n", 1},
		{"code3", "", "error: wrapped: 2 warnings found\n", 3},
		{"silent4", "", "", 4},
	} {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "CMDUTIL_EXIT="+c.mode)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || out.String() != c.stdout || errb.String() != c.stderr {
			t.Errorf("%s: exit %d stdout %q stderr %q; want %d %q %q", c.mode, code, out.String(), errb.String(), c.code, c.stdout, c.stderr)
		}
	}
}

func TestExitErrorMessage(t *testing.T) {
	if got := (&ExitError{Code: 2}).Error(); got != "exit status 2" {
		t.Errorf("empty message: %q", got)
	}
	if got := (&ExitError{Code: 2, Message: "drift found"}).Error(); got != "drift found" {
		t.Errorf("message: %q", got)
	}
}

func execute(cmd *cobra.Command, args ...string) (string, error) {
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err := cmd.Execute()
	return out.String(), err
}

func TestAddOutputFlag(t *testing.T) {
	var o string
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	AddOutputFlag(cmd, &o, output.Table, output.Wide, output.JSON, output.YAML)
	f := cmd.Flags().Lookup("output")
	if f == nil || f.Shorthand != "o" || !strings.Contains(f.Usage, "wide|json|yaml") {
		t.Fatalf("-o/--output flag: %+v", f)
	}
	if _, err := execute(cmd, "-o", "yaml"); err != nil || o != "yaml" {
		t.Errorf("-o yaml: %q %v", o, err)
	}
	cmd = &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	AddOutputFlag(cmd, &o, output.Table, output.Wide, output.JSON, output.YAML)
	root := &cobra.Command{Use: "root"}
	root.AddCommand(cmd)
	out, err := execute(root, cobra.ShellCompRequestCmd, "x", "-o", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "wide\njson\nyaml\n:4\n") {
		t.Errorf("completion of -o: %q", out)
	}
}

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	cmd := NewVersionCommand("kubectl-hacluster", &out)
	if _, err := execute(cmd); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("kubectl-hacluster %s (commit %s, built %s, %s, %s/%s)\n", version.Version, version.Commit, version.Date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if out.String() != want {
		t.Errorf("version:\n%q\nwant\n%q", out.String(), want)
	}

	out.Reset()
	cmd = NewVersionCommand("x", &out)
	if _, err := execute(cmd, "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var info version.Info
	if err := json.Unmarshal(out.Bytes(), &info); err != nil || info != version.Get() {
		t.Errorf("version -o json: %v %s", err, out.String())
	}
	for _, k := range []string{`"version"`, `"commit"`, `"buildDate"`, `"goVersion"`, `"platform"`} {
		if !strings.Contains(out.String(), k) {
			t.Errorf("version -o json lacks the documented field %s", k)
		}
	}

	out.Reset()
	cmd = NewVersionCommand("x", &out)
	if _, err := execute(cmd, "-o", "yaml"); err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := yaml.Unmarshal(out.Bytes(), &m); err != nil || m["version"] != version.Version || m["platform"] != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version -o yaml: %v %s", err, out.String())
	}

	cmd = NewVersionCommand("x", &bytes.Buffer{})
	if _, err := execute(cmd, "-o", "wide"); err == nil || !strings.Contains(err.Error(), `unknown output format "wide"`) {
		t.Errorf("version -o wide: %v", err)
	}
	cmd = NewVersionCommand("x", &bytes.Buffer{})
	if _, err := execute(cmd, "extra"); err == nil {
		t.Error("version with an argument should fail")
	}
}

func TestCompletionCommand(t *testing.T) {
	for sh, marker := range map[string]string{
		"bash":       "__start_tool",
		"zsh":        "#compdef tool",
		"fish":       "complete -c tool",
		"powershell": "Register-ArgumentCompleter",
	} {
		var out bytes.Buffer
		root := &cobra.Command{Use: "tool"}
		root.AddCommand(NewCompletionCommand(&out, "  source <(tool completion bash)"))
		if _, err := execute(root, "completion", sh); err != nil {
			t.Errorf("completion %s: %v", sh, err)
			continue
		}
		if !strings.Contains(out.String(), marker) {
			t.Errorf("completion %s: no %q in %d bytes", sh, marker, out.Len())
		}
	}
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		root := &cobra.Command{Use: "tool"}
		root.AddCommand(NewCompletionCommand(&bytes.Buffer{}, ""))
		if _, err := execute(root, args...); err == nil {
			t.Errorf("%v should fail", args)
		}
	}
}

func TestParseKeyValues(t *testing.T) {
	m, err := ParseKeyValues("env", []string{"DB_HOST=mysql", "EMPTY=", "URL=a=b"})
	if err != nil || m["DB_HOST"] != "mysql" || m["EMPTY"] != "" || m["URL"] != "a=b" || len(m) != 3 {
		t.Fatalf("got %v, %v", m, err)
	}
	for _, bad := range []string{"NOEQUALS", "=value"} {
		if _, err := ParseKeyValues("env", []string{bad}); err == nil || !strings.Contains(err.Error(), "--env") {
			t.Errorf("%q: error %v, want one naming --env", bad, err)
		}
	}
}
