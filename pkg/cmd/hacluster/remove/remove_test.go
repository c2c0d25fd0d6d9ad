package remove

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
)

const file = `apiVersion: hacluster.io/v1alpha1
kind: Cluster
metadata: {name: lab}
spec:
  hosts:
    - {name: cp-1, address: 10.0.0.11, roles: [control-plane]}
    - {name: w-1, address: 10.0.0.21, roles: [worker]}
  controlPlaneEndpoint: {vip: 10.0.0.100}
`

// Bad arguments get one line and change nothing (removals are tested on
// the node bed in pkg/bootstrap).
func TestBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no NODE given"},
		{[]string{"w-9"}, "w-9 is not a host of"},
		{[]string{"cp-1"}, "leaves no control plane"},
		{[]string{"w-1", "--timeout", "0s"}, "--timeout"},
	} {
		p := filepath.Join(t.TempDir(), "cluster.yaml")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		cmd := NewCmd(factory.ForKubeconfig("", "", genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}))
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		cmd.SetArgs(append(tc.args, "-f", p))
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: want one line with %q, got %v", tc.args, tc.want, err)
		}
		if b, _ := os.ReadFile(p); string(b) != file {
			t.Errorf("%v changed the file:\n%s", tc.args, b)
		}
	}
}

// NODE completes from the cluster file's hosts.
func TestCompletion(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := NewCmd(factory.ForKubeconfig("", "", genericiooptions.IOStreams{Out: &out, ErrOut: &out}))
	root := &cobra.Command{Use: "kubectl-hacluster"}
	root.AddCommand(cmd)
	root.SetOut(&out)
	root.SetArgs([]string{cobra.ShellCompRequestCmd, "remove", "cp-1", "-f", p, ""})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "w-1\n") || strings.Contains(got, "cp-1\n") {
		t.Errorf("completion: %q", got)
	}
}
