package clusterfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/hacluster/hacluster/pkg/bootstrap"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/clusterfile"
	"github.com/hacluster/hacluster/pkg/inventory"
)

// Without -f and without ./cluster.yaml, the file is the one bootstrap
// recorded for the current kubeconfig context.
func TestFileFromKubeconfigContext(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	work := t.TempDir()
	t.Chdir(work)
	kc := filepath.Join(home, "kubeconfig")
	t.Setenv("KUBECONFIG", kc)
	writeKubeconfig := func(current string) {
		t.Helper()
		doc := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://192.0.2.1:16443'}}]\nusers: [{name: u, user: {}}]\n" +
			"contexts: [{name: hacluster-demo, context: {cluster: c, user: u}}, {name: kind-other, context: {cluster: c, user: u}}]\ncurrent-context: " + current + "\n"
		if err := os.WriteFile(kc, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	complete := func(args ...string) (*clusterfile.Flags, error) {
		f := &clusterfile.Flags{}
		cmd := &cobra.Command{Use: "x"}
		f.Add(cmd)
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		return f, f.Complete("join")
	}

	writeKubeconfig("kind-other")
	if _, err := complete(); err == nil || !strings.Contains(err.Error(), "cluster.yaml does not exist (and the current kubeconfig context kind-other is not one bootstrap wrote)") {
		t.Errorf("a context bootstrap did not write: %v", err)
	}
	writeKubeconfig("hacluster-demo")
	if _, err := complete(); err == nil || !strings.Contains(err.Error(), "cluster-file of context hacluster-demo is not readable") {
		t.Errorf("no pointer: %v", err)
	}
	file := filepath.Join(t.TempDir(), "prod.yaml")
	if err := os.WriteFile(file, []byte(inventory.Example()), 0o600); err != nil {
		t.Fatal(err)
	}
	state := bootstrap.DefaultStateDir("demo")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, bootstrap.ClusterFilePointer), []byte(file+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := complete()
	if err != nil || f.File != file || f.FromContext != "hacluster-demo" || f.Cluster == nil {
		t.Errorf("from the context: %v, file %q, context %q", err, f.File, f.FromContext)
	}
	// An explicit -f, or a cluster.yaml here, wins.
	if f, err := complete("-f", "cluster.yaml"); err == nil || f.FromContext != "" {
		t.Errorf("-f cluster.yaml given: %v, context %q", err, f.FromContext)
	}
	if err := os.WriteFile(filepath.Join(work, "cluster.yaml"), []byte(inventory.Example()), 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err := complete(); err != nil || f.File != "cluster.yaml" || f.FromContext != "" {
		t.Errorf("./cluster.yaml: %v, file %q, context %q", err, f.File, f.FromContext)
	}
}
