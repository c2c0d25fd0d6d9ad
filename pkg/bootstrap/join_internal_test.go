package bootstrap

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hacluster/hacluster/pkg/artifacts"
	"github.com/hacluster/hacluster/pkg/inventory"
)

// Which dead running hosts a join goes on without.
func TestDeadHostsAllowed(t *testing.T) {
	cp := func(n string) inventory.Host {
		return inventory.Host{Name: n, Address: "10.0.0." + n[len(n)-1:], Roles: []string{inventory.RoleControlPlane}}
	}
	w := func(n string) inventory.Host {
		return inventory.Host{Name: n, Address: "10.0.1." + n[len(n)-1:], Roles: []string{inventory.RoleWorker}}
	}
	c := &inventory.Cluster{Metadata: inventory.Metadata{Name: "lab"}, Spec: inventory.Spec{Hosts: []inventory.Host{cp("cp-1"), cp("cp-2"), cp("cp-3"), w("w-1"), w("w-2"), cp("cp-4")}}}
	for _, tc := range []struct {
		joining []inventory.Host
		dead    []string
		want    string // "" allowed
	}{
		{[]inventory.Host{w("w-2")}, []string{"w-1"}, ""},
		{[]inventory.Host{w("w-2")}, []string{"cp-3", "w-1"}, ""},
		{[]inventory.Host{cp("cp-4")}, []string{"w-1"}, ""},
		{[]inventory.Host{w("w-2")}, []string{"w-2"}, "w-2 does not answer SSH at 10.0.1.2: a host to join must"},
		{[]inventory.Host{cp("cp-4")}, []string{"cp-2"}, "control plane cp-2 does not answer SSH: a control plane joins only when all answer"},
		{[]inventory.Host{w("w-2")}, []string{"cp-1", "cp-2", "cp-3", "cp-4"}, "no control plane of lab answers SSH"},
	} {
		err := deadHostsAllowed(c, tc.joining, tc.dead)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("joining %v, dead %v: %v, want %q", tc.joining[0].Name, tc.dead, err, tc.want)
		}
	}
}

// The images a host pre-pulls: its static pods' and kube-proxy's from the
// image repository, and the CNI manifest's, each once, quotes removed, and
// nothing that is not an image reference (the list goes into a shell loop).
func TestNodeImages(t *testing.T) {
	m := filepath.Join(t.TempDir(), "kube-flannel.yml")
	manifest := "containers:\n  - name: a\n    image: ghcr.io/flannel-io/flannel:v0.27.0\n  - name: b\n    image: \"ghcr.io/flannel-io/flannel:v0.27.0\"\n  - name: c\n    image: 'ghcr.io/flannel-io/flannel-cni-plugin:v1.7.1-flannel1'\n  - name: d\n    image: x;rm -rf /\n"
	if err := os.WriteFile(m, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &run{c: &inventory.Cluster{Spec: inventory.Spec{Kubernetes: inventory.Kubernetes{ImageRepository: "registry.k8s.io", Version: "v1.37.2"}}},
		files: map[string]artifacts.Fetched{"manifest/kube-flannel.yml": {Path: m}}}
	flannel := []string{"ghcr.io/flannel-io/flannel:v0.27.0", "ghcr.io/flannel-io/flannel-cni-plugin:v1.7.1-flannel1"}
	want := append([]string{"registry.k8s.io/pause:" + pauseImageMinor, "registry.k8s.io/kube-proxy:v1.37.2"}, flannel...)
	if got := r.nodeImages(inventory.Host{Name: "w-1", Roles: []string{inventory.RoleWorker}}); !slices.Equal(got, want) {
		t.Errorf("worker: %q, want %q", got, want)
	}
	cpWant := append(append(want[:2:2], "registry.k8s.io/kube-apiserver:v1.37.2", "registry.k8s.io/kube-controller-manager:v1.37.2", "registry.k8s.io/kube-scheduler:v1.37.2"), flannel...)
	if got := r.nodeImages(inventory.Host{Name: "cp-1", Roles: []string{inventory.RoleControlPlane}}); !slices.Equal(got, cpWant) {
		t.Errorf("control plane: %q, want %q", got, cpWant)
	}
}
