package nodebed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/hacluster/hacluster/pkg/addons"
)

// ResolvConf is the resolv.conf each host gets for its kubelet: the hosts'
// own /etc/resolv.conf names Docker's loopback resolver, which a Pod's DNS
// (CoreDNS forwarding to it) cannot reach.
const ResolvConf = "/etc/nodebed/resolv.conf"

// writeResolvConf writes ResolvConf on every host.
func (b *Bed) writeResolvConf(ctx context.Context) error {
	if !b.UpstreamDNS.IsValid() {
		return nil
	}
	for _, h := range b.Hosts {
		if _, err := h.Exec(ctx, "sh", "-c", fmt.Sprintf("mkdir -p /etc/nodebed && echo nameserver %s >%s", b.UpstreamDNS, ResolvConf)); err != nil {
			return fmt.Errorf("%s: resolv.conf: %w", h.Name, err)
		}
	}
	return nil
}

// TestRegistry is the registry name the upstream in a box holds the bed's
// own workload images under (Upstream.PushStatic); ClusterFile mirrors it.
const TestRegistry = "hacluster.test"

// ClusterFile is a cluster file (kubectl hacluster's cluster.yaml) for the
// bed's hosts but the spare ones: the first three (all but one when there are
// fewer than four) are control planes behind the bed's VIP, the others
// workers; SSH as user with the bed's key and known_hosts; and, with the
// upstream in a box, its versions, download mirrors and registry mirrors, so
// that nothing comes from the internet.
func (b *Bed) ClusterFile(name, user string) string {
	var hosts []*Host
	for _, h := range b.Hosts {
		if !h.Spare {
			hosts = append(hosts, h)
		}
	}
	cps := min(3, max(1, len(hosts)-1))
	var sb strings.Builder
	fmt.Fprintf(&sb, `# The node bed's hosts are containers on this machine (pkg/nodebed).
apiVersion: hacluster.io/v1alpha1
kind: Cluster
metadata: {name: %s}
spec:
  ssh: {user: %s, keyFile: %s, knownHostsFile: %s}
  hosts:
`, name, user, b.KeyFile, b.KnownHostsFile)
	for i, h := range hosts {
		role := "worker"
		if i < cps {
			role = "control-plane"
		}
		fmt.Fprintf(&sb, "    - {name: %s, address: %s, roles: [%s]}\n", h.Name, h.Address, role)
	}
	fmt.Fprintf(&sb, "  controlPlaneEndpoint: {vip: %s}\n", b.VIP)
	u := b.Upstream
	if u == nil {
		return sb.String()
	}
	v := u.Versions
	fmt.Fprintf(&sb, `  kubernetes:
    version: %s
    kubelet: {resolvConf: %s}
  artifacts:
    containerd: %s
    runc: %s
    cniPlugins: %s
    crictl: %s
    mirrors:
      https://dl.k8s.io: %s
      https://github.com: %s
  registries:
    mirrors:
      registry.k8s.io: [%s]
      ghcr.io: [%s]
      %s: [%s]
`, v.Kubernetes, ResolvConf, v.Containerd, v.Runc, v.CNIPlugins, v.Crictl,
		u.MirrorURL("dl.k8s.io"), u.MirrorURL("github.com"),
		u.RegistryMirror("registry.k8s.io"), u.RegistryMirror("ghcr.io"), TestRegistry, u.RegistryMirror(TestRegistry))
	return sb.String()
}

// MetricsServerCatalog is an add-ons catalog (the format of `kubectl
// hacluster addons list -o yaml`) for the upstream's metrics-server release,
// pinned as a user pins it after `addons fetch`: the release URL (served
// through ClusterFile's github.com mirror) with pin as its sha256, or the
// sha256 of what the upstream serves when pin is "served".
func (b *Bed) MetricsServerCatalog(pin string) ([]byte, error) {
	u := b.Upstream
	if u == nil || u.Versions.MetricsServer == "" {
		return nil, fmt.Errorf("the upstream in a box has no metrics-server: run `make upstream`")
	}
	url := "https://github.com/kubernetes-sigs/metrics-server/releases/download/" + u.Versions.MetricsServer + "/components.yaml"
	if pin == "served" {
		data, err := os.ReadFile(filepath.Join(u.Dir, "files", strings.TrimPrefix(url, "https://")))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		pin = hex.EncodeToString(sum[:])
	}
	return yaml.Marshal(addons.Catalog{Addons: []addons.Addon{{Name: "metrics-server", Version: u.Versions.MetricsServer,
		Description: "resource metrics API (kubectl top), the node bed's build of the release", Status: "supported",
		Sources: []addons.Source{{URL: url, SHA256: pin}}}}})
}

// WithAddons is clusterFile (as ClusterFile writes it) with spec.addons
// names, taken from the catalog file catalog.
func WithAddons(clusterFile, catalog string, names ...string) string {
	return strings.Replace(clusterFile, "  artifacts:\n", "  artifacts:\n    addonsCatalog: "+catalog+"\n", 1) +
		"  addons: [" + strings.Join(names, ", ") + "]\n"
}
