package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	"github.com/hacluster/hacluster/pkg/nodebed"
)

// A control plane and a clone of it: the refusals of the command itself (the
// full install is tested in pkg/bootstrap).
var bed *nodebed.Bed

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	return nodebed.Main(m, nodebed.Options{Prefix: "bsc", Hosts: []nodebed.HostSpec{
		{Name: "cp-1"}, {Name: "clone", Hostname: "cp-1", SameMachineIDAs: "cp-1", SameProductUUIDAs: "cp-1"},
	}}, func(b *nodebed.Bed) { bed = b })
}

func runCmd(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	cmd := NewCmd(factory.ForKubeconfig("", "", genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}))
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func clusterFile(t *testing.T, names ...string) string {
	t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "apiVersion: hacluster.io/v1alpha1\nkind: Cluster\nmetadata: {name: bed}\nspec:\n  ssh: {user: admin, keyFile: %s, knownHostsFile: %s}\n  hosts:\n", bed.KeyFile, bed.KnownHostsFile)
	for _, n := range names {
		fmt.Fprintf(&sb, "    - {name: %s, address: %s, roles: [%s]}\n", n, bed.Host(n).Address, map[bool]string{true: "control-plane", false: "worker"}[n == "cp-1"])
	}
	fmt.Fprintf(&sb, "  controlPlaneEndpoint: {vip: %s}\n", bed.VIP)
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadInput(t *testing.T) {
	out, _, err := runCmd("--example")
	if err != nil || !strings.Contains(out, "kind: Cluster") {
		t.Errorf("--example: %v", err)
	}
	if _, _, err := runCmd("-f", filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "bootstrap --example") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "cluster.yaml")
	os.WriteFile(bad, []byte("apiVersion: hacluster.io/v1alpha1\nkind: Cluster\nmetadata: {name: x}\nspec:\n  hostz: []\n"), 0o644)
	if _, _, err := runCmd("-f", bad); err == nil || !strings.HasPrefix(err.Error(), bad+":5: unknown field hostz") {
		t.Errorf("bad file: %v", err)
	}
	if _, _, err := runCmd("--example", "--until", "everything"); err == nil || !strings.Contains(err.Error(), "join-workers") {
		t.Errorf("bad --until: %v", err)
	}
}

// A preflight error stops bootstrap before anything is installed.
func TestPreflightRefusalChangesNothing(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	out, errOut, err := runCmd("-f", clusterFile(t, "cp-1", "clone"), "--cache-dir", t.TempDir(), "--state-dir", t.TempDir(), "-o", "json")
	if err == nil || !strings.Contains(err.Error(), "DuplicateMachineID") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("want a preflight refusal, got %v\n%s", err, errOut)
	}
	var res struct {
		Phases []struct{ Phase string } `json:"phases"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, p := range res.Phases {
		if p.Phase != "preflight" {
			t.Errorf("phase %s ran after the refusal", p.Phase)
		}
	}
	for _, h := range bed.Hosts {
		if got, _ := h.Exec(context.Background(), "sh", "-c", "ls /usr/local/bin/containerd /usr/bin/kubelet /etc/modules-load.d/hacluster-kubernetes.conf 2>/dev/null; true"); strings.TrimSpace(got) != "" {
			t.Errorf("%s changed: %s", h.Name, got)
		}
	}
}

func TestUntilPreflight(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	out, errOut, err := runCmd("-f", clusterFile(t, "cp-1"), "--until", "preflight", "--cache-dir", t.TempDir(), "--state-dir", t.TempDir())
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(out, "Bootstrap stopped after preflight in") || !strings.Contains(errOut, "[preflight] done") || strings.Contains(errOut, "[download]") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
}

// --dry-run on a bare host: the plan and the diffs of what it would write,
// and the host untouched.
func TestDryRun(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	state := t.TempDir()
	out, errOut, err := runCmd("-f", clusterFile(t, "cp-1"), "--dry-run", "--state-dir", state)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	for _, want := range []string{"HOST", "kubeadm init --upload-certs", "install kubelet", "write /etc/containerd/config.toml",
		"# cp-1: /etc/keepalived/keepalived.conf", "+    vrrp_version 3", "+SystemdCgroup = true", "Dry run: nothing was changed"} {
		if !strings.Contains(strings.ReplaceAll(out, "      ", ""), want) {
			t.Errorf("no %q in the dry run:\n%s", want, out)
		}
	}
	if got, _ := bed.Host("cp-1").Exec(context.Background(), "sh", "-c", "ls /etc/containerd /var/lib/hacluster /usr/bin/kubelet 2>/dev/null; true"); strings.TrimSpace(got) != "" {
		t.Errorf("the dry run changed cp-1: %s", got)
	}
	if left, _ := os.ReadDir(state); len(left) != 0 {
		t.Errorf("the dry run wrote into the state directory: %v", left)
	}
}
