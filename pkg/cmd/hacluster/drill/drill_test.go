package drill

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	core "github.com/hacluster/hacluster/pkg/drill"
)

func runCmd(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := NewCmd(factory.ForKubeconfig("", "", genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}))
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// Bad input: one line naming the flag or the file, before any connection.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "cluster.yaml")
	doc := "apiVersion: hacluster.io/v1alpha1\nkind: Cluster\nmetadata: {name: x}\nspec:\n  hosts:\n    - {name: cp-1, address: 10.0.0.11, roles: [control-plane]}\n  controlPlaneEndpoint: {vip: 10.0.0.100}\n"
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"failover", "--fault", "unplug", "-f", file}, `--fault "unplug": not a fault (faults: stop-apiserver, stop-haproxy, stop-keepalived, stop-kubelet, reboot)`},
		{[]string{"failover", "-f", filepath.Join(dir, "none.yaml")}, "does not exist: pass the cluster file bootstrap used with -f"},
		{[]string{"failover", "-f", file, "--state-dir", dir}, "no admin kubeconfig at " + filepath.Join(dir, "admin.conf")},
		{[]string{"failover", "-f", file, "-o", "xml"}, `unknown output format "xml"`},
	} {
		_, err := runCmd(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line with %q", tc.args, err, tc.want)
		}
	}
}

// The table shows the measures and the outages.
func TestRender(t *testing.T) {
	moved := int64(1700)
	r := &core.Report{Fault: "crash", Target: "cp-1", VIPHolderBefore: "cp-1", VIPMovedTo: "cp-2", VIPMovedMillis: &moved, VIPHolderAfter: "cp-2",
		DowntimeMillis: 2100, ProbeIntervalMillis: 100, RequestTimeoutMillis: 1000, Verdict: "Healthy",
		Outages: []core.Outage{{Phase: "fault", StartMillis: 200, EndMillis: 2300, Errors: 19, FirstError: "context deadline exceeded"}}}
	var b bytes.Buffer
	if err := Render(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"crash on cp-1", "cp-1 -> cp-2 at +1.7s", "downtime (reads)           2.1s", "fault    +200ms   2.1s     19       context deadline exceeded"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in:\n%s", want, b.String())
		}
	}
}
