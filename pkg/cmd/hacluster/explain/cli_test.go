package explain

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
)

func runOffline(t *testing.T, args ...string) (string, error) {
	t.Helper()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:1\"}\n"+
		"contexts:\n- name: c\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {token: x}\ncurrent-context: c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := NewCmd(factory.ForKubeconfig(kc, "", genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}))
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.Execute()
	return out.String(), err
}

// `explain --all -A` used to be refused with "unknown flag: --all"; the
// listing flags now work on explain itself, and what they cannot do says
// what to type.
func TestExplainAcceptsListingFlags(t *testing.T) {
	for _, args := range [][]string{{"--all", "-A"}, {"-A"}, {"--all"}, {"--all-namespaces", "-o", "json"}} {
		_, err := runOffline(t, args...)
		// No cluster behind the kubeconfig: the flags were accepted and it went to read Services.
		if err == nil || strings.Contains(err.Error(), "unknown flag") || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("explain %v: %v", args, err)
		}
	}
	if _, err := runOffline(t, "web"); err == nil || !strings.Contains(err.Error(), "explain service web") {
		t.Errorf("explain web: %v", err)
	}
	if _, err := runOffline(t, "-o", "json"); err == nil || !strings.Contains(err.Error(), "need --all or -A") {
		t.Errorf("explain -o json: %v", err)
	}
	if out, err := runOffline(t); err != nil || !strings.Contains(out, "service-types") || !strings.Contains(out, "explain -A") {
		t.Errorf("explain alone: %v\n%s", err, out)
	}
	if _, err := runOffline(t, "service", "web", "--all"); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("explain service web --all: %v", err)
	}
}
