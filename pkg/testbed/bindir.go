// Package testbed runs a real Kubernetes control plane on loopback for tests
// and for `make testbed-up`: etcd and kube-apiserver (plus, when asked,
// kube-controller-manager, kube-scheduler and kwok, which simulates the
// nodes), each with its own PKI, free ports and an admin kubeconfig. The
// binaries come from `make k8s-tools` (hack/k8s-tools/build.sh).
//
// ApplyHAShape then creates, through the API, what kubeadm leaves behind in an
// HA cluster (three control-plane nodes, two workers, the static-pod mirror
// pods, kubeadm-config, kube-proxy, CoreDNS, cluster-info, leader leases) so
// that commands reading a cluster have something true to read.
package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hacluster/hacluster/pkg/fileutil"
)

// DefaultVersion is the Kubernetes version `make k8s-tools` builds unless
// K8S_VERSION says otherwise.
const DefaultVersion = "v1.37.2"

// Binaries are the executables BinDir must hold.
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubeadm", "kwok"}

// EnvBinDir overrides where the binaries are looked up.
const EnvBinDir = "HACLUSTER_K8S_BIN"

var versionRE = regexp.MustCompile(`^v1\.[0-9]+\.[0-9]+$`)

// Version is the Kubernetes version in use: $K8S_VERSION or DefaultVersion.
func Version() string {
	if v := os.Getenv("K8S_VERSION"); v != "" {
		return v
	}
	return DefaultVersion
}

// BinDir returns the directory holding the cached binaries for Version():
// $HACLUSTER_K8S_BIN, or <repo>/.cache/k8s/<version>/bin found by walking up
// from the working directory to the project's go.mod.
func BinDir() (string, error) {
	dir := os.Getenv(EnvBinDir)
	if dir == "" {
		v := Version()
		if !versionRE.MatchString(v) {
			return "", fmt.Errorf("K8S_VERSION %q does not look like v1.37.2", v)
		}
		root, err := fileutil.RepoRoot()
		if err != nil {
			return "", fmt.Errorf("%w; set %s", err, EnvBinDir)
		}
		dir = filepath.Join(root, ".cache", "k8s", v, "bin")
	}
	var missing []string
	for _, b := range append(Binaries, "kwok-stages.yaml") {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("kubernetes binaries missing in %s (%s): run `make k8s-tools`", dir, strings.Join(missing, ", "))
	}
	return dir, nil
}
