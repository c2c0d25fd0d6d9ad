package bootstrap_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/artifacts"
	"github.com/hacluster/hacluster/pkg/bootstrap"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/nodebed"
)

// One bare control plane and one bare worker, the upstream in a box for
// downloads; one artifact cache for the package.
var (
	bed   *nodebed.Bed
	cache string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	bed, err = nodebed.New(ctx, nodebed.Options{Prefix: "bs", Upstream: true, Hosts: []nodebed.HostSpec{{Name: "cp-1"}, {Name: "worker-1"}}})
	if err != nil {
		if !nodebed.IsUnavailable(err) || os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "skipping: %v\n", err)
		bed = nil
		return m.Run()
	}
	cache, _ = os.MkdirTemp("", "hacluster-artifacts-")
	code := m.Run()
	if code != 0 {
		bed.LogJournals(func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) })
	}
	os.RemoveAll(cache)
	if err := bed.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

func cluster(t *testing.T, user string) *inventory.Cluster {
	t.Helper()
	u := bed.Upstream
	v := u.Versions
	doc := fmt.Sprintf(`apiVersion: hacluster.io/v1alpha1
kind: Cluster
metadata: {name: bed}
spec:
  ssh: {user: %s, keyFile: %s, knownHostsFile: %s}
  hosts:
    - {name: cp-1, address: %s, roles: [control-plane]}
    - {name: worker-1, address: %s, roles: [worker]}
  controlPlaneEndpoint: {vip: %s}
  kubernetes: {version: %s}
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
`, user, bed.KeyFile, bed.KnownHostsFile, bed.Host("cp-1").Address, bed.Host("worker-1").Address, bed.VIP,
		v.Kubernetes, v.Containerd, v.Runc, v.CNIPlugins, v.Crictl,
		u.MirrorURL("dl.k8s.io"), u.MirrorURL("github.com"), u.RegistryMirror("registry.k8s.io"))
	c, err := inventory.Parse(filepath.Join(t.TempDir(), "cluster.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func bootstrapRun(t *testing.T, c *inventory.Cluster) *bootstrap.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := bootstrap.Run(ctx, c, bootstrap.Options{
		Artifacts:             &artifacts.Store{Dir: cache},
		IgnorePreflightErrors: nil,
		Logf:                  t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// From bare hosts through the runtime and the Kubernetes binaries, as a
// sudo user; then a re-run changes nothing.
func TestPrepareRuntimeAndBinaries(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	c := cluster(t, nodebed.SudoUser)
	first := bootstrapRun(t, c)
	if !first.Changed() {
		t.Fatal("the first run changed nothing on bare hosts")
	}
	ctx := context.Background()
	for _, h := range bed.Hosts {
		out, err := h.Exec(ctx, "sh", "-c", `set -e
systemctl is-active containerd
crictl info >/dev/null && echo cri-ok
/usr/local/sbin/runc --version | head -1
ls /opt/cni/bin | grep -c .
kubelet --version; kubeadm version -o short; kubectl version --client | head -1
systemctl is-enabled kubelet
cat /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/ipv4/ip_forward
command -v conntrack socat
grep -c "SystemdCgroup = true" /etc/containerd/config.toml
grep "sandbox = " /etc/containerd/config.toml
grep -c "restrict_oom_score_adj = true" /etc/containerd/config.toml
cat /etc/containerd/certs.d/registry.k8s.io/hosts.toml`)
		if err != nil {
			t.Fatalf("%s: %v\n%s", h.Name, err, out)
		}
		v := bed.Upstream.Versions
		for _, want := range []string{"active\ncri-ok", "runc version " + strings.TrimPrefix(v.Runc, "v"), "Kubernetes " + v.Kubernetes, "enabled\n1\n1",
			"bin/conntrack", "sandbox = 'registry.k8s.io/pause:3.10.2'", bed.Upstream.RegistryMirror("registry.k8s.io")} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q in:\n%s", h.Name, want, out)
			}
		}
	}
	// The control plane also has the load balancer's packages.
	if out, err := bed.Host("cp-1").Exec(ctx, "sh", "-c", "command -v haproxy keepalived"); err != nil || strings.Count(out, "/") < 2 {
		t.Errorf("cp-1: haproxy/keepalived: %q %v", out, err)
	}
	// containerd pulls through the mirror: the registry.k8s.io name resolves
	// to the upstream in a box (no internet here).
	if out, err := bed.Host("worker-1").Exec(ctx, "crictl", "pull", "registry.k8s.io/pause:3.10.2"); err != nil || !strings.Contains(out, "Image is up to date") {
		t.Errorf("crictl pull through the mirror: %q %v", out, err)
	}

	t0 := time.Now()
	second := bootstrapRun(t, c)
	took := time.Since(t0)
	if second.Changed() {
		t.Errorf("a re-run changed something: %+v", second.Phases)
	}
	t.Logf("first run %s, converged re-run %s", first.Duration.Round(time.Millisecond), took.Round(time.Millisecond))
	for _, p := range first.Phases {
		t.Logf("  %-14s %-9s changed=%-5v %s (%s)", p.Phase, p.Host, p.Changed, p.Detail, p.Duration.Round(time.Millisecond))
	}
}
