package preflight

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	"github.com/hacluster/hacluster/pkg/nodebed"
)

// Two control planes and a clone of the first (same hostname, machine-id and
// product_uuid), on real sshd.
var bed *nodebed.Bed

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	return nodebed.Main(m, nodebed.Options{Prefix: "pfc", Hosts: []nodebed.HostSpec{
		{Name: "cp-1"}, {Name: "cp-2"}, {Name: "clone", Hostname: "cp-1", SameMachineIDAs: "cp-1", SameProductUUIDAs: "cp-1"},
	}}, func(b *nodebed.Bed) { bed = b })
}

// clusterFile writes an inventory of the named bed hosts (user admin, the
// bed's key; known_hosts as given).
func clusterFile(t *testing.T, knownHosts string, names ...string) string {
	t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "apiVersion: hacluster.io/v1alpha1\nkind: Cluster\nmetadata: {name: bed}\nspec:\n  ssh: {user: admin, keyFile: %s, knownHostsFile: %s}\n  hosts:\n", bed.KeyFile, knownHosts)
	for _, n := range names {
		h := bed.Host(n)
		role := "control-plane"
		if n == "clone" {
			role = "worker"
		}
		fmt.Fprintf(&sb, "    - {name: %s, address: %s, roles: [%s]}\n", n, h.Address, role)
	}
	fmt.Fprintf(&sb, "  controlPlaneEndpoint: {vip: %s}\n", bed.VIP)
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCmd(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	cmd := NewCmd(factory.ForKubeconfig("", "", genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}))
	cmd.SilenceUsage, cmd.SilenceErrors = true, true // as under the root command
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestHealthyHostsPass(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	file := clusterFile(t, bed.KnownHostsFile, "cp-1", "cp-2")
	out, errOut, err := runCmd("-f", file)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	for _, want := range []string{"HOST", "cp-1", "Debian GNU/Linux 12", "SystemVerification", "Preflight passed"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "connect  cp-1") || !strings.Contains(errOut, "facts    cp-2") {
		t.Errorf("progress on stderr:\n%s", errOut)
	}
}

func TestClonedHostFailsWithJSON(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	file := clusterFile(t, bed.KnownHostsFile, "cp-1", "cp-2", "clone")
	out, _, err := runCmd("-f", file, "-o", "json")
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "--ignore-preflight-errors=DuplicateHostname,DuplicateProductUUID,DuplicateMachineID") {
		t.Fatalf("want a failure naming the checks, got %v", err)
	}
	var rep Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Passed || rep.Errors != 3 || len(rep.Hosts) != 3 {
		t.Errorf("report: %+v", rep)
	}
	// Ignored: passes, the findings stay as warnings.
	out, _, err = runCmd("-f", file, "-o", "json", "--ignore-preflight-errors", "DuplicateHostname,DuplicateProductUUID,DuplicateMachineID")
	if err != nil {
		t.Fatalf("ignored: %v", err)
	}
	if !strings.Contains(out, `"(ignored)`) && !strings.Contains(out, `(ignored)"`) {
		t.Errorf("ignored findings not marked:\n%s", out)
	}
}

func TestUnknownHostKeysAndBadInput(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	file := clusterFile(t, kh, "cp-1")
	if _, _, err := runCmd("-f", file); err == nil || !strings.Contains(err.Error(), "unknown host key") {
		t.Fatalf("unknown keys: %v", err)
	}
	if _, _, err := runCmd("-f", file, "--accept-new-host-keys"); err != nil {
		t.Fatalf("accept-new: %v", err)
	}
	if b, err := os.ReadFile(kh); err != nil || !strings.Contains(string(b), bed.Host("cp-1").Address.String()) {
		t.Errorf("known_hosts after accept-new: %q %v", b, err)
	}
	if _, _, err := runCmd("-f", filepath.Join(t.TempDir(), "none.yaml")); err == nil || !strings.Contains(err.Error(), "--example") {
		t.Errorf("missing file: %v", err)
	}
	if _, _, err := runCmd("-f", file, "-o", "wide"); err == nil {
		t.Error("-o wide accepted")
	}
	out, _, err := runCmd("--example")
	if err != nil || !strings.Contains(out, "apiVersion: hacluster.io/v1alpha1") {
		t.Errorf("--example: %v\n%s", err, out)
	}
}
