package join

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cmd := NewCmd(factory.ForKubeconfig("", "", genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}))
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(append(args, "-f", p))
	err := cmd.ExecuteContext(context.Background())
	if b, _ := os.ReadFile(p); string(b) != file {
		t.Errorf("%v changed the file:\n%s", args, b)
	}
	return out.String(), err
}

// Bad arguments get one line and change nothing (the joins themselves are
// tested on the node bed in pkg/bootstrap).
func TestBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no HOST given"},
		{[]string{"w-9"}, "w-9 is not a host of"},
		{[]string{"w-1", "--control-plane"}, "w-1 is a worker"},
		{[]string{"w-2=10.0.0.21"}, "10.0.0.21"},
		{[]string{"w-2=not an address"}, "address"},
		{[]string{"w-2=10.0.0.22", "w-2=10.0.0.23"}, "named twice"},
		{[]string{"w-2=10.0.0.22", "--print"}, "--print joins no host"},
		{[]string{"--print", "--ttl", "10s"}, "--ttl"},
		{[]string{"--print", "--dry-run"}, "give one of --print and --dry-run"},
		{[]string{"w-1", "--ssh-user", "ops"}, "--ssh-user, --ssh-port and --ssh-key are for new hosts"},
	} {
		_, err := runCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: want one line with %q, got %v", tc.args, tc.want, err)
		}
	}
}
